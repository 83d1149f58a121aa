#!/usr/bin/env bash
# Runs the whole aetherbus system on this machine: installs what is missing,
# builds (Release), starts the embedded devbroker on 127.0.0.1:9092 (unless
# KAFKA_BROKERS points at an existing cluster, whose topics are then
# provisioned with aetherbus-admin) and every service, and stays in the
# foreground until Ctrl-C, which stops them all cleanly.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${AB_BUILD_DIR:-$ROOT/build-release}
RUN_DIR=${AB_RUN_DIR:-$ROOT/.run}
export PORT=${PORT:-8080}
export TOPIC_PREFIX=${TOPIC_PREFIX:-events.}

"$ROOT/scripts/deps.sh"

gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S "$ROOT" -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DAB_TESTS=OFF >/dev/null
fi
cmake --build "$BUILD" -j 2 >/dev/null

mkdir -p "$RUN_DIR"
pids=()
cleanup() {
  trap - INT TERM EXIT
  for ((i=${#pids[@]}-1; i>=0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
}
trap cleanup INT TERM EXIT

if [ -z "${KAFKA_BROKERS:-}" ]; then
  "$BUILD/bin/aetherbus-devbroker" --listen 127.0.0.1:9092 --topic-prefix "$TOPIC_PREFIX" \
      >"$RUN_DIR/devbroker.out" 2>"$RUN_DIR/devbroker.log" &
  pids+=($!)
  for _ in $(seq 1 100); do
    grep -q '^BROKERS=' "$RUN_DIR/devbroker.out" 2>/dev/null && break
    kill -0 "${pids[0]}" 2>/dev/null || { cat "$RUN_DIR/devbroker.log" >&2; exit 1; }
    sleep 0.1
  done
  KAFKA_BROKERS=$(sed -n 's/^BROKERS=//p' "$RUN_DIR/devbroker.out")
  [ -n "$KAFKA_BROKERS" ] || { echo "devbroker did not start" >&2; cat "$RUN_DIR/devbroker.log" >&2; exit 1; }
  echo "devbroker: $KAFKA_BROKERS (log: $RUN_DIR/devbroker.log)"
else
  "$BUILD/bin/aetherbus-admin" -b "$KAFKA_BROKERS" --topic-prefix "$TOPIC_PREFIX" topics create
fi
export KAFKA_BROKERS

# start_service NAME PORT: one service in the background, waits for /healthz.
start_service() {
  local name=$1 port=$2
  [ -x "$BUILD/bin/aetherbus-$name" ] || return 0
  PORT=$port "$BUILD/bin/aetherbus-$name" 2>"$RUN_DIR/$name.log" &
  pids+=($!)
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$RUN_DIR/$name.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "$name: http://127.0.0.1:$port (log: $RUN_DIR/$name.log)"
}

AUDIT_PORT=${AUDIT_PORT:-$((PORT + 3))}
start_service ingest "$PORT"
# The console (http://127.0.0.1:8081/admin/console) reads audit and ingest
# through stats, so the browser talks to one origin.
export STATS_AUDIT_URL=${STATS_AUDIT_URL:-http://127.0.0.1:$AUDIT_PORT}
export STATS_INGEST_URL=${STATS_INGEST_URL:-http://127.0.0.1:$PORT}
if [ -n "${EVENT_SINK_URL:-}" ]; then
  export STATS_SINK_URL=${STATS_SINK_URL:-http://127.0.0.1:${SINK_PORT:-$((PORT + 2))}}
fi
start_service stats "${STATS_PORT:-$((PORT + 1))}"
# The EventLog: one SQLite file under .run/ (one writer: a second audit
# on the same file refuses to start).
export AUDIT_DB_PATH=${AUDIT_DB_PATH:-$RUN_DIR/audit.db}
start_service audit "$AUDIT_PORT"
# Forwarding is optional (spec 002): the sink runs when there is a sink.
if [ -n "${EVENT_SINK_URL:-}" ]; then
  start_service sink "${SINK_PORT:-$((PORT + 2))}"
else
  echo "sink: not started (set EVENT_SINK_URL=http://host/path to forward events)"
fi

echo "aetherbus is running; Ctrl-C stops it."
wait -n "${pids[@]}" || true
echo "a process exited; stopping the rest" >&2
