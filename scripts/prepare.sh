#!/bin/sh
# Brings a fresh clone to a runnable state for `npm start`, `npm test` or `npm run bench`:
# the npm dependencies (from the lock file), the build, and for tests the Debian packages when root.
set -eu
cd "$(dirname "$0")/.."
purpose=${1:-start}

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
if [ "$purpose" = test ] || [ "$purpose" = bench ]; then
  if [ "$(id -u)" = 0 ]; then
    sh scripts/install-debian.sh
  else
    echo "prepare: not root, Debian packages are not installed; tests that need them will fail" >&2
  fi
fi
npx tsc -p tsconfig.json
