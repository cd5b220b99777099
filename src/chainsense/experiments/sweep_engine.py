"""Running a sweep's missing runs on Ray (or one after another in this process).

Every run is a Ray task that asks for its CPUs as a Ray resource, so the scheduler runs as many
side by side as the machine (or the cluster) holds. JAX inside a task is held to those CPUs
through XLA's flags: two one-CPU tasks on two cores would otherwise each start a thread per core
and fight over both. Results are stored by the driver as they come back (``sweep_run.store``), a
failed run is tried once more and then reported, and ``address=None`` starts a local Ray in this
process and shuts it down at the end (an already initialised Ray is used as it is).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from chainsense.errors import ConfigError
from chainsense.experiments import sweep_run
from chainsense.experiments.sweep_spec import RunSpec, SweepSpec
from chainsense.files import atomic_write

ATTEMPTS = 2
SPEC_FILE = "sweep.json"
FAILURES_FILE = "failures.json"
CACHE_DIR = "xla_cache"
MAX_CPUS_PER_RUN = 256


@dataclass
class Progress:
    """What a progress bar shows: finished runs (done or failed) and the slowest running ones."""

    total: int
    finished: int = 0
    failed: int = 0
    skipped: int = 0
    running: list[tuple[str, float]] = field(
        default_factory=list
    )  # (run id, seconds), slowest first


@dataclass
class Outcome:
    """The end of a sweep: how many ran, were already there, failed (with their errors)."""

    total: int
    ran: int
    skipped: int
    failures: dict[str, str]
    seconds: float


OnProgress = Callable[[Progress], None]


def worker_env(cpus: int, cache: Path | None) -> dict[str, str]:
    """Environment of a worker: the driver's own XLA flags, XLA (and BLAS) held to ``cpus``
    threads, and with ``cache`` a shared compilation cache, so that the second worker to need a
    program loads it instead of compiling it again (compilation is most of a short run). The
    driver's flags come first so the thread limits win; a worker compiled with other flags than
    the driver could round differently from a sequential run of the same spec."""
    inherited = os.environ.get("XLA_FLAGS", "").strip()
    flags = f"{inherited} " if inherited else ""
    flags += f"--xla_cpu_multi_thread_eigen={'true' if cpus > 1 else 'false'}"
    flags += f" intra_op_parallelism_threads={cpus}"
    env = {"XLA_FLAGS": flags, "OMP_NUM_THREADS": str(cpus), "OPENBLAS_NUM_THREADS": str(cpus)}
    if "PYTHONPATH" in os.environ:  # a local Ray's workers import the same code as the driver
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    if cache is not None:
        env["JAX_COMPILATION_CACHE_DIR"] = str(cache.resolve())
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.2"
    return env


@ray.remote
class _Tracker:
    """Start times of running tasks, so the progress bar can name the slowest."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}

    def start(self, run_id: str) -> None:
        self.started[run_id] = time.time()

    def stop(self, run_id: str) -> None:
        self.started.pop(run_id, None)

    def running(self) -> dict[str, float]:
        return dict(self.started)


class RunFailedError(Exception):
    """A run's error as one line of text: the project's own errors take several constructor
    arguments, which Ray cannot rebuild on the driver."""


def _task(run: RunSpec, tracker: Any) -> tuple[dict[str, Any], bytes | None]:
    tracker.start.remote(run.run_id)
    try:
        return sweep_run.execute(run)
    except Exception as exc:
        raise RunFailedError(f"{type(exc).__name__}: {exc}") from None
    finally:
        tracker.stop.remote(run.run_id)


_remote_task = ray.remote(max_retries=0)(_task)


def _check_out(spec: SweepSpec, out: Path) -> None:
    """Record the spec in ``out``; refuse a directory that holds another sweep's results."""
    fields = dataclasses.asdict(spec)
    fields["maps"] = [[name, hashlib.sha256(data).hexdigest()] for name, data in spec.maps]
    described = json.dumps(fields, sort_keys=True, default=str)
    path = out / SPEC_FILE
    if path.is_file() and path.read_text(encoding="utf-8") != described:
        raise ConfigError("out", f"{out} holds the results of another sweep spec; use a new --out")
    atomic_write(path, described)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = exc.cause if exc.cause is not None else exc
        text = (
            str(cause) if isinstance(cause, RunFailedError) else f"{type(cause).__name__}: {cause}"
        )
        return text.splitlines()[0][:500]
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:500]


