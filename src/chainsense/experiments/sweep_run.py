"""One run of a sweep, the body of a Ray task (or of the in-process sequential loop).

Trains exactly as ``reproduce``'s sequential path does (``session.run`` with the run's seed and
budget) and evaluates with ``registry.compare`` on the same held-out seeds, so the same run gives
the same numbers either way. The result JSON (and the fleet checkpoint) are written atomically
under ``runs/<run id>/`` in the output directory: a sweep killed at any point leaves only whole
results, and a resumed sweep skips exactly the runs whose ``result.json`` exists.
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from chainsense.experiments.sweep_spec import RunSpec
from chainsense.files import atomic_write
from chainsense.marl import checkpoint, registry, session
from chainsense.marl.learned import LearnedPolicy
from chainsense.sim.maps import WorldMap
from chainsense.sim.metrics import ALL_METRICS
from chainsense.sim.params import WorldParams
from chainsense.sim.sites import load_site

RESULT = "result.json"
FLEET = "fleet.msgpack"
FORMAT = "chainsense-sweep-run-1"


def run_dir(out: str | Path, run_id: str) -> Path:
    """Where a run's files go (its id is already a safe relative path: ``sweep_spec``)."""
    return Path(out) / "runs" / run_id


def is_done(out: str | Path, run: RunSpec) -> bool:
    """Whether a whole result for this run exists (written last, atomically)."""
    return (run_dir(out, run.run_id) / RESULT).is_file()


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _world(run: RunSpec) -> tuple[WorldParams, WorldMap | None]:
    """The run's world; on a site map, the site's (fleets train on drawn maps of its size, as
    ``chainsense run --map`` does, and are evaluated on the site itself)."""
    if run.site is None:
        return run.world, None
    name, contents = run.site
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(contents)
        site = load_site(path, run.world)
    return site.params, site.map


def execute(run: RunSpec) -> tuple[dict[str, Any], bytes | None]:
    """Train (learned policies) and evaluate one run: its result and fleet checkpoint bytes.

    Nothing is written here: on a cluster the worker's disk is not the user's, so the driver
    stores what comes back (:func:`store`)."""
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    training: dict[str, Any] = {}
    fleet: bytes | None = None
    world, world_map = _world(run)
    if run.train is not None:
        res = session.run(run.train, world, seed=run.seed, steps=run.steps, minutes=run.minutes)
        if res.interrupted:  # a half-trained fleet is no result: the resumed sweep redoes it
            raise KeyboardInterrupt
        policy: Any = LearnedPolicy(res.learner.actor, run.train)
        progress = {
            "env_steps": res.env_steps,
            "updates": res.updates,
            "episodes": res.episodes,
            "seconds": res.seconds,
            "seed": run.seed,
        }
        with tempfile.TemporaryDirectory() as tmp:
            ck = checkpoint.Checkpoint(run.train, world, res.learner, progress)
            fleet = checkpoint.save(Path(tmp) / FLEET, ck).read_bytes()
        training = {**progress, "steps_per_second": res.steps_per_second}
    else:
        policy = registry.baseline(run.policy)
    t_eval = time.perf_counter()
    (table,) = registry.compare([(run.policy, policy)], world, run.eval_seeds, world_map=world_map)
    result = {
        "format": FORMAT,
        "run_id": run.run_id,
        "scenario": run.scenario,
        "axis": run.axis,
        "value": run.value,
        "policy": run.policy,
        "seed": run.seed,
        "budget": {"steps": run.steps, "minutes": run.minutes},
        "training": training,
        "eval_seeds": list(run.eval_seeds),
        "per_episode": {
            k: [float(x) for x in v] for k, v in table.per_episode.items() if k in ALL_METRICS
        },
        "eval_seconds": time.perf_counter() - t_eval,
        "wall_seconds": time.perf_counter() - t0,
        "cpu_seconds": _cpu_seconds() - cpu0,
        "pid": os.getpid(),
    }
    return result, fleet


def store(out: str | Path, result: dict[str, Any], fleet: bytes | None) -> Path:
    """Write a run's checkpoint, then its result (last: its presence means the run is done)."""
    where = run_dir(out, str(result["run_id"]))
    if fleet is not None:
        atomic_write(where / FLEET, fleet)
    return atomic_write(where / RESULT, json.dumps(result, indent=1))
