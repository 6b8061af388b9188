#!/usr/bin/env bash
# Makes over-the-air update bundles of the gatewatch agent from the templates in ota/.
#
#   scripts/ota-bundle.sh swu    --binary FILE --out FILE.swu   SWUpdate bundle (cpio, newc)
#   scripts/ota-bundle.sh rauc   --out DIR                      RAUC manifest, hook, health unit
#   scripts/ota-bundle.sh mender --binary FILE --out DIR        Mender single-file update
#
# Options (all kinds): --config FILE (bundled configuration, default: the Yocto layer's
# agent.toml), --version V (default: Cargo.toml's), --within SECONDS (health gate, default 60),
# --prefix DIR (/usr), --config-path PATH (/etc/gatewatch/agent.toml),
# --state-dir DIR (/var/lib/gatewatch), --stage-dir DIR (/var/lib/gatewatch-ota),
# --hw-compat "REV,REV" (swu), --compatible NAME and --rootfs FILE (rauc),
# --device-type NAME (mender).
#
# Every bundle decides commit or rollback with `gatewatch check --health`, and none touches the
# agent's state directory: its identity and spool stay on the data partition across updates.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/install.sh
. "$root/scripts/lib/install.sh"

die() { printf 'ota-bundle: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 1 ] || usage
kind=$1
shift
binary="" out="" hw_compat="" compatible="gatewatch-gateway" rootfs="rootfs.ext4"
device_type="gateway"
config="$root/yocto/meta-gatewatch/recipes-security/gatewatch/files/agent.toml"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)
within=60 prefix=/usr config_path=/etc/gatewatch/agent.toml
state_dir=/var/lib/gatewatch stage_dir=/var/lib/gatewatch-ota
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || usage
  case "$1" in
    --binary) binary=$2 ;;
    --out) out=$2 ;;
    --config) config=$2 ;;
    --version) version=$2 ;;
    --within) within=$2 ;;
    --prefix) prefix=$2 ;;
    --config-path) config_path=$2 ;;
    --state-dir) state_dir=$2 ;;
    --stage-dir) stage_dir=$2 ;;
    --hw-compat) hw_compat=$2 ;;
    --compatible) compatible=$2 ;;
    --rootfs) rootfs=$2 ;;
    --device-type) device_type=$2 ;;
    *) usage ;;
  esac
  shift 2
done
[ -n "$out" ] || die "--out is required"
[ -f "$config" ] || die "configuration $config not found"
[[ "$within" =~ ^[0-9]+$ ]] || die "--within must be a number of seconds, not '$within'"

sha256() { sha256sum "$1" | cut -d' ' -f1; }

# Copies template $1 to $2, filling in the @NAME@ fields given as NAME=value arguments.
render() {
  local template=$1 dest=$2 pair
  shift 2
  cp "$template" "$dest"
  for pair in "$@"; do
    # `|` never appears in paths, versions or hashes we substitute.
    sed -i "s|@${pair%%=*}@|${pair#*=}|g" "$dest"
  done
  if grep -qo '@[A-Z_0-9]*@' "$dest"; then
    die "$template: unfilled fields: $(grep -o '@[A-Z_0-9]*@' "$dest" | sort -u | tr '\n' ' ')"
  fi
}

common_fields=(PREFIX="$prefix" CONFIG_PATH="$config_path" STATE_DIR="$state_dir"
  STAGE_DIR="$stage_dir" HEALTH_WITHIN="$within" VERSION="$version")

need_binary() {
  [ -n "$binary" ] || die "--binary is required for $kind"
  [ -f "$binary" ] || die "binary $binary not found"
}

make_swu() {
  need_binary
  command -v cpio >/dev/null 2>&1 || ensure_apt cpio
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cp "$binary" "$work/gatewatch"
  cp "$config" "$work/agent.toml"
  render "$root/ota/swupdate/gatewatch-update.sh" "$work/gatewatch-update.sh" "${common_fields[@]}"
  local compat="" machine
  if [ -n "$hw_compat" ]; then
    compat="	hardware-compatibility: [ \"${hw_compat//,/\", \"}\" ];"
  fi
  machine=$(readelf -h "$binary" 2>/dev/null | sed -n 's/^ *Machine: *//p')
  render "$root/ota/swupdate/sw-description.in" "$work/sw-description" "${common_fields[@]}" \
    TARGET="${machine:-unknown}" HW_COMPAT="$compat" \
    GATEWATCH_SHA256="$(sha256 "$work/gatewatch")" CONFIG_SHA256="$(sha256 "$work/agent.toml")" \
    SCRIPT_SHA256="$(sha256 "$work/gatewatch-update.sh")"
  chmod 0755 "$work/gatewatch" "$work/gatewatch-update.sh"
  chmod 0644 "$work/sw-description" "$work/agent.toml"
  # SWUpdate reads sw-description first, so it must be the first member of the archive.
  mkdir -p "$(dirname "$out")"
  (cd "$work" && printf '%s\n' sw-description gatewatch agent.toml gatewatch-update.sh |
    cpio --quiet -o -H newc -R 0:0 --reproducible) >"$out.tmp"
  mv -f "$out.tmp" "$out"
  echo "ota-bundle: wrote $out (SWUpdate, gatewatch $version, $(stat -c %s "$out") bytes)"
}

make_rauc() {
  mkdir -p "$out"
  render "$root/ota/rauc/manifest.raucm.in" "$out/manifest.raucm" "${common_fields[@]}" \
    COMPATIBLE="$compatible" ROOTFS_IMAGE="$(basename "$rootfs")"
  render "$root/ota/rauc/hook.sh" "$out/hook.sh" "${common_fields[@]}"
  render "$root/ota/rauc/gatewatch-rauc-health.service" "$out/gatewatch-rauc-health.service" \
    "${common_fields[@]}"
  chmod 0755 "$out/hook.sh"
  echo "ota-bundle: wrote $out (RAUC manifest and hook; add $(basename "$rootfs") and run \`rauc bundle $out bundle.raucb\`; install gatewatch-rauc-health.service in the image)"
}

make_mender() {
  need_binary
  mkdir -p "$out/state-scripts"
  cp "$binary" "$out/gatewatch"
  local script args=()
  for script in "$root"/ota/mender/Artifact*; do
    render "$script" "$out/state-scripts/$(basename "$script")" "${common_fields[@]}"
    chmod 0755 "$out/state-scripts/$(basename "$script")"
    args+=(-s "$out/state-scripts/$(basename "$script")")
  done
  local cmd=(single-file-artifact-gen -n "gatewatch-$version" -t "$device_type"
    -d "$prefix/bin" -o "$out/gatewatch-$version.mender" "$out/gatewatch" -- "${args[@]}")
  if command -v single-file-artifact-gen >/dev/null 2>&1; then
    "${cmd[@]}"
    echo "ota-bundle: wrote $out/gatewatch-$version.mender"
  else
    echo "ota-bundle: staged $out; with mender-artifact installed, run:"
    printf ' %q' "${cmd[@]}"
    echo
  fi
}

case "$kind" in
  swu) make_swu ;;
  rauc) make_rauc ;;
  mender) make_mender ;;
  *) usage ;;
esac
