#!/usr/bin/env bash
# One cold pass through a freshly created cache (issue 7): throughput, latency and the
# server's own CPU (all its threads, from /proc) for 1 MiB sequential requests at depth 8
# over a 256 MiB origin, blockcache alone. An A/B of a change to the miss path compares
# two builds with this, runs alternating; `npm run bench -- --only cold` compares against
# nbdkit.
#
# usage: bash bench/cold-pass.sh [TREE] [read|write] [RAM-CACHE]
#   TREE: a built checkout (default: this one); RAM-CACHE: serve --ram-cache (default 0).
set -euo pipefail
tree=$(cd "${1:-$(dirname "$0")/..}" && pwd)
rw=${2:-read}
ram=${3:-0}
case "$rw" in read|write) ;; *) echo "cold-pass: pattern must be read or write, not '$rw'" >&2; exit 2 ;; esac
export PATH=/usr/bin:$PATH
command -v fio >/dev/null || { echo "cold-pass: fio is missing (bash scripts/setup.sh test installs it)" >&2; exit 1; }
work=$(mktemp -d /tmp/blockcache-cold-pass-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
head -c $((256 << 20)) /dev/urandom > "$work/origin.img"
truncate -s 600M "$work/cache.img"
node "$tree/dist/src/cli/main.js" create --cache "$work/cache.img" --origin "$work/origin.img" --mode writeback >/dev/null
node "$tree/dist/src/cli/main.js" serve --cache "$work/cache.img" --socket "$work/s.sock" --control "$work/c.sock" \
  --ram-cache "$ram" > "$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q '^ready ' "$work/serve.log" && break; sleep 0.1; done
grep -q '^ready ' "$work/serve.log" || { echo "cold-pass: the server did not start:" >&2; cat "$work/serve.log" >&2; exit 1; }
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
before=$(ticks); started=$(date +%s%N)
fio --name=cold --ioengine=nbd --uri="nbd+unix:///?socket=$work/s.sock" --rw="$rw" --bs=1M --iodepth=8 --size=256M \
  --output-format=json --output="$work/fio.json" >/dev/null
after=$(ticks); ended=$(date +%s%N)
python3 - "$rw" "$work/fio.json" "$(( (after - before) * 1000 / $(getconf CLK_TCK) ))" "$(( (ended - started) / 1000000 ))" <<'PY'
import json, sys
rw, path, cpu_ms, wall_ms = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
job = json.load(open(path))["jobs"][0][rw]
pct = job["clat_ns"]["percentile"]
print(f"cold {rw}: {job['bw'] / 1024:.0f} MiB/s, p50 {pct['50.000000'] / 1e6:.1f} ms, p99 {pct['99.000000'] / 1e6:.1f} ms; "
      f"server CPU {cpu_ms} ms over {wall_ms} ms")
PY