def run_sweep(
    spec: SweepSpec,
    out: str | Path,
    *,
    address: str | None = None,
    cpus_per_run: int = 1,
    sequential: bool = False,
    on_progress: OnProgress | None = None,
) -> Outcome:
    """Run every run of ``spec`` that has no result in ``out`` yet."""
    if not 1 <= cpus_per_run <= MAX_CPUS_PER_RUN:
        raise ConfigError("cpus", f"must be in [1, {MAX_CPUS_PER_RUN}], got {cpus_per_run}")
    out = Path(out)
    runs = spec.runs()
    out.mkdir(parents=True, exist_ok=True)
    _check_out(spec, out)
    todo = [r for r in runs if not sweep_run.is_done(out, r)]
    prog = Progress(total=len(runs), skipped=len(runs) - len(todo))
    prog.finished = prog.skipped
    t0 = time.perf_counter()
    if sequential:
        failures = _run_here(todo, out, prog, on_progress)
    else:
        failures = _run_on_ray(todo, out, prog, on_progress, address, cpus_per_run)
    atomic_write(out / FAILURES_FILE, json.dumps(failures, indent=1))
    ran = len(todo) - len(failures)
    return Outcome(len(runs), ran, prog.skipped, failures, time.perf_counter() - t0)


def _run_here(
    todo: list[RunSpec], out: Path, prog: Progress, on_progress: OnProgress | None
) -> dict[str, str]:
    failures: dict[str, str] = {}
    for run in todo:
        prog.running = [(run.run_id, 0.0)]
        if on_progress:
            on_progress(prog)
        for attempt in range(ATTEMPTS):
            try:
                sweep_run.store(out, *sweep_run.execute(run))
                break
            except Exception as exc:  # one run's failure is reported, not fatal
                if attempt == ATTEMPTS - 1:
                    failures[run.run_id] = _error_text(exc)
                    traceback.print_exc()
        prog.finished += 1
        prog.failed = len(failures)
    prog.running = []
    if on_progress:
        on_progress(prog)
    return failures


def ray_address(address: str | None) -> str | None:
    """The cluster to join: ``address``, else ``RAY_ADDRESS``; None starts a local Ray."""
    return address or os.environ.get("RAY_ADDRESS") or None


@contextmanager
def ray_session(address: str | None, env: dict[str, str] | None = None) -> Iterator[None]:
    """Join the Ray at ``address`` or start a local one (with ``env`` for its workers); a Ray
    started here is shut down on leaving, one already running is left as it was."""
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
            configure_logging=False,
            runtime_env={"env_vars": env} if env else None,
        )
    try:
        yield
    finally:
        if started_here:
            ray.shutdown()


def _run_on_ray(
    todo: list[RunSpec],
    out: Path,
    prog: Progress,
    on_progress: OnProgress | None,
    address: str | None,
    cpus: int,
) -> dict[str, str]:
    address = ray_address(address)
    # a cluster's workers do not see this machine's disk: the cache is for a local Ray only
    cache = out / CACHE_DIR if address is None else None
    with ray_session(address):
        return _drive(todo, out, prog, on_progress, worker_env(cpus, cache), cpus)


def _drive(
    todo: list[RunSpec],
    out: Path,
    prog: Progress,
    on_progress: OnProgress | None,
    env: dict[str, str],
    cpus: int,
) -> dict[str, str]:
    tracker = _Tracker.options(num_cpus=0).remote()  # type: ignore[attr-defined]
    task = _remote_task.options(num_cpus=cpus, runtime_env={"env_vars": env})
    pending: dict[Any, tuple[RunSpec, int]] = {task.remote(run, tracker): (run, 1) for run in todo}
    failures: dict[str, str] = {}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
        for ref in ready:
            run, attempt = pending.pop(ref)
            try:
                sweep_run.store(out, *ray.get(ref))
            except Exception as exc:  # a failed run is retried once, then reported
                if attempt < ATTEMPTS:
                    pending[task.remote(run, tracker)] = (run, attempt + 1)
                    continue
                failures[run.run_id] = _error_text(exc)
            prog.finished += 1
            prog.failed = len(failures)
        now = time.time()
        started = ray.get(tracker.running.remote())
        prog.running = sorted(((k, now - t) for k, t in started.items()), key=lambda x: -x[1])
        if on_progress:
            on_progress(prog)
    ray.kill(tracker)
    return failures
