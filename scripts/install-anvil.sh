#!/usr/bin/env bash
# Install anvil (Foundry's local Ethereum node) from the npm registry, pinned by package-lock.json,
# into node_modules/.bin.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x node_modules/.bin/anvil ] && node_modules/.bin/anvil --version >/dev/null 2>&1; then
  exit 0
fi
command -v npm >/dev/null || { echo "install-anvil.sh: npm is required" >&2; exit 1; }
npm ci --no-audit --no-fund --loglevel=error
node_modules/.bin/anvil --version | sed -n 1p  # not head: SIGPIPE under pipefail
