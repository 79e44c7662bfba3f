#!/usr/bin/env bash
# Installs what blockcache needs on a fresh Debian machine with Node >= 20, then builds.
#   setup.sh runtime   npm packages + build (enough for `npm start`)
#   setup.sh test      the above + the Debian tools the tests drive (nbdkit, qemu, fio, ...)
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-runtime}"

need_debs() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

need_debs util-linux
if [ "$mode" = test ]; then
  need_debs nbdkit nbdkit-plugin-python libnbd-bin python3-libnbd qemu-utils fio nbd-server \
    fuse3 jq e2fsprogs prometheus strace
fi

if [ ! -d node_modules ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages" >&2
  npm install --no-audit --no-fund --loglevel=error >&2
fi
npx --no-install tsc -p tsconfig.json >&2
