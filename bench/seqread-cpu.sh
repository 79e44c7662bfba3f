#!/usr/bin/env bash
# 1 MiB sequential reads of cached data (SSD tier, RAM tier off) against blockcache and
# nbdkit file on the same data, in turns: each server's IOPS and its own CPU (all its threads,
# from /proc) per request. Used to find where 1 MiB hits lose to nbdkit (bench/RESULTS.md,
# "1 MiB reads on the SSD tier: where the time goes").
#
# usage: bash bench/seqread-cpu.sh [TREE] [SECONDS] [ROUNDS] [pin]
#   TREE: a built checkout (default: this one); SECONDS per run (default 8); ROUNDS of
#   blockcache then nbdkit (default 2); 'pin' puts both servers (every thread) on CPU 1.
set -euo pipefail
tree=$(cd "${1:-$(dirname "$0")/..}" && pwd)
seconds=${2:-8}
rounds=${3:-2}
pin=${4:-}
case "$pin" in ''|pin) ;; *) echo "seqread-cpu: the fourth argument is 'pin' or nothing, not '$pin'" >&2; exit 2 ;; esac
# shellcheck source=bench/support/standalone.sh
source "$(dirname "$0")/support/standalone.sh"
bench_setup seqread-cpu
peer_pid=
trap '[ -n "$peer_pid" ] && kill "$peer_pid" 2>/dev/null; bench_cleanup' EXIT
head -c $((256 << 20)) /dev/urandom > "$work/origin.img"
cp "$work/origin.img" "$work/peer.img"
bench_serve "$tree" 540M --ram-cache 0 --set dirty-threshold=100 --set dirty-max-age=off
nbdkit -U "$work/peer.sock" -P "$work/peer.pid" file "$work/peer.img"
for _ in $(seq 50); do [ -s "$work/peer.pid" ] && break; sleep 0.1; done
peer_pid=$(cat "$work/peer.pid")
if [ "$pin" = pin ]; then taskset -a -p -c 1 "$pid" >/dev/null; taskset -a -p -c 1 "$peer_pid" >/dev/null; fi
# Every block cached in blockcache; the peer's file in the page cache.
fio --name=fill --ioengine=nbd --uri="$uri" --rw=read --bs=1M --iodepth=8 --size=256M >/dev/null 2>&1
cat "$work/peer.img" >/dev/null

measure() { # NAME PID URI
  local before after terse kib iops
  before=$(server_ticks "$2")
  terse=$(fio --name=measure --ioengine=nbd --uri="$3" --rw=read --bs=1M --iodepth=8 --size=256M --time_based \
    --runtime="$seconds" --output-format=terse 2>/dev/null | tail -n 1)
  after=$(server_ticks "$2")
  # Terse v3: field 6 is KiB read, 8 read IOPS.
  kib=$(cut -d';' -f6 <<<"$terse")
  iops=$(cut -d';' -f8 <<<"$terse")
  awk -v name="$1" -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" -v requests=$((kib / 1024)) -v iops="$iops" -v s="$seconds" \
    'BEGIN { printf "%-10s %6d IOPS, server CPU %3.0f%% of a core, %4.0f us per request\n", name, iops, 100 * ticks / hz / s, 1e6 * ticks / hz / requests }'
}
for _ in $(seq "$rounds"); do
  measure blockcache "$pid" "$uri"
  measure nbdkit "$peer_pid" "nbd+unix:///?socket=$work/peer.sock"
done
