#!/usr/bin/env bash
# The chart against a real API server: etcd + kube-apiserver built by
# scripts/k8s-tools.sh, on loopback (free ports, a throw-away CA, a token
# file, a temp dir). It runs no pods and no controllers, so the test plays
# the Job controller for the topic hook. For the defaults and for the SASL
# values file it checks that
#   - every rendered object (hook Job and custom resources included) is
#     accepted with strict server-side field validation (and that an
#     unknown field is refused, so the check is real);
#   - helm install creates every object of the release, the ServiceMonitor
#     and PrometheusRule too (their CRDs are installed first, and the chart
#     finds them through the server's discovery), and runs the hook Job;
#   - helm upgrade reruns the hook and a config change rolls the pods
#     (new checksum annotation), defaults only;
#   - helm uninstall removes every object again.
# Called by tests/chart/test.sh after k8s-tools.sh apiserver crds.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${AB_TOOLS_CACHE:-$HOME/.cache/aetherbus}
BIN=$CACHE/k8s/bin
HELM=$BIN/helm
KUBECTL=$BIN/kubectl
PY=$CACHE/k8s/venv/bin/python
CHART=$ROOT/helm/aetherbus
SASL=$ROOT/tests/chart/values-external-sasl.yaml
CRDS=$(ls -d "$CACHE"/k8s/crds/prometheus-operator-v* | sort -V | tail -1)

