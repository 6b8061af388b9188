#!/usr/bin/env bash
# Log shipping benchmark: the same file of syslog lines shipped by gatewatch (file → manager over
# TLS, stored in the manager's SQLite) and by Debian's rsyslog (imfile → omfwd TCP to a local
# listener that counts lines), one after the other in one run. Reports lines/s, CPU seconds and
# peak RSS of each shipper, and the ratios.
#
# Usage: scripts/bench-logs.sh [LINES]        (default 2000000)
# Needs: rsyslog (apt-get install rsyslog), python3, a release build (done here).
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-2000000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/gatewatch/target}"
command -v rsyslogd >/dev/null || { echo "rsyslogd missing: apt-get install rsyslog" >&2; exit 1; }

echo "building release binaries..." >&2
cargo build --release --workspace --bins -q
bin="$CARGO_TARGET_DIR/release"

work=$(mktemp -d /tmp/bench-logs.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# CPU seconds (user + system) of a process, from /proc.
cpu_secs() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
peak_rss_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
now() { date +%s.%N; }

echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "writing $lines syslog lines..." >&2
log="$work/input.log"
awk -v n="$lines" 'BEGIN { for (i = 0; i < n; i++) printf "Nov 28 04:00:%02d gw01 app[1234]: request %08d served in 12 ms from 10.0.%d.%d user=alice status=200\n", i % 60, i, (i / 256) % 256, i % 256 }' > "$log"
bytes=$(stat -c %s "$log")

# ---------------------------------------------------------------- gatewatch
mdir="$work/manager"; adir="$work/agent"; mkdir -p "$mdir" "$adir"
eport=$(free_port); rport=$(free_port)
"$bin/gatewatch-manager" --data-dir "$mdir" --listen 127.0.0.1 --name 127.0.0.1 \
  --events-port "$eport" --enroll-port "$rport" >/dev/null 2>"$work/manager.err" &
pids+=($!)
for _ in $(seq 100); do [ -e "$mdir/manager.ports" ] && break; sleep 0.1; done
cat > "$adir/agent.toml" <<EOF
[agent]
name = "bench"
state_dir = "$adir/state"
[manager]
addresses = ["127.0.0.1"]
port = $eport
[enrollment]
port = $rport
ca = "$mdir/ca.pem"
[buffer]
events_per_second = 0
queue_capacity = 4096
spool_max_bytes = 2147483648
spool_segment_bytes = 8388608
[modules.logcollector]
enabled = true
[[modules.logcollector.sources]]
location = "$log"
only_future = false
EOF
"$bin/gatewatch" enroll --config "$adir/agent.toml" >/dev/null 2>&1
# Lines arrive in `log.batch` events, in order: the run is over when the newest stored batch
# holds the file's last line. One watcher process polls every 50 ms and writes the time it saw
# it (starting a Python per poll would take CPU from the shippers on a small machine); the total
# is counted once, after the clock stops.
last_line=$(printf 'request %08d ' $((lines - 1)))
watch_stored() {
  python3 - "$mdir/manager.db" "$last_line" "$work/gw.done" <<'PY' &
import sqlite3, sys, time
path, last, done = sys.argv[1:4]
db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
while True:
    row = db.execute("SELECT payload FROM events ORDER BY agent_id DESC, seq DESC LIMIT 1").fetchone()
    if row and last in row[0]:
        open(done, "w").write(f"{time.time()}\n")
        break
    time.sleep(0.05)
PY
  pids+=($!)
}
count_stored() {
  python3 - "$mdir/manager.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=30)
print(db.execute("SELECT COUNT(*), COALESCE(SUM(json_array_length(payload, '$.LogBatch.entries')), 0) "
                 "FROM events WHERE kind = 'log.batch'").fetchone()[1])
PY
}
watch_stored
start=$(now)
"$bin/gatewatch" run --config "$adir/agent.toml" >/dev/null 2>"$work/agent.err" &
apid=$!; pids+=($apid)
until [ -s "$work/gw.done" ]; do sleep 0.2; done
gw_secs=$(python3 -c "print($(cat "$work/gw.done") - $start)")
gw_cpu=$(cpu_secs "$apid"); gw_rss=$(peak_rss_kib "$apid")
mgr_cpu=$(cpu_secs "${pids[0]}")
# Time the agent's thread waited for a CPU (others' work on a shared machine), from schedstat.
gw_queued=$(awk '{printf "%.1f", $2 / 1e9}' "/proc/$apid/schedstat")
kill "$apid"; wait "$apid" 2>/dev/null || true
stored=$(count_stored)
[ "$stored" = "$lines" ] || { echo "gatewatch: the manager holds $stored lines, not $lines" >&2; exit 1; }
echo "gatewatch: $stored lines stored in ${gw_secs} s, agent ${gw_cpu} CPU s (manager ${mgr_cpu}), ${gw_rss} KiB peak RSS; the agent waited ${gw_queued} s for a CPU" >&2

# ---------------------------------------------------------------- rsyslog
sdir="$work/rsyslog"; mkdir -p "$sdir/work"
lport=$(free_port)
python3 - "$lport" "$lines" "$sdir/done" <<'PY' &
# Counts lines on every connection (rsyslog may open more than one) until all arrived.
import socket, sys, threading, time
port, want, done = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port)); srv.listen(16)
lock = threading.Lock(); count = [0]
def serve(conn):
    while True:
        data = conn.recv(1 << 20)
        if not data:
            return
        with lock:
            count[0] += data.count(b"\n")
            if count[0] >= want:
                open(done, "w").write(f"{time.time()}\n")
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
PY
pids+=($!)
sleep 0.3
cat > "$sdir/rsyslog.conf" <<EOF
global(workDirectory="$sdir/work")
module(load="imfile")
input(type="imfile" file="$log" tag="app" ruleset="fwd")
ruleset(name="fwd") {
  action(type="omfwd" target="127.0.0.1" port="$lport" protocol="tcp")
}
EOF
start=$(now)
rsyslogd -n -f "$sdir/rsyslog.conf" -i "$sdir/rsyslog.pid" 2>"$work/rsyslog.err" &
rpid=$!; pids+=($rpid)
until [ -s "$sdir/done" ]; do sleep 0.2; done
rs_secs=$(python3 -c "print($(cat "$sdir/done") - $start)")
rs_cpu=$(cpu_secs "$rpid"); rs_rss=$(peak_rss_kib "$rpid")
rs_queued=$(for t in /proc/$rpid/task/*; do cat "$t/schedstat"; done | awk '{w += $2} END {printf "%.1f", w / 1e9}')
echo "rsyslog: its threads waited ${rs_queued} s for a CPU; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
kill "$rpid"; wait "$rpid" 2>/dev/null || true

# ---------------------------------------------------------------- report
python3 - "$lines" "$bytes" "$gw_secs" "$gw_cpu" "$gw_rss" "$rs_secs" "$rs_cpu" "$rs_rss" \
  "$mgr_cpu" <<'PY'
import sys
n, size = int(sys.argv[1]), int(sys.argv[2])
gw = [float(x) for x in sys.argv[3:6]]
rs = [float(x) for x in sys.argv[6:9]]
manager_cpu = float(sys.argv[9])
def row(name, secs, cpu, rss):
    print(f"| {name} | {n / secs:,.0f} | {secs:.1f} | {cpu:.1f} | {rss / 1024:.1f} |")
print(f"{n:,} lines, {size / 1e6:.0f} MB")
print("| shipper | lines/s | wall s | CPU s | peak RSS MiB |")
print("|---|---|---|---|---|")
row("gatewatch (file → manager, TLS, stored)", *gw)
row("rsyslog (imfile → omfwd TCP)", *rs)
print(f"ratio gatewatch/rsyslog: lines/s {(n / gw[0]) / (n / rs[0]):.2f}×, "
      f"CPU {gw[1] / rs[1]:.2f}×, peak RSS {gw[2] / rs[2]:.2f}×")
print(f"(the receiving manager used {manager_cpu:.1f} CPU s: TLS, decoding, SQLite)")
PY
