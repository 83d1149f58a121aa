#!/usr/bin/env bash
# Runs every test of aetherbus on this machine: installs what is missing,
# builds, then runs
#   1. the unit tests (no broker),
#   2. every integration test against the embedded devbroker,
#   3. every integration test against a real Apache Kafka (tools/kafka),
#   4. the unit and devbroker tests again under AddressSanitizer + UBSan,
#   5. the container images (tests/image/test.sh),
#   6. the Helm chart tests (tests/chart/test.sh).
# Any failure fails the run. Set AB_TEST_SKIP_ASAN=1, AB_TEST_SKIP_KAFKA=1,
# AB_TEST_SKIP_IMAGES=1 or AB_TEST_SKIP_CHART=1 to shorten a local loop; CI
# sets none.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
JOBS=${AB_TEST_JOBS:-2}
BUILD=${AB_BUILD_DIR:-$ROOT/build}
BUILD_ASAN=${AB_BUILD_ASAN_DIR:-$ROOT/build-asan}

"$ROOT/scripts/deps.sh"

gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)

step() { printf '\n=== %s ===\n' "$*"; }

configure_build() {
  local dir=$1; shift
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$dir" "${gen[@]}" "$@" >/dev/null
  else
    cmake -S "$ROOT" -B "$dir" "$@" >/dev/null
  fi
  cmake --build "$dir" -j "$JOBS"
}

run_ctest() {
  local dir=$1 label=$2
  ctest --test-dir "$dir" -L "^${label}\$" -j "$JOBS" --output-on-failure \
        --no-tests=error
}

step "build (RelWithDebInfo)"
configure_build "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo

step "unit tests"
run_ctest "$BUILD" unit

step "integration tests, broker: devbroker (librdkafka mock cluster)"
run_ctest "$BUILD" devbroker

if [ "${AB_TEST_SKIP_KAFKA:-0}" != 1 ]; then
  step "integration tests, broker: kafka (Apache Kafka $(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/tools/kafka/pom.xml" | head -1), KRaft)"
  # One broker for the whole label; the kafka.start/kafka.stop fixture
  # brings it up and down; each test uses its own topic prefix.
  run_ctest "$BUILD" kafka
fi

if [ "${AB_TEST_SKIP_ASAN:-0}" != 1 ]; then
  step "build (AddressSanitizer + UBSan)"
  configure_build "$BUILD_ASAN" -DCMAKE_BUILD_TYPE=Debug -DAB_SANITIZE=ON -DAB_BENCH=OFF
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  step "unit tests (sanitizers)"
  run_ctest "$BUILD_ASAN" unit
  step "integration tests, broker: devbroker (sanitizers)"
  run_ctest "$BUILD_ASAN" devbroker
fi

if [ "${AB_TEST_SKIP_IMAGES:-0}" != 1 ]; then
  step "container images (podman: build every target, run the system from them)"
  "$ROOT/tests/image/test.sh"
fi

if [ "${AB_TEST_SKIP_CHART:-0}" != 1 ]; then
  step "Helm chart tests"
  "$ROOT/tests/chart/test.sh"
fi

step "all tests passed"