W=$(mktemp -d)
PIDS=()
# Stops one server: SIGTERM, then SIGKILL after 10 s (kube-apiserver's
# graceful shutdown can hang once etcd is gone).
stop() {
  local pid=$1 i
  kill "$pid" 2>/dev/null || return 0
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
# The API server first, then etcd under it.
cleanup_servers() {
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop "${PIDS[i]}"; done
  PIDS=()
}
cleanup() {
  cleanup_servers
  rm -rf "$W"
}
trap cleanup EXIT
say() { printf 'apiserver test [%3ds]: %s\n' "$SECONDS" "$*"; }
fail() {
  say "$*" >&2
  for f in "$W"/etcd.log "$W"/apiserver.log; do
    [ -f "$f" ] && { echo "--- tail of $f" >&2; tail -20 "$f" >&2; }
  done
  exit 1
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A CA and a serving certificate for 127.0.0.1, a service-account key pair
# and one token of group system:masters.
(
  cd "$W"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 \
    -subj /CN=aetherbus-test-ca 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >srv.ext
  openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt \
    -days 1 -extfile srv.ext 2>/dev/null
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
)
TOKEN=$(openssl rand -hex 24)
printf '%s,aetherbus-test,aetherbus-test,system:masters\n' "$TOKEN" >"$W/tokens.csv"

export KUBECONFIG=$W/kubeconfig
"$KUBECTL" config set-credentials t --token "$TOKEN" >/dev/null
"$KUBECTL" config set-context t --cluster t --user t >/dev/null
"$KUBECTL" config use-context t >/dev/null
K() { "$KUBECTL" --request-timeout 30s "$@"; }

# Starts etcd and kube-apiserver on free ports and waits until the server
# is ready; returns 1 when it exits first (a port taken meanwhile: the
# caller tries new ports) or is not ready in 120 s.
start_servers() {
  local started
  ETCD_PORT=$(free_port)
  PEER_PORT=$(free_port)
  API_PORT=$(free_port)
  rm -rf "$W/etcd" "$W/certs"
  "$BIN/etcd" --name t --data-dir "$W/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
    --initial-cluster "t=http://127.0.0.1:$PEER_PORT" \
    --unsafe-no-fsync --log-level warn >"$W/etcd.log" 2>&1 &
  PIDS+=($!)

  "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
    --tls-cert-file "$W/srv.crt" --tls-private-key-file "$W/srv.key" --cert-dir "$W/certs" \
    --token-auth-file "$W/tokens.csv" --authorization-mode RBAC \
    --service-account-issuer "https://127.0.0.1:$API_PORT" \
    --service-account-key-file "$W/sa.pub" --service-account-signing-key-file "$W/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=false \
    --endpoint-reconciler-type none \
    >"$W/apiserver.log" 2>&1 &
  APISERVER_PID=$!
  PIDS+=("$APISERVER_PID")
  "$KUBECTL" config set-cluster t --server "https://127.0.0.1:$API_PORT" \
    --certificate-authority "$W/ca.crt" --embed-certs >/dev/null
  started=$(date +%s)
  until [ "$(K get --raw /readyz 2>/dev/null)" = ok ]; do
    kill -0 "$APISERVER_PID" 2>/dev/null || return 1
    [ $(($(date +%s) - started)) -lt 120 ] || return 1
    sleep 1
  done
  # The default namespace and the bootstrap RBAC come from post-start hooks.
  until K get namespace default >/dev/null 2>&1; do
    [ $(($(date +%s) - started)) -lt 120 ] || return 1
    sleep 1
  done
  READY_AFTER=$(($(date +%s) - started))
}
for attempt in 1 2 3; do
  start_servers && break
  [ "$attempt" -lt 3 ] || fail "kube-apiserver did not start (3 attempts)"
  say "kube-apiserver did not start, again on other ports"
  cleanup_servers
done
say "kube-apiserver $(K version -o json 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])') ready after $READY_AFTER s"

# Strict field validation is real: an unknown field is refused.
if K create --dry-run=server --validate=strict -f - >"$W/strict.out" 2>&1 <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: strict-check, namespace: default}
unknownFieldForTheTest: 1
EOF
then fail "the server accepted an unknown field"; fi
grep -q 'unknown field "unknownFieldForTheTest"' "$W/strict.out" || { cat "$W/strict.out" >&2; fail "no unknown-field error"; }

# metrics.*=auto asks the cluster: without the CRDs, no ServiceMonitor and
# no PrometheusRule (helm's server dry run renders with its discovery).
"$HELM" install t "$CHART" --dry-run=server -n default --set kafka.brokers=k:9092 >"$W/nocrd.yaml"
grep -q '^kind: Deployment' "$W/nocrd.yaml" || fail "the server dry run rendered nothing"
! grep -q '^kind: \(ServiceMonitor\|PrometheusRule\)' "$W/nocrd.yaml" ||
  fail "ServiceMonitor/PrometheusRule rendered without their CRDs"
say "without the monitoring CRDs the chart renders no ServiceMonitor/PrometheusRule"

K apply --server-side -f "$CRDS/monitoring.coreos.com_servicemonitors.yaml" \
  -f "$CRDS/monitoring.coreos.com_prometheusrules.yaml" >/dev/null
K wait --for condition=Established --timeout 60s \
  crd/servicemonitors.monitoring.coreos.com crd/prometheusrules.monitoring.coreos.com >/dev/null

# Plays the Job controller for the release's topic hook: waits for the Job,
# keeps what helm created, and marks it complete so helm goes on.
complete_hook() {
  local ns=$1 out=$2 i now
  for i in $(seq 1 300); do
    [ ! -e "$W/hook-stop" ] || return 1
    if K get job t-aetherbus-topics -n "$ns" -o json >"$out.tmp" 2>/dev/null; then
      mv "$out.tmp" "$out"
      now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
      K patch job t-aetherbus-topics -n "$ns" --subresource=status --type=merge -p "{\"status\":{
        \"startTime\":\"$now\",\"completionTime\":\"$now\",\"succeeded\":1,\"conditions\":[
        {\"type\":\"SuccessCriteriaMet\",\"status\":\"True\",\"lastTransitionTime\":\"$now\"},
        {\"type\":\"Complete\",\"status\":\"True\",\"lastTransitionTime\":\"$now\"}]}}" >/dev/null
      return 0
    fi
    sleep 0.2
  done
  return 1
}

# helm install/upgrade ARGS... with the hook completed beside it.
helm_with_hook() {
  local ns=$1 out=$2; shift 2
  rm -f "$out" "$W/hook-stop"
  complete_hook "$ns" "$out" &
  local hp=$!
  if ! "$HELM" "$@" --namespace "$ns" --timeout 120s >"$W/helm.out" 2>&1; then
    touch "$W/hook-stop"
    wait "$hp" || true
    cat "$W/helm.out" >&2
    fail "helm $1 failed in $ns"
  fi
  wait "$hp" || fail "no hook Job appeared in $ns"
  [ -s "$out" ] || fail "no hook Job recorded in $ns"
}

check_hook_job() {
  "$PY" - "$1" "$2" <<'EOF'
import json, sys
job = json.load(open(sys.argv[1]))
partitions = sys.argv[2]
ann = job["metadata"]["annotations"]
assert ann["helm.sh/hook"] == "pre-install,pre-upgrade", ann
c = job["spec"]["template"]["spec"]["containers"][0]
assert c["image"].endswith("/aetherbus-admin:0.1.0"), c["image"]
assert c["args"][-2:] == ["topics", "create"], c["args"]
assert c["args"][c["args"].index("--partitions") + 1] == partitions, c["args"]
print(f"apiserver test: hook Job {job['metadata']['name']} ran: {' '.join(c['args'][-2:])}, "
      f"{partitions} partitions")
EOF
}

run_case() {
  local ns=$1 partitions=$2; shift 2
  local args=("$@")

  # Every object helm would create, hook and custom resources included,
  # through strict server-side field validation.
  "$HELM" template t "$CHART" --namespace "$ns" "${args[@]}" \
    --api-versions monitoring.coreos.com/v1/ServiceMonitor \
    --api-versions monitoring.coreos.com/v1/PrometheusRule >"$W/$ns-rendered.yaml"
  K apply --server-side --dry-run=server --validate=strict --field-manager chart-test \
    -n "$ns" -f "$W/$ns-rendered.yaml" >"$W/$ns-dryrun.out" || fail "strict dry-run refused $ns"
  local rendered
  rendered=$(grep -c '^kind:' "$W/$ns-rendered.yaml")
  [ "$(grep -c 'serverside-applied (server dry run)' "$W/$ns-dryrun.out")" -eq "$rendered" ] ||
    { cat "$W/$ns-dryrun.out" >&2; fail "not every object of $ns passed the dry run"; }

  # The same dry run refuses an unknown field deep in a pod template.
  sed '0,/^      enableServiceLinks: false$/s//      enableServiceLinks: false\n      unknownPodField: 1/' \
    "$W/$ns-rendered.yaml" >"$W/$ns-bad.yaml"
  ! cmp -s "$W/$ns-rendered.yaml" "$W/$ns-bad.yaml" || fail "could not plant the unknown field"
  if K apply --server-side --dry-run=server --validate=strict --field-manager chart-test \
       -n "$ns" -f "$W/$ns-bad.yaml" >"$W/$ns-bad.out" 2>&1; then
    fail "$ns: the strict dry run accepted an unknown pod field"
  fi
  # (server-side apply words it as its typed patch does)
  grep -q '\.spec\.template\.spec\.unknownPodField: field not declared in schema' "$W/$ns-bad.out" ||
    { cat "$W/$ns-bad.out" >&2; fail "$ns: no unknown-field error for the planted field"; }
  say "$ns: strict server-side dry run accepted all $rendered objects (hook and custom resources included), refused a planted unknown field"

  helm_with_hook "$ns" "$W/$ns-job.json" install t "$CHART" "${args[@]}"
  check_hook_job "$W/$ns-job.json" "$partitions"
  "$HELM" get manifest t -n "$ns" >"$W/$ns-manifest.yaml"
  grep -q '^kind: ServiceMonitor' "$W/$ns-manifest.yaml" || fail "no ServiceMonitor though its CRD exists"
  grep -q '^kind: PrometheusRule' "$W/$ns-manifest.yaml" || fail "no PrometheusRule though its CRD exists"
  local want got
  want=$(grep -c '^kind:' "$W/$ns-manifest.yaml")
  got=$(K get -n "$ns" -f "$W/$ns-manifest.yaml" -o name | tee "$W/$ns-objects" | wc -l)
  [ "$got" -eq "$want" ] || fail "$ns: $got of $want objects exist"
  # hook-succeeded: the completed Job is gone again.
  ! K get job t-aetherbus-topics -n "$ns" >/dev/null 2>&1 || fail "$ns: the completed hook Job is still there"
  say "$ns: helm install created all $got objects: $(tr '\n' ' ' <"$W/$ns-objects")"

  if [ "$ns" = defaults ]; then
    local before after
    before=$(K get deployment t-aetherbus-ingest -n "$ns" -o jsonpath='{.spec.template.metadata.annotations.checksum/config}')
    helm_with_hook "$ns" "$W/$ns-job2.json" upgrade t "$CHART" --reuse-values --set logLevel=debug
    check_hook_job "$W/$ns-job2.json" "$partitions"
    after=$(K get deployment t-aetherbus-ingest -n "$ns" -o jsonpath='{.spec.template.metadata.annotations.checksum/config}')
    [ -n "$before" ] && [ "$before" != "$after" ] || fail "upgrade with a new config did not change checksum/config"
    [ "$(K get configmap t-aetherbus-config -n "$ns" -o jsonpath='{.data.LOG_LEVEL}')" = debug ] ||
      fail "upgrade did not change the ConfigMap"
    say "$ns: helm upgrade reran the hook and rolled the pod templates (checksum/config changed)"
  fi

  "$HELM" uninstall t -n "$ns" --wait --timeout 60s >/dev/null
  local left
  left=$(K get -n "$ns" -f "$W/$ns-manifest.yaml" -o name --ignore-not-found | wc -l)
  [ "$left" -eq 0 ] || fail "$ns: $left objects left after helm uninstall"
  [ -z "$(K get secrets -n "$ns" -l owner=helm -o name)" ] || fail "$ns: helm's release record left"
  say "$ns: helm uninstall removed all $want objects"
}

K create namespace defaults >/dev/null
run_case defaults 6 --set kafka.brokers=kafka.kafka:9092 --set secrets.adminToken=adm1n \
  --set secrets.ingestToken=s3cret --set secrets.sinkToken=t0ken

# The SASL case with the Secrets it names, as a user would have them.
K create namespace sasl >/dev/null
K create secret generic aetherbus-kafka -n sasl --from-literal RDKAFKA_SECURITY_PROTOCOL=SASL_SSL \
  --from-literal RDKAFKA_SASL_MECHANISMS=SCRAM-SHA-512 --from-literal RDKAFKA_SASL_USERNAME=aetherbus \
  --from-literal RDKAFKA_SASL_PASSWORD=pw >/dev/null
K create secret generic kafka-cluster-ca -n sasl --from-file ca.crt="$W/ca.crt" >/dev/null
K create secret generic aetherbus-tokens -n sasl \
  --from-literal ADMIN_TOKEN=adm1n --from-literal client-keys.json='[]' \
  --from-literal audit-signing.key=k >/dev/null
K create secret tls bus-example-tls -n sasl --cert "$W/srv.crt" --key "$W/srv.key" >/dev/null
run_case sasl 12 -f "$SASL"
# The user's Secrets are theirs: uninstall left them alone.
[ "$(K get secrets -n sasl -o name | sort | tr '\n' ' ')" = \
  "secret/aetherbus-kafka secret/aetherbus-tokens secret/bus-example-tls secret/kafka-cluster-ca " ] ||
  fail "sasl: the pre-existing Secrets changed"
say "passed"
