#!/usr/bin/env bash
# The server's own CPU per request at a fixed request rate (issue 7): throughput on this
# 2-core VM swings by ±30% from run to run with the load fio and the peer put on the same
# cores, while the CPU the server spends per request moves much less; an A/B of a hot-path
# change compares this figure between two builds.
#
# usage: bash bench/server-cpu.sh [TREE] [randread|randwrite] [IOPS] [SECONDS] [RAM-CACHE (0)]
#   TREE: a built checkout (default: this one). Serves a 256 MiB origin through a 540 MiB
#   cache (--ram-cache RAM-CACHE, no background writeback), reads it once with 1 MiB requests so
#   every block is cached, then runs 4 KiB requests at depth 32 capped at IOPS (default
#   25000) for SECONDS (default 5) and prints the server process's user + system CPU
#   (all its threads, from /proc) per request.
set -euo pipefail
tree=$(cd "${1:-$(dirname "$0")/..}" && pwd)
rw=${2:-randread}
iops=${3:-25000}
seconds=${4:-5}
ram=${5:-0}
case "$rw" in randread|randwrite) ;; *) echo "server-cpu: pattern must be randread or randwrite, not '$rw'" >&2; exit 2 ;; esac
# shellcheck source=bench/support/standalone.sh
source "$(dirname "$0")/support/standalone.sh"
bench_setup server-cpu
head -c $((256 << 20)) /dev/zero | tr '\0' 'x' > "$work/origin.img"
bench_serve "$tree" 540M --ram-cache "$ram" --set dirty-threshold=100 --set dirty-max-age=off
fio --name=fill --ioengine=nbd --uri="$uri" --rw=read --bs=1M --iodepth=8 --size=256M >/dev/null 2>&1
before=$(server_ticks)
terse=$(fio --name=measure --ioengine=nbd --uri="$uri" --rw="$rw" --bs=4k --iodepth=32 --size=256M --time_based \
  --runtime="$seconds" --rate_iops="$iops" --output-format=terse 2>/dev/null | tail -n 1)
after=$(server_ticks)
# Terse v3: field 6 is KiB read, 47 KiB written.
if [ "$rw" = randread ]; then kib=$(cut -d';' -f6 <<<"$terse"); else kib=$(cut -d';' -f47 <<<"$terse"); fi
requests=$((kib / 4))
hz=$(getconf CLK_TCK)
awk -v t=$((after - before)) -v hz="$hz" -v n="$requests" -v tree="$tree" -v rw="$rw" \
  'BEGIN { printf "%s %s: %d requests, server CPU %.2f s, %.1f us per request\n", tree, rw, n, t / hz, 1e6 * t / hz / n }'
