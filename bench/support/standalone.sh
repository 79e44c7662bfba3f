# Shared by the standalone bench scripts (bench/server-cpu.sh, bench/cold-pass.sh); sourced.
#   bench_setup NAME            Debian's tools first in PATH, fio checked, $work made (removed on
#                               exit, with the server stopped)
#   bench_serve TREE CACHE-SIZE [SERVE-ARGS...]
#                               creates a cache over $work/origin.img in mode $bench_mode
#                               (default writeback), serves it from
#                               TREE's build; sets $pid, $uri, $control; fails if it does not start
#   server_ticks [PID]          a process's user + system CPU so far, in clock ticks (default: the server's)
bench_setup() {
  bench_name=$1
  export PATH=/usr/bin:$PATH
  command -v fio >/dev/null || { echo "$bench_name: fio is missing (bash scripts/setup.sh test installs it)" >&2; exit 1; }
  work=$(mktemp -d "/tmp/blockcache-$bench_name-XXXXXX")
  pid=
  trap 'bench_cleanup' EXIT
}

bench_cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}

bench_serve() {
  local tree=$1 size=$2
  shift 2
  truncate -s "$size" "$work/cache.img"
  node "$tree/dist/src/cli/main.js" create --cache "$work/cache.img" --origin "$work/origin.img" --mode "${bench_mode:-writeback}" >/dev/null
  control="$work/c.sock"
  node "$tree/dist/src/cli/main.js" serve --cache "$work/cache.img" --socket "$work/s.sock" --control "$control" "$@" \
    > "$work/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q '^ready ' "$work/serve.log" && break; sleep 0.1; done
  grep -q '^ready ' "$work/serve.log" || { echo "$bench_name: the server did not start:" >&2; cat "$work/serve.log" >&2; exit 1; }
  uri="nbd+unix:///?socket=$work/s.sock"
}

server_ticks() { awk '{print $14 + $15}' "/proc/${1:-$pid}/stat"; }
