#!/usr/bin/env bash
# The whole test suite: lint, the import layers, the fast tests, then the slow tests that start real services
# (anvil, a geth private network, MariaDB, Chromium). Pass pytest options through, e.g. -k ledger.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
# the layer contract and the no-circle contract in pyproject.toml ([tool.importlinter])
.venv/bin/lint-imports --no-cache
.venv/bin/python -m pytest -m "not slow" --durations=15 "$@"
# pytest exits 5 when a selection holds no test; an empty slow selection is not a failure.
.venv/bin/python -m pytest -m slow --durations=15 "$@" || { rc=$?; [ "$rc" = 5 ] || exit "$rc"; }
