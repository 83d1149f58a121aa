#!/usr/bin/env bash
# Installs the Debian packages aetherbus needs to build, run and test, only
# when something is missing: a machine that already has them pays one dpkg
# query. Works as root or through sudo.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config git clang
  librdkafka-dev libavro-dev libmicrohttpd-dev libjansson-dev
  libcriterion-dev libcurl4-openssl-dev libsqlite3-dev libssl-dev uuid-dev
  zlib1g-dev
  kcat wrk python3 python3-avro python3-cryptography
  openjdk-17-jre-headless maven
  curl procps
  chromium fonts-dejavu-core
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "deps: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
