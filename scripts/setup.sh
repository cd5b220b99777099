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

# The services install while pip does (npm, the Go build of geth and apt barely compete with
# pip's downloads), each into its own log, shown when it is done or has failed.
logs=$(mktemp -d "${TMPDIR:-/tmp}/chainsense-setup.XXXXXX")
steps=()
pids=()
cleanup() {
  # a step still running means pip failed: stop it rather than leave it installing
  for pid in "${pids[@]}"; do
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
  done
  rm -rf "$logs"
}
trap cleanup EXIT
if [ "$services" = 1 ]; then
  for step in install-anvil install-geth install-system-packages; do
    bash "scripts/$step.sh" >"$logs/$step.log" 2>&1 &
    steps+=("$step")
    pids+=("$!")
  done
fi

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"

failed=0
for i in "${!pids[@]}"; do
  pid=${pids[$i]}
  pids[$i]=""  # waited for: nothing left to stop
  if wait "$pid"; then
    cat "$logs/${steps[$i]}.log"
  else
    echo "setup.sh: scripts/${steps[$i]}.sh failed:" >&2
    cat "$logs/${steps[$i]}.log" >&2
    failed=1
  fi
done
[ "$failed" = 0 ] || exit 1
echo "setup.sh: ready (.venv/bin/chainsense)"
