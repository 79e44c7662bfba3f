#!/usr/bin/env bash
# 1 MiB sequential rewrites of cached data (writeback, or writethrough), blockcache alone: throughput and
# the server's own CPU (all its threads, from /proc) per MiB written. An A/B of a change to the
# large-write path compares two builds with this, runs alternating (bench/RESULTS.md, "Large
# rewrites of cached data"); `npm run bench` compares the same pattern against nbdkit.
#
# usage: bash bench/rewrite-cpu.sh [TREE] [WORKING-SET-MiB (256)] [SECONDS (6)] [MODE (writeback)]
#   TREE: a built checkout (default: this one). A 256 MiB origin and a 540 MiB cache, `serve`
#   defaults (RAM tier 64 MiB) with background writeback paused; the data is written once (a
#   cold run: cached dirty on the SSD tier) and read twice over the working set (which brings
#   up to 64 MiB of it into RAM), then rewritten at depth 8 for SECONDS. A working set of
#   32 MiB fits in the RAM tier; 256 MiB does not. In writethrough every rewrite also goes to the
#   origin (a file in the page cache), so the figure includes its writes.
set -euo pipefail
tree=$(cd "${1:-$(dirname "$0")/..}" && pwd)
ws=${2:-256}
seconds=${3:-6}
bench_mode=${4:-writeback}
case "$bench_mode" in writeback|writethrough) ;; *) echo "rewrite-cpu: the mode is writeback or writethrough, not '$bench_mode'" >&2; exit 2 ;; esac
case "$ws" in ''|*[!0-9]*) echo "rewrite-cpu: the working set is a whole number of MiB up to 256, not '$ws'" >&2; exit 2 ;; esac
if [ "$ws" -lt 1 ] || [ "$ws" -gt 256 ]; then echo "rewrite-cpu: the working set is 1 to 256 MiB, not $ws" >&2; exit 2; fi
# shellcheck source=bench/support/standalone.sh
source "$(dirname "$0")/support/standalone.sh"
bench_setup rewrite-cpu
head -c $((256 << 20)) /dev/urandom > "$work/origin.img"
bench_serve "$tree" 540M --set dirty-threshold=100 --set dirty-max-age=off
fio --name=fill --ioengine=nbd --uri="$uri" --rw=write --bs=1M --iodepth=8 --size=256M >/dev/null 2>&1
for _ in 1 2; do fio --name=warm --ioengine=nbd --uri="$uri" --rw=read --bs=1M --iodepth=8 --size="${ws}M" >/dev/null 2>&1; done
before=$(server_ticks)
terse=$(fio --name=measure --ioengine=nbd --uri="$uri" --rw=write --bs=1M --iodepth=8 --size="${ws}M" --time_based \
  --runtime="$seconds" --output-format=terse 2>/dev/null | tail -n 1)
after=$(server_ticks)
# Terse v3: field 47 is KiB written, 48 the write bandwidth in KiB/s.
kib=$(cut -d';' -f47 <<<"$terse")
awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v kib="$kib" -v bw="$(cut -d';' -f48 <<<"$terse")" -v tree="$tree" -v ws="$ws" -v mode="$bench_mode" \
  'BEGIN { printf "%s, working set %d MiB, " mode ": %.0f MiB/s, server CPU %.0f us per MiB written\n", tree, ws, bw / 1024, 1e6 * t / hz / (kib / 1024) }'
