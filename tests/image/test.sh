#!/usr/bin/env bash
# Image test: builds every target of the Containerfile with podman (private
# store, local bookworm base: scripts/image-tools.sh), then runs the system
# from those images only: devbroker, ingest, stats, sink (to a recording
# HTTP sink on the host) and audit, each --read-only, as uid 65532, on the
# host network, every port free-picked. Events posted to ingest must show
# up, by id, in the sink's recorded bodies and in audit
# (GET /admin/events/{id}), and be counted by stats; the admin image's
# topic check (the chart's Job) must pass; every container must exit 0 on
# SIGTERM; audit's log must then pass `aetherbus-audit verify`. Removes
# every container and volume it made, by id.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
read -r -a PODMAN_OPTS <<<"$("$ROOT/scripts/image-tools.sh")"
pm() { podman "${PODMAN_OPTS[@]}" "$@"; }
# podman's default nofile (1048576) is more than runc may set here.
ULIMITS=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
# What the chart's securityContext asks, and stricter: no tmpfs on /tmp
# either (the chart gives one), so the only writable path is audit's volume.
SECURE=(--read-only --read-only-tmpfs=false --user 65532:65532 --cap-drop ALL
        --security-opt no-new-privileges "${ULIMITS[@]}")
TARGETS=(ingest stats sink audit devbroker admin)
WAIT_S=${AB_IMAGE_WAIT_S:-60}
N=5

