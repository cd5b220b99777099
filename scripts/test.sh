#!/usr/bin/env bash
# The whole test suite: lint, the import layers, then the fast tests and the slow tests that start
# real services (anvil, a geth private network, MariaDB, Chromium) in one pytest run. Pass pytest
# options through, e.g. -k ledger.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
# the layer contract and the no-circle contract in pyproject.toml ([tool.importlinter])
.venv/bin/lint-imports --no-cache
# Two pytest-xdist workers (TEST_WORKERS=N for another count, 0 for one process): much of a
# test's time is compiling or waiting on a service, so two workers on two cores take the slow
# tests from 19 to 11 minutes. A file's tests stay in one worker (its module fixtures are
# built once); every service a test starts takes free ports and its own folder.
# One run for the fast and the slow tests (pyproject's addopts leaves the slow ones out): a
# file with both kinds then builds its module fixtures (the Ray smoke sweep) and compiles its
# JAX functions once, not once per suite, and neither suite waits for the other's last file.
# Pass -m "not slow" for the fast tests alone.
workers=(-n "${TEST_WORKERS:-2}" --dist loadfile)
.venv/bin/python -m pytest -m "not slow or slow" "${workers[@]}" --durations=20 "$@"
