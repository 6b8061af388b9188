#!/usr/bin/env bash
# SCA and inventory benchmark on this machine.
#
#   scripts/bench-sca.sh
#
# 1. The agent (gateway build, release) runs Wazuh's cis_debian12.yml once: wall time of the
#    policy scan (from the module's log line), agent CPU (its own and its command children's),
#    agent peak RSS, and the SCA module's peak heap from `gatewatch status` (the counting
#    allocator's figure for that module alone).
# 2. In the same run, OpenSCAP evaluates the SCAP Security Guide's `standard` profile for Debian
#    (Debian packages openscap-scanner and ssg-debian): wall time, CPU and peak RSS (GNU time).
#    ssg-debian ships data streams for Debian 10 and 11 only; on other releases the platform
#    checks would mark every rule "notapplicable", so a copy with the platform elements removed
#    is evaluated (every rule of the profile is then really checked).
# 3. The inventory module scans the live system once: scan time and module peak heap.
#
# Prints one line per measurement; docs/PERFORMANCE.md records results with machine and command.
set -euo pipefail
# OpenSCAP (the comparison) and rpm are installed when missing.
if ! command -v oscap >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openscap-scanner ssg-debian rpm >/dev/null
fi
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/gatewatch/target}"
POLICY=${POLICY:-../shared/testdata/wazuh-4.14.7/sca/cis_debian12.yml}
SSG=${SSG:-/usr/share/xml/scap/ssg/content/ssg-debian11-ds.xml}
PROFILE=${PROFILE:-xccdf_org.ssgproject.content_profile_standard}
[ -f "$POLICY" ] || { echo "policy not found: $POLICY" >&2; exit 1; }

cargo build --release --quiet --no-default-features --features gateway --bin gatewatch
cargo build --release --quiet -p gatewatch-manager
agent_bin="$CARGO_TARGET_DIR/release/gatewatch"
manager_bin="$CARGO_TARGET_DIR/release/gatewatch-manager"

tmp=$(mktemp -d)
cleanup() { kill "${agent_pid:-}" "${manager_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

"$manager_bin" --data-dir "$tmp/manager" --listen 127.0.0.1 --name 127.0.0.1 \
  --events-port 0 --enroll-port 0 --log-level warn >/dev/null &
manager_pid=$!
for _ in $(seq 100); do [ -f "$tmp/manager/manager.ports" ] && break; sleep 0.1; done
events_port=$(sed -n 's/^events=//p' "$tmp/manager/manager.ports")
enroll_port=$(sed -n 's/^enroll=//p' "$tmp/manager/manager.ports")

# Runs the agent with the given module tables until `pattern` appears in its log; sets
# agent_log, and leaves the agent running (agent_pid) for the caller to read its figures.
run_agent() {
  local name=$1 modules=$2 pattern=$3
  mkdir -p "$tmp/$name"
  cat > "$tmp/$name/agent.toml" <<TOML
[agent]
name = "bench-$name"
state_dir = "$tmp/$name/state"
[manager]
addresses = ["127.0.0.1"]
port = $events_port
[enrollment]
port = $enroll_port
ca = "$tmp/manager/ca.pem"
[buffer]
events_per_second = 0
$modules
TOML
  GATEWATCH_LOG=warn "$agent_bin" enroll --config "$tmp/$name/agent.toml" >/dev/null
  agent_log="$tmp/$name/agent.log"
  GATEWATCH_LOG=info "$agent_bin" run --config "$tmp/$name/agent.toml" 2>"$agent_log" &
  agent_pid=$!
  for _ in $(seq 600); do grep -q "$pattern" "$agent_log" && return 0; sleep 0.1; done
  echo "timed out waiting for '$pattern'; log:" >&2; cat "$agent_log" >&2; exit 1
}

# Prints `<module peak bytes> <agent peak RSS KiB> <agent CPU s> <children CPU s>`.
agent_figures() {
  local module=$1 config=$2
  local peak
  peak=$("$agent_bin" status --config "$config" 2>/dev/null | sed -n "s/^module $module .* peak=\([0-9]*\).*/\1/p")
  local hwm
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$agent_pid/status")
  local ticks
  ticks=$(getconf CLK_TCK)
  awk -v peak="${peak:-0}" -v hwm="$hwm" -v t="$ticks" '{printf "%s %s %.2f %.2f\n", peak, hwm, ($14+$15)/t, ($16+$17)/t}' "/proc/$agent_pid/stat"
}

# 1. SCA: the CIS Debian 12 policy.
mkdir -p "$tmp/policies"
cp "$POLICY" "$tmp/policies/"
run_agent sca "[modules.sca]
enabled = true
policies_dir = \"$tmp/policies\"
interval_secs = 86400" "sca: .* scanned in"
line=$(grep "sca: .* scanned in" "$agent_log" | head -1)
ms=$(sed -n 's/.*scanned in \([0-9]*\) ms: \([0-9]*\) checks.*/\1/p' <<<"$line")
checks=$(sed -n 's/.*scanned in \([0-9]*\) ms: \([0-9]*\) checks.*/\2/p' <<<"$line")
read -r peak hwm cpu children < <(agent_figures sca "$tmp/sca/agent.toml")
echo "gatewatch sca: policy=$(basename "$POLICY") checks=$checks wall_ms=$ms per_check_ms=$(awk -v a="$ms" -v b="$checks" 'BEGIN{printf "%.1f", a/b}') agent_cpu_s=$cpu command_children_cpu_s=$children module_peak_kib=$((peak / 1024)) agent_peak_rss_kib=$hwm"
echo "  ($line)" | sed 's/^  (gatewatch INFO  [^ ]* /  (/'
kill "$agent_pid"; wait "$agent_pid" 2>/dev/null || true

# 2. OpenSCAP on the same machine.
if command -v oscap >/dev/null && [ -f "$SSG" ]; then
  sed -E 's#<(xccdf-1\.2:)?platform idref="[^"]*"/>##g' "$SSG" > "$tmp/ssg-ds.xml"
  /usr/bin/time -f "%e %U %S %M" -o "$tmp/oscap.time" \
    oscap xccdf eval --profile "$PROFILE" "$tmp/ssg-ds.xml" >"$tmp/oscap.out" 2>/dev/null || true
  read -r wall user sys rss < <(tail -n 1 "$tmp/oscap.time")
  rules=$(grep -c '^Result' "$tmp/oscap.out" || true)
  results=$(grep '^Result' "$tmp/oscap.out" | awk '{print $2}' | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}')
  echo "oscap: profile=${PROFILE##*_profile_} datastream=$(basename "$SSG") rules=$rules wall_ms=$(awk -v w="$wall" 'BEGIN{printf "%d", w*1000}') per_rule_ms=$(awk -v w="$wall" -v r="$rules" 'BEGIN{printf "%.1f", w*1000/r}') cpu_s=$(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u+s}') peak_rss_kib=$rss results: $results"
else
  echo "oscap: not installed (apt-get install openscap-scanner ssg-debian)"
fi

# 3. Inventory of the live system.
run_agent inventory "[modules.inventory]
enabled = true
interval_secs = 86400" "inventory: scan done"
line=$(grep "inventory: scan done" "$agent_log" | head -1)
read -r peak hwm cpu children < <(agent_figures inventory "$tmp/inventory/agent.toml")
echo "gatewatch inventory: $(sed -n 's/.*scan done in \([0-9]*\) ms: \([0-9]*\) rows.*/wall_ms=\1 rows=\2/p' <<<"$line") agent_cpu_s=$cpu module_peak_kib=$((peak / 1024)) agent_peak_rss_kib=$hwm"
