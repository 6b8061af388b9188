#!/usr/bin/env bash
# Regenerates the Yocto layer's crates include (one `crate://` SRC_URI and one sha256sum per
# crates.io package) from the workspace's Cargo.lock, in the format of OE-core's
# `bitbake -c update_crates gatewatch` (class cargo-update-recipe-crates), so the recipe fetches
# exactly the locked crates. Run it after every change to Cargo.lock.
#
#   scripts/yocto-crates.sh           rewrite the include
#   scripts/yocto-crates.sh --check   exit 1 if the include does not match Cargo.lock (CI)
#
# Unlike bitbake's task it reads only the root Cargo.lock: fuzz/Cargo.lock belongs to the fuzz
# harness, which the recipe never builds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
include="$root/yocto/meta-gatewatch/recipes-security/gatewatch/gatewatch-crates.inc"

render() {
  python3 - "$root/Cargo.lock" <<'PY'
import sys
import tomllib

lock_path = sys.argv[1]
try:
    with open(lock_path, "rb") as f:
        lock = tomllib.load(f)
except (OSError, tomllib.TOMLDecodeError) as e:
    sys.exit(f"yocto-crates: cannot read {lock_path}: {e}")

crates = [p for p in lock.get("package", []) if "crates.io" in p.get("source", "")]
if not crates:
    sys.exit(f"yocto-crates: {lock_path} lists no crates.io packages")

out = ["# Generated from Cargo.lock by scripts/yocto-crates.sh (the format of",
       "# `bitbake -c update_crates gatewatch`). Do not edit by hand.", "",
       "# from Cargo.lock", 'SRC_URI += "\\']
sums = []
for c in crates:
    key = f"{c['name']}-{c['version']}"
    out.append(f"    crate://crates.io/{c['name']}/{c['version']};name={key} \\")
    if "checksum" not in c:
        sys.exit(f"yocto-crates: {key} has no checksum in {lock_path}")
    sums.append(f'SRC_URI[{key}.sha256sum] = "{c["checksum"]}"')
out.append('"')
out.append("")
out.extend(sums)
print("\n".join(out))
PY
}

case "${1:-}" in
  --check)
    if ! diff -q <(render) "$include" >/dev/null 2>&1; then
      echo "yocto-crates: $include is out of date with Cargo.lock: run scripts/yocto-crates.sh and commit it" >&2
      exit 1
    fi
    echo "yocto-crates: $(grep -c '^SRC_URI\[' "$include") crates, up to date with Cargo.lock"
    ;;
  "")
    render >"$include.tmp"
    mv "$include.tmp" "$include"
    echo "yocto-crates: wrote $include ($(grep -c '^SRC_URI\[' "$include") crates)"
    ;;
  *) echo "usage: scripts/yocto-crates.sh [--check]" >&2; exit 2 ;;
esac
