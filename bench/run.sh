#!/usr/bin/env bash
# npm run bench [-- --only hot,ram,cold,slow,open] [--runtime SECONDS] [--no-record]
#
# Builds blockcache if any TypeScript source is newer than the compiled bench,
# checks for fio and nbdkit, and runs every scenario against blockcache and its
# peer in one run (see bench/bench-main.ts). Writes bench/RESULTS.md unless
# --no-record is given.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's tools first (a pyenv or other prefix earlier in PATH may shadow them).
export PATH="/usr/bin:/usr/sbin:/bin:/sbin:$PATH"

for tool in fio nbdkit node; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "bench: '$tool' is missing; run 'bash scripts/setup.sh test' first" >&2
    exit 1
  fi
done
if ! fio --enghelp=nbd >/dev/null 2>&1; then
  echo "bench: this fio has no nbd ioengine (needs fio >= 3.19 built with libnbd)" >&2
  exit 1
fi

entry=dist/bench/bench-main.js
if [ ! -f "$entry" ] || [ -n "$(find src bench -name '*.ts' -newer "$entry" -print -quit)" ]; then
  echo "bench: building" >&2
  npx tsc -p tsconfig.json
fi
exec node "$entry" "$@"
