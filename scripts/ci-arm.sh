#!/usr/bin/env bash
# The ARM part of CI (called by .ci/run; runs on its own too). On a fresh Debian 12 machine with
# rustup it installs what it needs (through scripts/cross-build.sh and scripts/lib/install.sh),
# then:
#   1. builds the static gateway agent for aarch64 and armv7 (release profile, gateway features)
#      and leaves them at $CARGO_TARGET_DIR/<target>/release/gatewatch;
#   2. fails if the stripped aarch64 agent exceeds the size budget (3 MiB);
#   3. runs the agent's tests under qemu-user: for aarch64 the unit tests of the agent and proto
#      and every integration test that can run emulated (the others are listed with their reason,
#      from targets/qemu-excluded-tests.txt); for armv7 the unit tests;
#   4. runs the aarch64 agent under qemu against the native manager (tests/arm_interop.rs);
#   5. builds an SWUpdate bundle of the aarch64 agent;
#   6. checks the Yocto crates include against Cargo.lock and lints the layer with oelint-adv.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/install.sh
. "$root/scripts/lib/install.sh"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/gatewatch/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
tools="${GATEWATCH_TOOLS:-/var/cache/gatewatch/tools}"

readonly AARCH64=aarch64-unknown-linux-musl
readonly ARMV7=armv7-unknown-linux-musleabihf
readonly SIZE_BUDGET=$((3 * 1024 * 1024))
readonly OELINT_PINS="oelint-adv==9.11.2"
# The agent as it runs on a gateway: no demo manager, every module.
readonly GATEWAY_FEATURES=(--no-default-features --features gatewatch/gateway)

timings=()
arm_step() { printf '\n--> %s\n' "$1"; step_name=$1; step_start=$SECONDS; }
arm_done() { timings+=("$(printf '%5d s  %s' $((SECONDS - step_start)) "$step_name")"); }

binary() { echo "$CARGO_TARGET_DIR/$1/release/gatewatch"; }

build_targets() {
  arm_step "ARM: build the gateway agent for $AARCH64"
  scripts/cross-build.sh "$AARCH64"
  arm_done
  arm_step "ARM: build the gateway agent for $ARMV7 (std from rust-src)"
  scripts/cross-build.sh "$ARMV7"
  arm_done
}

check_size_budget() {
  arm_step "ARM: size budget (stripped, gateway features)"
  local target size
  for target in "$AARCH64" "$ARMV7"; do
    size=$(stat -c %s "$(binary "$target")")
    printf '  %-32s %9d bytes (%s MiB)\n' "$target" "$size" \
      "$(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1048576 }')"
  done
  size=$(stat -c %s "$(binary "$AARCH64")")
  if [ "$size" -gt "$SIZE_BUDGET" ]; then
    echo "ci-arm: the aarch64 agent is $size bytes, over the budget of $SIZE_BUDGET (3 MiB)" >&2
    exit 1
  fi
  echo "  aarch64 within the budget of $SIZE_BUDGET bytes"
  arm_done
}

# Prints the reason a test file is not run under qemu, or nothing when it is.
qemu_exclusion() {
  local name=$1 pattern reason
  while read -r pattern reason; do
    case "$pattern" in '' | '#'*) continue ;; esac
    # shellcheck disable=SC2254 # the patterns are globs on purpose
    case "$name" in $pattern) echo "$reason"; return ;; esac
  done <"$root/targets/qemu-excluded-tests.txt"
  if grep -q '^mod common;' "$root/tests/$name.rs"; then
    echo "uses the process harness tests/common (starts agent and manager processes)"
  fi
}

# `--skip` arguments for the unit tests qemu-user cannot run faithfully (printed with the reason).
qemu_skips() {
  local target=$1 name reason
  echo "  unit tests skipped under qemu (with the reason):" >&2
  while read -r name reason; do
    case "$name" in '' | '#'*) continue ;; esac
    case "$name" in
      armv7:*) [ "$target" = "$ARMV7" ] || continue; name=${name#armv7:} ;;
    esac
    printf '    %-50s %s\n' "$name" "$reason" >&2
    printf -- '--skip\n%s\n' "$name"
  done <"$root/targets/qemu-skipped-unit-tests.txt"
}

test_aarch64() {
  arm_step "ARM: the agent's tests under qemu-aarch64"
  local file name reason selected=()
  echo "  not run under qemu (with the reason):"
  for file in "$root"/tests/*.rs; do
    name=$(basename "$file" .rs)
    reason=$(qemu_exclusion "$name")
    if [ -n "$reason" ]; then
      printf '    %-28s %s\n' "$name" "$reason"
    else
      selected+=(--test "$name")
    fi
  done
  local skips
  mapfile -t skips < <(qemu_skips "$AARCH64")
  scripts/cross-build.sh "$AARCH64" test -p gatewatch -p gatewatch-proto "${GATEWAY_FEATURES[@]}" \
    --lib "${selected[@]}" -- "${skips[@]}"
  arm_done
}

test_armv7() {
  arm_step "ARM: the agent's unit tests under qemu-arm"
  echo "  armv7 runs the unit tests only (integration tests run emulated on aarch64)"
  local skips
  mapfile -t skips < <(qemu_skips "$ARMV7")
  scripts/cross-build.sh "$ARMV7" test -p gatewatch -p gatewatch-proto "${GATEWAY_FEATURES[@]}" --lib \
    -- "${skips[@]}"
  arm_done
}

test_interop() {
  arm_step "ARM: the aarch64 agent (qemu) streams to the native x86_64 manager"
  cargo build --locked -p gatewatch-manager --bin gatewatch-manager
  GATEWATCH_AARCH64_AGENT="$(binary "$AARCH64")" GATEWATCH_AARCH64_RUNNER=qemu-aarch64-static \
    cargo test --locked -p gatewatch --test arm_interop -- --exact aarch64_agent_streams_to_x86_manager
  arm_done
}

bundle_swu() {
  arm_step "ARM: SWUpdate bundle of the aarch64 agent"
  scripts/ota-bundle.sh swu --binary "$(binary "$AARCH64")" --out "$CARGO_TARGET_DIR/ota/gatewatch-$AARCH64.swu"
  arm_done
}

lint_yocto() {
  arm_step "ARM: Yocto layer (crates include, oelint-adv)"
  scripts/yocto-crates.sh --check
  local venv="$tools/oelint-venv" recipes report
  ensure_venv "$venv" "$OELINT_PINS"
  mapfile -t recipes < <(find "$root/yocto" -name '*.bb' -o -name '*.bbappend' | sort)
  # homepageping would send a request to HOMEPAGE: CI machines reach no network.
  report=$("$venv/bin/oelint-adv" --quiet --relpaths --release scarthgap \
    --suppress oelint.vars.homepageping "${recipes[@]}" 2>&1 || true)
  [ -n "$report" ] && printf '%s\n' "$report" | sed 's/^/  /'
  if printf '%s\n' "$report" | grep -q ':error:'; then
    echo "ci-arm: oelint-adv reports errors in the Yocto layer" >&2
    exit 1
  fi
  echo "  oelint-adv: no errors in ${#recipes[@]} recipe(s)"
  arm_done
}

total_start=$SECONDS
build_targets
check_size_budget
test_aarch64
test_armv7
test_interop
bundle_swu
lint_yocto
printf '\n--> ARM: times\n'
printf '  %s\n' "${timings[@]}"
printf '  %5d s  total\n' $((SECONDS - total_start))
