#!/usr/bin/env bash
# Installs the third-party programs the test suite drives (real protocol peers and tools).
# Idempotent: installs only what is missing, and runs apt-get update only then.
set -euo pipefail

# Debian package -> a command it provides.
declare -A packages=(
  [curl]=curl
  [openssl]=openssl
  [scep]=scepclient
  [libssl-dev]=
  [pkg-config]=pkg-config
  [golang-cfssl]=cfssl
  [certbot]=certbot
  [lego]=lego
  [pebble]=pebble-challtestsrv
  [libcoap3-bin]=coap-client-openssl
  # initdb and pg_ctl live in /usr/lib/postgresql/*/bin, off PATH: checked by package.
  [postgresql]=
)

missing=()
for pkg in "${!packages[@]}"; do
  cmd=${packages[$pkg]}
  if [[ -n $cmd ]]; then
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  else
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  fi
done

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi
