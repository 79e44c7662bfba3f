#!/usr/bin/env bash
# One cold pass through a freshly created cache (issue 7), blockcache alone: throughput,
# latency, block hit ratio and the server's own CPU (all its threads, from /proc). An A/B of a
# change to the miss path compares two builds with this, runs alternating;
# `npm run bench -- --only cold` compares against nbdkit.
#   read, write  1 MiB sequential requests at depth 8 over a 256 MiB origin, once
#   randread     4 KiB uniform random reads at depth 32 over a 1 GiB origin for SECONDS: the
#                cost of readahead in front of a fast origin while the cache fills
#
# usage: bash bench/cold-pass.sh [TREE] [read|write|randread] [RAM-CACHE (0)] [READAHEAD (default)] [SECONDS (8)]
#   TREE: a built checkout (default: this one).
set -euo pipefail
tree=$(cd "${1:-$(dirname "$0")/..}" && pwd)
rw=${2:-read}
ram=${3:-0}
readahead=${4:-}
seconds=${5:-8}
case "$rw" in read|write|randread) ;; *) echo "cold-pass: pattern must be read, write or randread, not '$rw'" >&2; exit 2 ;; esac
# shellcheck source=bench/support/standalone.sh
source "$(dirname "$0")/support/standalone.sh"
bench_setup cold-pass
if [ "$rw" = randread ]; then
  head -c $((1 << 30)) /dev/urandom > "$work/origin.img"
  job=(--bs=4k --iodepth=32 --size=1G --time_based --runtime="$seconds" --randrepeat=1 --norandommap)
else
  head -c $((256 << 20)) /dev/urandom > "$work/origin.img"
  job=(--bs=1M --iodepth=8 --size=256M)
fi
bench_serve "$tree" 600M --ram-cache "$ram" ${readahead:+--set "readahead=$readahead"}
before=$(server_ticks); started=$(date +%s%N)
fio --name=cold --ioengine=nbd --uri="$uri" --rw="$rw" "${job[@]}" --output-format=json --output="$work/fio.json" >/dev/null
after=$(server_ticks); ended=$(date +%s%N)
node "$tree/dist/src/cli/main.js" status --control "$control" --json > "$work/status.json"
python3 - "$rw" "$work/fio.json" "$work/status.json" "$(( (after - before) * 1000 / $(getconf CLK_TCK) ))" "$(( (ended - started) / 1000000 ))" <<'PY'
import json, sys
rw, path, status_path, cpu_ms, wall_ms = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
job = json.load(open(path))["jobs"][0]["write" if rw == "write" else "read"]
status = json.load(open(status_path))
pct = job["clat_ns"]["percentile"]
hits, misses = status["readHits"], status["readMisses"]
hit = f", block read hits {100 * hits / (hits + misses):.0f}%" if hits + misses > 0 else ""
print(f"cold {rw}: {job['bw'] / 1024:.0f} MiB/s, {job['iops']:.0f} IOPS, p50 {pct['50.000000'] / 1e6:.2f} ms, "
      f"p99 {pct['99.000000'] / 1e6:.2f} ms; server CPU {cpu_ms} ms over {wall_ms} ms; "
      f"readahead {status['readaheadBytes'] // 1024} KiB{hit}")
PY
