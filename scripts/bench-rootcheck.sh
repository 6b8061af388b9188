#!/usr/bin/env bash
# Rootcheck benchmark: one full scan of this machine by gatewatch's rootcheck module (release
# gateway build, `gatewatch rootcheck`: the module's scan without the agent's link), paced at
# SHARE percent of a CPU (default 20) and unpaced, and by Debian's chkrootkit and rkhunter in the
# same run, for comparison. Prints one line per run: wall time, CPU seconds (user + system),
# peak RSS (from /usr/bin/time -v), and what it reported.
#
#   scripts/bench-rootcheck.sh
#   SHARE=10 scripts/bench-rootcheck.sh
#   SKIP_OTHERS=1 scripts/bench-rootcheck.sh     # gatewatch only
#
# gatewatch scans with its defaults (pids, ports, /dev, interfaces, modules, the system
# directories, the shipped signature databases in etc/rootcheck/), then once more with Wazuh's
# databases from ../shared/testdata when they are there. chkrootkit runs as `chkrootkit -q`,
# rkhunter as `rkhunter --check --sk --nocolors --rwo` (no interaction, warnings only). The page
# cache is warmed by a first unmeasured gatewatch scan. chkrootkit walks the whole disk: on a
# machine with large build trees it takes many minutes (14 on the dev VM). docs/PERFORMANCE.md
# records results with the machine and the command.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/install.sh
source scripts/lib/install.sh
SHARE=${SHARE:-20}
SKIP_OTHERS=${SKIP_OTHERS:-0}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/gatewatch/target}"

ensure_apt time
[ "$SKIP_OTHERS" = 1 ] || ensure_apt chkrootkit rkhunter

cargo build --release --quiet -p gatewatch --no-default-features --features gateway --bin gatewatch
bin="$CARGO_TARGET_DIR/release/gatewatch"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A configuration for `gatewatch rootcheck`: the [manager] table only makes it valid.
config() { # share files_db trojans_db
  cat <<TOML
[agent]
state_dir = "$tmp/state"
[manager]
addresses = ["127.0.0.1"]
[modules.rootcheck]
enabled = true
cpu_share_percent = $1
rootkit_files = "$2"
rootkit_trojans = "$3"
TOML
}

# Runs "$@" under /usr/bin/time -v and prints: label, wall, CPU, peak RSS, and $summary
# (a command over the output file $tmp/out that prints what the tool reported).
measure() { # label summary command...
  local label=$1 summary=$2
  shift 2
  /usr/bin/time -v "$@" >"$tmp/out" 2>"$tmp/time" || true
  local wall user sys rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; print s}' "$tmp/time")
  user=$(awk -F': ' '/User time/ {print $2}' "$tmp/time")
  sys=$(awk -F': ' '/System time/ {print $2}' "$tmp/time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/time")
  printf '%-44s wall %6.2f s  CPU %5.2f s (user %.2f + sys %.2f)  peak RSS %7s kB  %s\n' \
    "$label" "$wall" "$(awk "BEGIN {print $user + $sys}")" "$user" "$sys" "$rss" "$(eval "$summary")"
}

ours_files="$PWD/etc/rootcheck/rootkit_files.txt"
ours_trojans="$PWD/etc/rootcheck/rootkit_trojans.txt"
wazuh_dir="$PWD/../shared/testdata/wazuh-4.14.7/rootcheck"
gw_summary='tail -n 1 "$tmp/out" | sed "s/; examined.*//"'

config 100 "$ours_files" "$ours_trojans" >"$tmp/unpaced.toml"
config "$SHARE" "$ours_files" "$ours_trojans" >"$tmp/paced.toml"
"$bin" rootcheck --config "$tmp/unpaced.toml" >/dev/null 2>&1 # warm the page cache

echo "rootcheck benchmark on $(uname -srm), $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ)"
measure "gatewatch rootcheck, ${SHARE}% CPU share" "$gw_summary" \
  "$bin" rootcheck --config "$tmp/paced.toml"
measure "gatewatch rootcheck, unpaced" "$gw_summary" \
  "$bin" rootcheck --config "$tmp/unpaced.toml"
if [ -f "$wazuh_dir/rootkit_files.txt" ]; then
  config "$SHARE" "$wazuh_dir/rootkit_files.txt" "$wazuh_dir/rootkit_trojans.txt" >"$tmp/wazuh.toml"
  measure "gatewatch rootcheck, ${SHARE}%, Wazuh's databases" "$gw_summary" \
    "$bin" rootcheck --config "$tmp/wazuh.toml"
fi
grep -v '^rootcheck:' "$tmp/out" | sed 's/^/    /' || true
if [ "$SKIP_OTHERS" != 1 ]; then
  measure "chkrootkit -q ($(dpkg-query -W -f='${Version}' chkrootkit))" \
    'echo "$(grep -c "INFECTED" "$tmp/out" || true) INFECTED lines, $(grep -vc "^$" "$tmp/out" || true) output lines"' \
    chkrootkit -q
  measure "rkhunter --check ($(dpkg-query -W -f='${Version}' rkhunter))" \
    'echo "$(grep -c "Warning" "$tmp/out" || true) warnings"' \
    rkhunter --check --sk --nocolors --rwo
fi
