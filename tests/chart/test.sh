#!/usr/bin/env bash
# Chart tests: helm lint + helm template (exit codes checked, lint alone
# passes on fail/required), schema refusals, and strict offline validation of
# every rendered object against the Kubernetes 1.31 schemas.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${AB_TOOLS_CACHE:-$HOME/.cache/aetherbus}
"$ROOT/scripts/k8s-tools.sh" helm validate promtool
HELM=$CACHE/k8s/bin/helm
KV=$CACHE/k8s/venv/bin/kubernetes-validate
CHART=$ROOT/helm/aetherbus
OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT

"$HELM" lint "$CHART" --set kafka.brokers=kafka:9092
"$HELM" template t "$CHART" --set kafka.brokers=kafka:9092 >"$OUT/default.yaml"
"$KV" --kubernetes-version 1.31 --strict "$OUT/default.yaml"

expect_fail() {
  local msg=$1; shift
  if "$HELM" template t "$CHART" "$@" >"$OUT/bad.out" 2>&1; then
    echo "chart test: expected failure for $*" >&2; exit 1
  fi
  grep -q -- "$msg" "$OUT/bad.out" || { cat "$OUT/bad.out" >&2; exit 1; }
}
expect_fail "ingest.replicaCount: Must be greater than or equal to 0" --set kafka.brokers=k:9092 --set ingest.replicaCount=-1
expect_fail "brokers" --set kafka.brokers=

cmp "$ROOT/deploy/prometheus/aetherbus-rules.yaml" "$CHART/files/aetherbus-rules.yaml"
"$CACHE/prometheus/promtool" check rules "$ROOT/deploy/prometheus/aetherbus-rules.yaml"
# Each alert fires on the series it is for and not on its healthy twin.
(cd "$ROOT/deploy/prometheus" && "$CACHE/prometheus/promtool" test rules aetherbus-rules.test.yaml)
echo "chart tests passed"
