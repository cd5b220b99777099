#!/usr/bin/env bash
# The whole test suite: lint, the import layers, the fast tests, then the slow tests that start
# real services (anvil, a geth private network, MariaDB, Chromium). Pass pytest options through,
# e.g. -k ledger.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
# the layer contract and the no-circle contract in pyproject.toml ([tool.importlinter])
.venv/bin/lint-imports --no-cache
# One JAX compilation cache for the run, fresh each time and removed at the end: a program
# that several tests (or their CLI subprocesses, or Ray workers) compile is compiled once.
cache=$(mktemp -d "${TMPDIR:-/tmp}/chainsense-test-jax.XXXXXX")
trap 'rm -rf "$cache"' EXIT
export JAX_COMPILATION_CACHE_DIR="$cache" JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
# XLA's CPU backend at optimisation level 0 (TEST_XLA_OPT=N for another): most of a test's time
# is compiling programs it runs a few times, which level 0 does much faster (the selection and
# shaping tests: 266 s -> 187 s in one process). The programs compute the same thing; users'
# runs and the benchmarks keep XLA's default level.
export XLA_FLAGS="--xla_backend_optimization_level=${TEST_XLA_OPT:-0}${XLA_FLAGS:+ $XLA_FLAGS}"
# Two pytest-xdist workers (TEST_WORKERS=N for another count, 0 for one process): much of a
# test's time is compiling or waiting on a service, so two workers on two cores take the slow
# suite from 19 to 11 minutes. A file's tests stay in one worker (its module fixtures are
# built once); every service a test starts takes free ports and its own folder.
workers=(-n "${TEST_WORKERS:-2}" --dist loadfile)
.venv/bin/python -m pytest -m "not slow" "${workers[@]}" --durations=15 "$@"
# pytest exits 5 when a selection holds no test; an empty slow selection is not a failure.
.venv/bin/python -m pytest -m slow "${workers[@]}" --durations=15 "$@" || {
  rc=$?
  [ "$rc" = 5 ] || exit "$rc"
}
