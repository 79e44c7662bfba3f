#!/usr/bin/env bash
# Runs every test (unit tests next to the code, integration tests under test/)
# with node's built-in runner, which prints the pass/fail summary.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/bin:$PATH"   # nbdsh needs Debian's python3, not a pyenv one
mapfile -t files < <(find dist/src dist/test -name '*.test.js' | sort)
if [ ${#files[@]} -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
exec node --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-reporter=spec "${files[@]}"
