#!/usr/bin/env bash
# Measures the idle memory of an agent binary: starts a native manager on loopback, enrolls the
# agent, lets it run connected and idle for N seconds (keep-alives only, the generator enabled
# at one event per second unless --quiet), then reads VmHWM (peak) and VmRSS from
# /proc/<pid>/status and the agent's own heap counters from `gatewatch status`.
#
#   scripts/measure-idle-rss.sh [--seconds N] [--quiet] [--manager BIN] AGENT_BIN [RUNNER]
#
# RUNNER runs a foreign binary (e.g. qemu-aarch64-static). Under qemu-user the figures are those
# of the emulator process: qemu adds about 11.5 MB of its own, so compare architectures with the
# agent's heap counters, and absolute RSS only natively.
# --manager defaults to $CARGO_TARGET_DIR/debug/gatewatch-manager (cargo build -p gatewatch-manager).
set -euo pipefail

seconds=30 quiet=no
manager="${CARGO_TARGET_DIR:-/var/cache/gatewatch/target}/debug/gatewatch-manager"
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --quiet) quiet=yes; shift ;;
    --manager) manager=$2; shift 2 ;;
    -*) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: scripts/measure-idle-rss.sh [--seconds N] [--quiet] [--manager BIN] AGENT_BIN [RUNNER]" >&2; exit 2; }
agent=$1
runner=${2:-}
[ -x "$agent" ] || { echo "measure-idle-rss: $agent is not an executable" >&2; exit 1; }
[ -x "$manager" ] || { echo "measure-idle-rss: no manager at $manager (cargo build -p gatewatch-manager)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/manager"
printf 'measure-pass' >"$work/manager/authd.pass"
"$manager" --data-dir "$work/manager" --listen 127.0.0.1 --name 127.0.0.1 \
  --events-port 0 --enroll-port 0 --password-file "$work/manager/authd.pass" \
  >/dev/null 2>"$work/manager.log" &
pids+=($!)
for _ in $(seq 1 300); do [ -f "$work/manager/manager.ports" ] && break; sleep 0.1; done
[ -f "$work/manager/manager.ports" ] || { cat "$work/manager.log" >&2; exit 1; }
events_port=$(sed -n 's/^events=//p' "$work/manager/manager.ports")
enroll_port=$(sed -n 's/^enroll=//p' "$work/manager/manager.ports")

generator="enabled = true
rate = 1"
[ "$quiet" = yes ] && generator="enabled = false"
cat >"$work/agent.toml" <<EOF
[agent]
name = "rss-probe"
state_dir = "$work/state"

[manager]
addresses = ["127.0.0.1"]
port = $events_port

[enrollment]
port = $enroll_port
ca = "$work/manager/ca.pem"
password = "measure-pass"

[modules.generator]
$generator
EOF

# shellcheck disable=SC2086 # an empty runner is no word at all
$runner "$agent" enroll --config "$work/agent.toml" >/dev/null 2>"$work/enroll.log" ||
  { cat "$work/enroll.log" >&2; exit 1; }
# shellcheck disable=SC2086
$runner "$agent" run --config "$work/agent.toml" >/dev/null 2>"$work/agent.log" &
agent_pid=$!
pids+=("$agent_pid")
sleep "$seconds"

status_line() { sed -n "s/^$1:[[:space:]]*//p" "/proc/$agent_pid/status"; }
hwm=$(status_line VmHWM)
rss=$(status_line VmRSS)
threads=$(status_line Threads)
# shellcheck disable=SC2086
report=$($runner "$agent" status --config "$work/agent.toml" 2>&1 || true)
echo "agent: $agent${runner:+ (under $runner)}"
echo "after ${seconds} s: VmHWM ${hwm}, VmRSS ${rss}, threads ${threads}"
printf '%s\n' "$report" | grep -E '^(link|memory|module)' || printf '%s\n' "$report"