TMP=$(mktemp -d)
containers=()
volumes=()
sinkd_pid=
cleanup() {
  local rc=$? c
  trap - EXIT
  if [ "$rc" -ne 0 ]; then
    for c in "${containers[@]}"; do
      echo "--- logs of $(pm inspect --format '{{.Name}}' "$c" 2>/dev/null) ($c)" >&2
      pm logs "$c" 2>&1 | tail -20 >&2 || true
    done
  fi
  for c in "${containers[@]}"; do pm rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
  for c in "${volumes[@]}"; do pm volume rm -f "$c" >/dev/null 2>&1 || true; done
  # the sink dies of the SIGTERM (143): not the test's exit status
  if [ -n "$sinkd_pid" ]; then kill "$sinkd_pid" 2>/dev/null && wait "$sinkd_pid" 2>/dev/null || true; fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT

fail() { echo "image test: $*" >&2; exit 1; }
log() { echo "image test: $*"; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- build ----------------------------------------------------------------
start=$(date +%s.%N)
for t in "${TARGETS[@]}"; do
  nice podman "${PODMAN_OPTS[@]}" build --quiet "${ULIMITS[@]}" --build-arg BASE=localhost/debian:bookworm \
    --build-arg JOBS="${AB_TEST_JOBS:-2}" --target "$t" -t "aetherbus-$t" "$ROOT" >/dev/null
done
log "built ${TARGETS[*]} in $(python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)") s"

# ---- run ------------------------------------------------------------------
# run NAME IMAGE-ARGS...: a detached, read-only, non-root container on the
# host network; its id is remembered for the stop and the cleanup.
run() {
  local name=$1 id; shift
  id=$(pm run -d --name "abimg-$name-$$" --network host "${SECURE[@]}" "$@")
  containers+=("$id")
  eval "id_$name=$id"
}

# wait_http PORT PATH STATUS: bounded poll until PATH answers STATUS.
wait_http() {
  local i code
  for ((i = 0; i < WAIT_S * 10; i++)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1$2" || true)
    [ "$code" = "$3" ] && return 0
    sleep 0.1
  done
  fail "127.0.0.1:$1$2 did not answer $3 within ${WAIT_S}s (last: $code)"
}

KPORT=$(free_port) IPORT=$(free_port) SPORT=$(free_port) KSPORT=$(free_port)
APORT=$(free_port) DPORT=$(free_port)
PREFIX="img$$."
ADMIN_TOKEN="img-admin-$$"
RUN_ID="img-$$-$(date +%s)"
BROKERS=127.0.0.1:$KPORT
COMMON=(-e KAFKA_BROKERS="$BROKERS" -e TOPIC_PREFIX="$PREFIX" -e ADMIN_TOKEN="$ADMIN_TOKEN")
ADMIN_HDR=(-H 'x-ops: 1' -H "x-admin-token: $ADMIN_TOKEN")

# The test sink: records each POSTed body as one line, answers 200.
cat >"$TMP/sinkd.py" <<'EOF'
import http.server, sys
out = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(out, "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
: >"$TMP/sink.bodies"
python3 "$TMP/sinkd.py" "$DPORT" "$TMP/sink.bodies" &
sinkd_pid=$!

run devbroker aetherbus-devbroker -l "$BROKERS" -t "$PREFIX"
for ((i = 0; i < WAIT_S * 10; i++)); do
  pm logs "$id_devbroker" 2>/dev/null | grep -q "^BROKERS=$BROKERS" && break
  [ "$(pm inspect --format '{{.State.Running}}' "$id_devbroker")" = true ] || fail "devbroker exited"
  sleep 0.1
done
pm logs "$id_devbroker" 2>/dev/null | grep -q "^BROKERS=$BROKERS" || fail "devbroker did not serve"

# The chart's topic Job, with its arguments: every topic exists already
# (the devbroker made them), so it creates nothing and exits 0.
admin_id=$(pm run -d --network host "${SECURE[@]}" aetherbus-admin \
  --brokers "$BROKERS" --topic-prefix "$PREFIX" --partitions 3 --replication-factor 1 topics create)
containers+=("$admin_id")
[ "$(pm wait "$admin_id")" = 0 ] || fail "aetherbus-admin topics create failed: $(pm logs "$admin_id" 2>&1)"

# audit: its log on a named volume (the image's /var/lib/aetherbus, owned
# by 65532, is copied into it), its signing key made by the image itself.
vol=$(pm volume create "abimg-audit-$$")
volumes+=("$vol")
mkdir -p "$TMP/keys" && chmod 0777 "$TMP/keys"
pm run --rm --network none "${SECURE[@]}" -v "$TMP/keys:/keys" \
  aetherbus-audit keygen --name "$RUN_ID" --out /keys/audit.key >"$TMP/vkey"

run ingest "${COMMON[@]}" -e PORT="$IPORT" aetherbus-ingest
run stats "${COMMON[@]}" -e PORT="$SPORT" aetherbus-stats
run sink "${COMMON[@]}" -e PORT="$KSPORT" -e EVENT_SINK_URL="http://127.0.0.1:$DPORT/events" \
  -e SINK_LINGER_MS=200 aetherbus-sink
run audit "${COMMON[@]}" -e PORT="$APORT" -v "$vol:/var/lib/aetherbus" \
  -v "$TMP/keys:/etc/aetherbus/signing:ro" -e AUDIT_SIGNING_KEY=/etc/aetherbus/signing/audit.key \
  aetherbus-audit
for p in "$IPORT" "$SPORT" "$KSPORT" "$APORT"; do wait_http "$p" /readyz 200; done
log "devbroker, ingest, stats, sink and audit ready (read-only, uid 65532)"

# ---- events ---------------------------------------------------------------
ids=()
body="["
for ((i = 0; i < N; i++)); do
  ids+=("$RUN_ID-$i")
  [ "$i" -gt 0 ] && body+=","
  body+="{\"id\":\"$RUN_ID-$i\",\"name\":\"OrderCreated\",\"schemaVersion\":1,"
  body+="\"occurredAt\":\"$(date -u +%Y-%m-%dT%H:%M:%S.000Z)\",\"source\":\"api\","
  body+="\"companyId\":\"$RUN_ID\",\"payload\":{\"orderId\":\"o-$i\"}}"
done
body+="]"
code=$(curl -s -o "$TMP/ingest.out" -w '%{http_code}' "http://127.0.0.1:$IPORT/events/ingest" \
  -H 'Content-Type: application/json' -d "$body")
[ "$code" = 202 ] || fail "ingest answered $code: $(cat "$TMP/ingest.out")"
python3 - "$TMP/ingest.out" "${ids[@]}" <<'EOF' || fail "ingest's answer: $(cat "$TMP/ingest.out")"
import json, sys
a = json.load(open(sys.argv[1]))
assert a["accepted"] == len(sys.argv) - 2 and a["ids"] == sys.argv[2:], a
EOF
log "ingest: 202 for ${ids[*]}"

# poll_check WHAT CMD...: bounded poll until CMD succeeds.
poll_check() {
  local what=$1 i; shift
  for ((i = 0; i < WAIT_S * 5; i++)); do
    "$@" && return 0
    sleep 0.2
  done
  "$@" || fail "$what: not within ${WAIT_S}s"
}

# Every id in the bodies the sink POSTed (each body a JSON array).
sink_has_ids() {
  python3 - "$TMP/sink.bodies" "${ids[@]}" <<'EOF'
import json, sys
seen = set()
for line in open(sys.argv[1], "rb"):
    seen.update(e["id"] for e in json.loads(line))
sys.exit(0 if all(i in seen for i in sys.argv[2:]) else 1)
EOF
}
poll_check "sink: every id delivered" sink_has_ids
log "sink: every id in the bodies the HTTP sink received"

# stats: the run's companyId (a heavy hitter: 5 of a handful of events)
# and OrderCreated (nothing else of that name on this fresh broker).
stats_counts() {
  local q=$1
  curl -fs "${ADMIN_HDR[@]}" "http://127.0.0.1:$SPORT/admin/events/stats?window=5m&$q" >"$TMP/stats.out" \
    && python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); sys.exit(0 if a["total"]==int(sys.argv[2]) else 1)' \
       "$TMP/stats.out" "$N"
}
poll_check "stats: total $N for name=OrderCreated" stats_counts name=OrderCreated
poll_check "stats: total $N for companyId=$RUN_ID" stats_counts "companyId=$RUN_ID"
log "stats: total $N by name and by companyId"

audit_has_ids() {
  local id
  for id in "${ids[@]}"; do
    curl -fs "${ADMIN_HDR[@]}" "http://127.0.0.1:$APORT/admin/events/$id" >"$TMP/audit.out" || return 1
    python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); sys.exit(0 if a["id"]==sys.argv[2] and a["status"]=="accepted" else 1)' \
      "$TMP/audit.out" "$id" || return 1
  done
}
poll_check "audit: every id in the EventLog" audit_has_ids
log "audit: GET /admin/events/{id} answers each id, status accepted"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'x-ops: 1' "http://127.0.0.1:$APORT/admin/events/${ids[0]}")
[ "$code" = 401 ] || fail "audit without the admin token answered $code, not 401"

# ---- SIGTERM --------------------------------------------------------------
# Producers and consumers first, the broker last, so each can flush and
# commit on its way out.
for name in ingest sink stats audit devbroker; do
  id_var=id_$name
  pm stop -t 10 "${!id_var}" >/dev/null
  rc=$(pm inspect --format '{{.State.ExitCode}}' "${!id_var}")
  [ "$rc" = 0 ] || fail "$name exited $rc on SIGTERM"
done
log "ingest, sink, stats, audit, devbroker: exit 0 on SIGTERM"

# The EventLog left on the volume: the tree recomputed from the rows.
pm run --rm --network none "${SECURE[@]}" -v "$vol:/var/lib/aetherbus" \
  aetherbus-audit verify --db /var/lib/aetherbus/audit.db >"$TMP/verify.out" 2>&1 \
  || fail "audit verify: $(cat "$TMP/verify.out")"
log "audit verify: ok"

echo
echo "image sizes:"
pm images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep '/aetherbus-' | sort
echo "image tests passed"
