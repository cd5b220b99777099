#!/usr/bin/env bash
# Set up chainsense on a fresh machine: a Python 3.11 virtual environment with the package and its
# pinned dependencies. With --services it also installs the real components that the slow tests
# and the experiments start: anvil (npm), geth v1.13.15 (Go module proxy), MariaDB, HAProxy and
# Chromium (Debian packages). Safe to run again: every step skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

services=0
for arg in "$@"; do
  case "$arg" in
    --services) services=1 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

python=""
for candidate in python3.11 python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    python=$candidate; break
  fi
done
[ -n "$python" ] || { echo "setup.sh: Python 3.11 is required" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"

if [ "$services" = 1 ]; then
  bash scripts/install-anvil.sh
  bash scripts/install-geth.sh
  bash scripts/install-system-packages.sh
fi
echo "setup.sh: ready (.venv/bin/chainsense)"
