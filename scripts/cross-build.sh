#!/usr/bin/env bash
# Cross-builds the static gateway agent for an ARM target, or runs tests for it under qemu-user.
#
#   scripts/cross-build.sh <target> [--features LIST] [--out FILE]   release build (stripped)
#   scripts/cross-build.sh <target> test [cargo test arguments…]     tests under qemu-user
#   scripts/cross-build.sh <target> setup                            install the tools only
#
# <target> is a file name in targets/ without `.env`: aarch64-unknown-linux-musl or
# armv7-unknown-linux-musleabihf. The build uses the release profile of Cargo.toml (size-optimised,
# LTO, one codegen unit, abort on panic, stripped) and the gateway features unless --features says
# otherwise (`--features ""` builds the agent core without modules). The binary is left at
# $CARGO_TARGET_DIR/<target>/release/gatewatch (and copied to --out FILE if given).
#
# On a fresh Debian 12 machine with rustup it installs what it needs, once (each step checks
# first): qemu-user-static and python3-venv from Debian, the rustup target (or rust-src for
# armv7), and cargo-zigbuild with zig from PyPI in a venv. zig is the C compiler and linker: Debian
# has no musl cross toolchain, and zig builds musl's C runtime for every target itself.
#
# Environment: CARGO_TARGET_DIR (default /var/cache/gatewatch/target), GATEWATCH_TOOLS (where the
# venv and zig's cache live, default /var/cache/gatewatch/tools).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/install.sh
. "$root/scripts/lib/install.sh"

# Versions known to work together (cargo-zigbuild drives zig's `cc` and linker).
readonly ZIGBUILD_PINS="cargo-zigbuild==0.24.1 ziglang==0.17.1"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/gatewatch/target}"
tools="${GATEWATCH_TOOLS:-/var/cache/gatewatch/tools}"
venv="$tools/zigbuild-venv"
# zig keeps the musl C runtime it builds per target here (~1.5 min the first time).
export ZIG_GLOBAL_CACHE_DIR="$tools/zig-cache"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

die() { printf 'cross-build: %s\n' "$*" >&2; exit 1; }
say() { printf 'cross-build: %s\n' "$*" >&2; }

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# The rustup parts: a prebuilt std, or the std sources for targets that have none.
ensure_rust() {
  if [ "$TARGET_BUILD_STD" = yes ]; then
    rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src
  else
    rustup target list --installed | grep -qx "$TARGET_TRIPLE" || rustup target add "$TARGET_TRIPLE"
  fi
}

# cargo-zigbuild and zig in a venv of their own (never the system Python's site-packages).
ensure_zig() {
  # shellcheck disable=SC2086 # the pins are separate words on purpose
  ensure_venv "$venv" $ZIGBUILD_PINS
  mkdir -p "$ZIG_GLOBAL_CACHE_DIR"
  # cargo-zigbuild finds zig as `python -m ziglang` through the venv's python.
  export PATH="$venv/bin:$PATH"
}

# Loads targets/<target>.env and installs the tools for it.
setup() {
  local file="$root/targets/$1.env"
  [ -f "$file" ] || die "unknown target '$1': no $file (known: $(cd "$root/targets" && printf '%s ' *.env))"
  # shellcheck source=/dev/null
  . "$file"
  [ -z "$TARGET_QEMU" ] || ensure_apt qemu-user-static
  ensure_rust
  ensure_zig
  # The runner and flags for this target only (RUSTFLAGS would also reach build scripts' hosts).
  local var
  var=$(printf '%s' "$TARGET_TRIPLE" | tr '[:lower:]-' '[:upper:]_')
  [ -z "$TARGET_QEMU" ] || export "CARGO_TARGET_${var}_RUNNER=$TARGET_QEMU"
  export "CARGO_TARGET_${var}_RUSTFLAGS=$TARGET_RUSTFLAGS"
  if [ "$TARGET_BUILD_STD" = yes ]; then
    # Build std from source on the stable toolchain; its artifacts live in a target dir of their
    # own so that they never invalidate the other targets' builds.
    export RUSTC_BOOTSTRAP=1
    build_std_dir="$CARGO_TARGET_DIR/build-std"
  fi
}

# Fails unless the ELF file is static (no interpreter, no shared libraries) and stripped.
check_static_stripped() {
  local bin=$1
  if readelf -lW "$bin" | grep -q 'Requesting program interpreter'; then
    die "$bin asks for a dynamic loader: not a static binary"
  fi
  if readelf -dW "$bin" 2>/dev/null | grep -q '(NEEDED)'; then
    die "$bin needs shared libraries: not a static binary"
  fi
  if readelf -SW "$bin" | grep -q ' \.symtab '; then
    die "$bin still has a symbol table: not stripped"
  fi
}

build() {
  local features=gateway out=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --features) [ $# -ge 2 ] || usage; features=$2; shift 2 ;;
      --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
      *) usage ;;
    esac
  done
  local args=(build --release --locked -p gatewatch --bin gatewatch --target "$TARGET_TRIPLE"
    --no-default-features --features "$features")
  local produced="$CARGO_TARGET_DIR/$TARGET_TRIPLE/release/gatewatch"
  if [ "$TARGET_BUILD_STD" = yes ]; then
    CARGO_TARGET_DIR="$build_std_dir" cargo-zigbuild "${args[@]}" -Zbuild-std=std,panic_abort
    mkdir -p "$(dirname "$produced")"
    cp -f "$build_std_dir/$TARGET_TRIPLE/release/gatewatch" "$produced"
  else
    cargo-zigbuild "${args[@]}"
  fi
  check_static_stripped "$produced"
  if [ -n "$out" ]; then
    mkdir -p "$(dirname "$out")"
    cp -f "$produced" "$out"
  fi
  say "built $produced ($(stat -c %s "$produced") bytes, features: '${features}')"
}

run_tests() {
  if [ "$TARGET_BUILD_STD" = yes ]; then
    # Tests unwind (the harness catches panics), so std is built with panic_unwind and `test`.
    CARGO_TARGET_DIR="$build_std_dir" cargo-zigbuild test --locked --target "$TARGET_TRIPLE" \
      -Zbuild-std=std,panic_unwind,test "$@"
  else
    cargo-zigbuild test --locked --target "$TARGET_TRIPLE" "$@"
  fi
}

[ $# -ge 1 ] || usage
target=$1
shift
setup "$target"
case "${1:-}" in
  setup) say "tools ready for $TARGET_TRIPLE" ;;
  test) shift; run_tests "$@" ;;
  *) build "$@" ;;
esac
