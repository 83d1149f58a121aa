#!/usr/bin/env bash
# Prepares what the container images need on this machine and prints the
# podman global options that select aetherbus's private store, so callers do
#   podman $(scripts/image-tools.sh) build ...
# - installs podman, runc, mmdebstrap and podman's rootless/network helpers
#   with apt-get, only when one is missing (one dpkg query otherwise);
# - makes the base image once: `mmdebstrap --variant=minbase bookworm` (no
#   registry is reachable here), the tar cached in
#   ${AB_TOOLS_CACHE:-~/.cache/aetherbus}/debian-bookworm-minbase.tar and
#   imported as localhost/debian:bookworm;
# - keeps images and containers in a private store under the cache
#   (--root/--runroot), so CI never touches the system's podman store.
# Why runc: bookworm's crun refuses this VM's hybrid cgroup layout. Why the
# ulimits: podman's defaults (nofile 1048576) make runc fail here; the
# options are passed per command by tests/image/test.sh (`build` and `run`).
# Everything below runs under a lock, so two runs never race on the cache.
# All messages go to stderr: stdout is only the options.
set -euo pipefail

CACHE=${AB_TOOLS_CACHE:-$HOME/.cache/aetherbus}
STORE=$CACHE/podman
BASE_TAR=$CACHE/debian-bookworm-minbase.tar
BASE_IMAGE=localhost/debian:bookworm
PKGS=(podman runc mmdebstrap uidmap slirp4netns fuse-overlayfs
      containernetworking-plugins iptables)

mkdir -p "$STORE/root" "$STORE/runroot"
OPTS=(--root "$STORE/root" --runroot "$STORE/runroot" --runtime runc
      --cgroup-manager cgroupfs --events-backend file)

log() { printf 'image-tools: %s\n' "$*" >&2; }

install_missing() {
  local missing=() p sudo=""
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { log "need root or sudo to install: ${missing[*]}"; exit 1; }
    sudo=sudo
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

make_base() {
  if [ ! -s "$BASE_TAR" ]; then
    log "making the base image: mmdebstrap --variant=minbase bookworm"
    # The dpkg excludes are the ones that make debian:bookworm-slim (no
    # docs, man pages or translations: 40 MB of a 170 MB minbase), so the
    # local base is what a user's FROM debian:bookworm-slim gives.
    # The merged-usr hook makes /usr merged with symlinks, as bookworm's
    # debootstrap does; without it mmdebstrap installs the usrmerge package
    # and with it the whole of perl (48 MB).
    # --format: mmdebstrap guesses it from the name, and .tmp is a directory.
    mmdebstrap --quiet --variant=minbase --format=tar \
      --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
      --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/info/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/groff/*' \
      --dpkgopt='path-exclude=/usr/share/lintian/*' \
      bookworm "$BASE_TAR.tmp" >"$CACHE/mmdebstrap.log" 2>&1 \
      || { cat "$CACHE/mmdebstrap.log" >&2; exit 1; }
    mv "$BASE_TAR.tmp" "$BASE_TAR"
  fi
  if ! podman "${OPTS[@]}" image exists "$BASE_IMAGE"; then
    log "importing $BASE_TAR as $BASE_IMAGE"
    podman "${OPTS[@]}" import --quiet "$BASE_TAR" "$BASE_IMAGE" >/dev/null
  fi
}

(
  flock 9
  install_missing
  make_base
) 9>"$CACHE/.lock-image-tools"

echo "${OPTS[*]}"
