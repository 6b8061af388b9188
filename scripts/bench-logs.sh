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
count_stored() {
  python3 - "$mdir/manager.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=5)
print(db.execute("SELECT COUNT(*) FROM events WHERE kind = 'log.line'").fetchone()[0])
PY
}
start=$(now)
"$bin/gatewatch" run --config "$adir/agent.toml" >/dev/null 2>"$work/agent.err" &
apid=$!; pids+=($apid)
# Read and spooled (the collector's own pace), then stored by the manager (end to end).
spooled_at=""
while :; do
  if [ -z "$spooled_at" ]; then
    generated=$("$bin/gatewatch" status --config "$adir/agent.toml" 2>/dev/null \
      | sed -n 's/.*generated=\([0-9]*\).*/\1/p' || true)
    if [ "${generated:-0}" -ge "$lines" ]; then
      spooled_at=$(now); gw_spool_cpu=$(cpu_secs "$apid")
    fi
  fi
  stored=$(count_stored 2>/dev/null || echo 0)
  [ "$stored" -ge "$lines" ] && break
  sleep 0.2
done
[ -n "$spooled_at" ] || { spooled_at=$(now); gw_spool_cpu=$(cpu_secs "$apid"); }
gw_spool_secs=$(python3 -c "print($spooled_at - $start)")
gw_secs=$(python3 -c "print($(now) - $start)")
gw_cpu=$(cpu_secs "$apid"); gw_rss=$(peak_rss_kib "$apid")
kill "$apid"; wait "$apid" 2>/dev/null || true
echo "gatewatch: spooled in ${gw_spool_secs} s (${gw_spool_cpu} CPU s), stored in ${gw_secs} s, ${gw_cpu} CPU s, ${gw_rss} KiB peak RSS" >&2

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
kill "$rpid"; wait "$rpid" 2>/dev/null || true

# ---------------------------------------------------------------- report
python3 - "$lines" "$bytes" "$gw_secs" "$gw_cpu" "$gw_rss" "$rs_secs" "$rs_cpu" "$rs_rss" \
  "$gw_spool_secs" "$gw_spool_cpu" <<'PY'
import sys
n, size = int(sys.argv[1]), int(sys.argv[2])
gw = [float(x) for x in sys.argv[3:6]]
rs = [float(x) for x in sys.argv[6:9]]
spool = [float(sys.argv[9]), float(sys.argv[10]), gw[2]]
def row(name, secs, cpu, rss):
    print(f"| {name} | {n / secs:,.0f} | {secs:.1f} | {cpu:.1f} | {rss / 1024:.1f} |")
print(f"{n:,} lines, {size / 1e6:.0f} MB")
print("| shipper | lines/s | wall s | CPU s | peak RSS MiB |")
print("|---|---|---|---|---|")
row("gatewatch (file → manager, TLS, stored)", *gw)
row("gatewatch, read and spooled only (same run)", *spool)
row("rsyslog (imfile → omfwd TCP)", *rs)
print(f"ratio gatewatch/rsyslog: lines/s {(n / gw[0]) / (n / rs[0]):.2f}×, "
      f"CPU {gw[1] / rs[1]:.2f}×, peak RSS {gw[2] / rs[2]:.2f}×")
PY
