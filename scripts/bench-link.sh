#!/usr/bin/env bash
# Link benchmark: sustained events/s from agent to manager over TLS on loopback, with 200-byte
# events, and the agent's peak RSS. The agent is pinned to one core, the manager to the other.
#
#   scripts/bench-link.sh            # N=300000 events
#   N=1000000 scripts/bench-link.sh
#
# Prints one summary line; docs/PERFORMANCE.md records results with machine and command.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-300000}
BODY=${BODY:-200}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/gatewatch/target}"

cargo build --release --quiet --no-default-features --features gateway --bin gatewatch
cargo build --release --quiet -p gatewatch-manager
agent_bin="$CARGO_TARGET_DIR/release/gatewatch"
manager_bin="$CARGO_TARGET_DIR/release/gatewatch-manager"

tmp=$(mktemp -d)
cleanup() { kill "${agent_pid:-}" "${manager_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

cores=$(nproc)
agent_core=0
manager_cores="$(( cores > 1 ? 1 : 0 ))-$(( cores - 1 ))"
taskset -c "$manager_cores" "$manager_bin" --data-dir "$tmp/manager" --listen 127.0.0.1 --name 127.0.0.1 \
  --events-port 0 --enroll-port 0 --log-level warn >/dev/null &
manager_pid=$!
for _ in $(seq 100); do [ -f "$tmp/manager/manager.ports" ] && break; sleep 0.1; done
events_port=$(sed -n 's/^events=//p' "$tmp/manager/manager.ports")
enroll_port=$(sed -n 's/^enroll=//p' "$tmp/manager/manager.ports")

cat > "$tmp/agent.toml" <<TOML
[agent]
name = "bench"
state_dir = "$tmp/agent"
[manager]
addresses = ["127.0.0.1"]
port = $events_port
[enrollment]
port = $enroll_port
ca = "$tmp/manager/ca.pem"
[buffer]
events_per_second = 0
[modules.generator]
enabled = true
count = $N
rate = 0
body_bytes = $BODY
TOML
GATEWATCH_LOG=warn "$agent_bin" enroll --config "$tmp/agent.toml" >/dev/null

start=$(date +%s.%N)
GATEWATCH_LOG=warn taskset -c "$agent_core" "$agent_bin" run --config "$tmp/agent.toml" &
agent_pid=$!
target=$((N + 1)) # the generator's events plus agent.started
acked=0
while [ "$acked" -lt "$target" ]; do
  sleep 0.2
  acked=$("$agent_bin" status --config "$tmp/agent.toml" 2>/dev/null | sed -n 's/.*acked_seq=\([0-9]*\).*/\1/p')
  acked=${acked:-0}
done
end=$(date +%s.%N)
hwm_kb=$(awk '/VmHWM/ {print $2}' "/proc/$agent_pid/status")
read -r utime stime < <(awk '{print $14, $15}' "/proc/$agent_pid/stat")
ticks=$(getconf CLK_TCK)
stored=$(python3 - "$tmp/manager/manager.db" <<'PY'
import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("select count(*) from events").fetchone()[0])
PY
)
python3 - "$N" "$start" "$end" "$hwm_kb" "$utime" "$stime" "$ticks" "$stored" "$BODY" <<'PY'
import sys
n, start, end, hwm, ut, st, ticks, stored, body = sys.argv[1:]
secs = float(end) - float(start)
cpu = (int(ut) + int(st)) / int(ticks)
print(f"events={n} body_bytes={body} seconds={secs:.2f} events_per_s={int(n)/secs:,.0f} "
      f"agent_cpu_s={cpu:.2f} agent_peak_rss_mib={int(hwm)/1024:.2f} stored_at_manager={stored}")
PY
