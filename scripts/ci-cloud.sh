#!/usr/bin/env bash
# Installs, idempotently, the emulators the cloud module's tests run against: moto's server
# (AWS S3, PyPI `moto[server]`) in a venv, and Azurite (Azure Storage, npm) in a prefix, both
# under /var/cache/gatewatch. The tests start their own emulator processes on free loopback
# ports; this script only installs them. Source it to get GATEWATCH_MOTO_SERVER and
# GATEWATCH_AZURITE exported; run it to see the paths.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib/install.sh
source "$here/lib/install.sh"

cache=/var/cache/gatewatch
moto_version=5.2.5
azurite_version=3.37.0

ensure_venv "$cache/cloud-venv" "moto[server]==$moto_version"

azurite_prefix="$cache/azurite"
azurite_bin="$azurite_prefix/node_modules/.bin/azurite-blob"
if ! [ -x "$azurite_bin" ] || [ "$(cat "$azurite_prefix/.pins" 2>/dev/null)" != "$azurite_version" ]; then
  command -v npm >/dev/null 2>&1 || ensure_apt nodejs npm
  echo "installing azurite@$azurite_version into $azurite_prefix" >&2
  mkdir -p "$azurite_prefix"
  npm install --silent --no-audit --no-fund --prefix "$azurite_prefix" "azurite@$azurite_version" >/dev/null
  printf '%s' "$azurite_version" >"$azurite_prefix/.pins"
fi

export GATEWATCH_MOTO_SERVER="$cache/cloud-venv/bin/moto_server"
export GATEWATCH_AZURITE="$azurite_bin"
echo "GATEWATCH_MOTO_SERVER=$GATEWATCH_MOTO_SERVER"
echo "GATEWATCH_AZURITE=$GATEWATCH_AZURITE"
