#!/usr/bin/env bash
# Chart tests of helm/aetherbus:
#   1. helm lint + helm template (exit codes checked: lint alone passes on
#      fail/required) on the defaults, the "external Kafka with SASL_SSL,
#      ingress on, sink off, existing secret" values file
#      (values-external-sasl.yaml) and the Strimzi toggle; every rendered
#      object validated strictly and offline against Kubernetes 1.31
#      (kubernetes-validate);
#   2. bad values refused with the schema's message;
#   3. template unit tests over the rendered YAML (test_render.py);
#   4. the ServiceMonitor and PrometheusRule against prometheus-operator's
#      CRD schemas, unknown fields refused (crd_validate.py);
#   5. the alert rules: promtool check + promtool test;
#   6. a real kube-apiserver + etcd: strict server-side validation,
#      helm install / upgrade / uninstall (apiserver.sh).
# AB_CHART_SKIP_APISERVER=1 skips 6 in a local loop (a cold build of the
# API server takes about 9 minutes); CI sets none.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${AB_TOOLS_CACHE:-$HOME/.cache/aetherbus}
tools=(helm validate promtool crds)
[ "${AB_CHART_SKIP_APISERVER:-}" = 1 ] || tools+=(apiserver)
"$ROOT/scripts/k8s-tools.sh" "${tools[@]}"
HELM=$CACHE/k8s/bin/helm
KV=$CACHE/k8s/venv/bin/kubernetes-validate
PY=$CACHE/k8s/venv/bin/python
CHART=$ROOT/helm/aetherbus
HERE=$ROOT/tests/chart
CRDS=$(ls -d "$CACHE"/k8s/crds/prometheus-operator-v* | sort -V | tail -1)
OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT
MONITORING=(--api-versions monitoring.coreos.com/v1/ServiceMonitor
            --api-versions monitoring.coreos.com/v1/PrometheusRule)

# 1. lint, render and validate each configuration: check NAME
# [--monitoring] VALUES-ARGS... (--monitoring: render as for a cluster with
# the prometheus-operator CRDs; helm lint has no such flag).
check() {
  local name=$1; shift
  local extra=()
  if [ "$1" = --monitoring ]; then extra=("${MONITORING[@]}"); shift; fi
  "$HELM" lint --strict "$CHART" "$@" >"$OUT/$name.lint" ||
    { cat "$OUT/$name.lint" >&2; echo "chart test: helm lint failed: $name" >&2; exit 1; }
  "$HELM" template t "$CHART" "$@" "${extra[@]}" >"$OUT/$name.yaml"
  "$KV" --kubernetes-version 1.31 --strict --quiet "$OUT/$name.yaml" 2>&1 |
    { grep -v "Couldn't find schema for kind \(ServiceMonitor\|PrometheusRule\|KafkaTopic\) " || true; } |
    tee "$OUT/$name.kv" >&2
  [ ! -s "$OUT/$name.kv" ] || { echo "chart test: kubernetes-validate: $name" >&2; exit 1; }
  echo "chart test: $name: lint, template and strict 1.31 validation of $(grep -c '^kind:' "$OUT/$name.yaml") objects"
}
check default --set kafka.brokers=kafka:9092
check default-monitoring --monitoring --set kafka.brokers=kafka:9092
check external-sasl --monitoring -f "$HERE/values-external-sasl.yaml"
check strimzi --set kafka.brokers=kafka:9092 --set topics.strimzi=true

# 2. bad values fail, with the schema's (or the chart's) message.
expect_fail() {
  local msg=$1; shift
  if "$HELM" template t "$CHART" "$@" >"$OUT/bad.out" 2>&1; then
    echo "chart test: expected failure for $*" >&2; exit 1
  fi
  grep -q -- "$msg" "$OUT/bad.out" || { cat "$OUT/bad.out" >&2; exit 1; }
}
expect_fail "ingest.replicaCount: Must be greater than or equal to 0" --set kafka.brokers=k:9092 --set ingest.replicaCount=-1
expect_fail "kafka.brokers: String length must be greater than or equal to 1" --set kafka.brokers=
expect_fail "rbacMode: rbacMode must be one of the following" --set kafka.brokers=k:9092 --set rbacMode=on
expect_fail "ingest: Additional property replicas is not allowed" --set kafka.brokers=k:9092 --set ingest.replicas=2
expect_fail "sink.autoscaling.maxReplicas must not exceed topics.partitions" --set kafka.brokers=k:9092 --set sink.autoscaling.maxReplicas=7
echo "chart test: bad values refused"

# 3. template unit tests.
AB_HELM=$HELM "$PY" "$HERE/test_render.py"

# 4. custom resources against their CRDs.
"$PY" "$HERE/crd_validate.py" --crd "$CRDS/monitoring.coreos.com_servicemonitors.yaml" \
  --crd "$CRDS/monitoring.coreos.com_prometheusrules.yaml" \
  --expect ServiceMonitor --expect PrometheusRule "$OUT/default-monitoring.yaml" "$OUT/external-sasl.yaml"

# 5. alert rules. The chart's copies of the rules and of the event catalog
# (helm reads no file outside the chart) are the originals.
cmp "$ROOT/deploy/prometheus/aetherbus-rules.yaml" "$CHART/files/aetherbus-rules.yaml"
cmp "$ROOT/schemas/catalog.json" "$CHART/files/catalog.json"
"$CACHE/prometheus/promtool" check rules "$ROOT/deploy/prometheus/aetherbus-rules.yaml"
# Each alert fires on the series it is for and not on its healthy twin.
(cd "$ROOT/deploy/prometheus" && "$CACHE/prometheus/promtool" test rules aetherbus-rules.test.yaml)

# 6. the real API server.
if [ "${AB_CHART_SKIP_APISERVER:-}" = 1 ]; then
  echo "chart test: API server stage skipped (AB_CHART_SKIP_APISERVER=1)"
else
  "$HERE/apiserver.sh"
fi
echo "chart tests passed"
