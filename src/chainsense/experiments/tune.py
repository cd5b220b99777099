"""Hyperparameter search for one algorithm on one scenario with Ray Tune and ASHA.

Each trial trains with a sampled config, and after every ``1 / rungs`` of its step budget
evaluates the current fleet on a few held-out episodes (seeds 20000..: neither training's nor
``reproduce``'s), reporting the mean energy efficiency (the paper's headline metric). ASHA stops
the trials that trail at each rung, so most of the budget goes to the promising ones. The best
config is written as a complete ``[train]`` TOML that ``chainsense train --config`` reads back;
every trial's config and score go to ``tune_trials.csv``.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
from ray import tune as ray_tune
from ray.tune.schedulers import ASHAScheduler

from chainsense.errors import ChainsenseError, ConfigError
from chainsense.experiments.sweep_engine import ray_address, ray_session, worker_env
from chainsense.files import atomic_write
from chainsense.marl import algos, registry
from chainsense.marl.config import TrainConfig
from chainsense.marl.learned import LearnedPolicy
from chainsense.sim.params import WorldParams

METRIC = "energy_efficiency"
TUNE_EVAL_SEED = 20_000
MAX_TRIALS = 200
MAX_RUNGS = 20
BEST_FILE = "best_train.toml"
TRIALS_FILE = "tune_trials.csv"

#: the search spaces: what most changes these learners' results, in plausible ranges
SPACES: dict[str, dict[str, Any]] = {
    "maddpg": {
        "actor_lr": ray_tune.loguniform(1e-5, 1e-3),
        "critic_lr": ray_tune.loguniform(1e-4, 1e-2),
        "noise_start": ray_tune.uniform(0.2, 0.8),
        "batch_size": ray_tune.choice([128, 256, 512]),
        "gamma": ray_tune.choice([0.99, 0.995]),
    },
    "mappo": {
        "ppo_lr": ray_tune.loguniform(1e-4, 1e-3),
        "ent_coef": ray_tune.loguniform(1e-4, 1e-2),
        "clip_eps": ray_tune.choice([0.1, 0.2, 0.3]),
        "ppo_epochs": ray_tune.choice([2, 4]),
        "gae_lambda": ray_tune.choice([0.9, 0.95]),
    },
}
SPACES["iddpg"] = SPACES["maddpg"]


@dataclass(frozen=True)
class TuneJob:
    """What to search: algorithm, world, base config, budget per trial, trials, rungs."""

    algo: str
    world: WorldParams
    base: dict[str, Any]
    steps: int
    trials: int
    rungs: int
    episodes: int
    seed: int = 0

    def __post_init__(self) -> None:
        if self.algo not in registry.LEARNED:
            raise ConfigError("algo", f"must be one of {', '.join(registry.LEARNED)}")
        for name, value, high in (
            ("trials", self.trials, MAX_TRIALS),
            ("rungs", self.rungs, MAX_RUNGS),
            ("episodes", self.episodes, 1000),
            ("steps", self.steps, 10**10),
        ):
            if not 1 <= value <= high:
                raise ConfigError(name, f"must be in [1, {high}], got {value}")
        TrainConfig.from_dict({**self.base, "algo": self.algo})  # the base must be valid


def _trial(sampled: dict[str, Any], job: TuneJob) -> None:
    """One trial: train in ``rungs`` equal parts, evaluating and reporting after each."""
    try:
        cfg = TrainConfig.from_dict({**job.base, **sampled, "algo": job.algo})
    except ConfigError:  # a sampled combination the config refuses scores as the worst
        ray_tune.report({METRIC: -math.inf, "env_steps": 0})
        return
    carry = algos.init_carry(jax.random.PRNGKey(job.seed), cfg, job.world)
    chunk = algos.make_chunk(cfg, job.world)
    per_chunk = algos.steps_per_chunk(cfg)
    seeds = range(TUNE_EVAL_SEED, TUNE_EVAL_SEED + job.episodes)
    done = 0
    for rung in range(1, job.rungs + 1):
        while done < job.steps * rung / job.rungs:
            carry, _ = chunk(carry)
            done += per_chunk
        fleet = LearnedPolicy(carry.learner.actor, cfg)
        (table,) = registry.compare([(job.algo, fleet)], job.world, seeds)
        score = float(np.mean(table.per_episode[METRIC]))
        ray_tune.report({METRIC: score if math.isfinite(score) else -math.inf, "env_steps": done})


def toml_text(cfg: TrainConfig) -> str:
    """A complete ``[train]`` table of ``cfg`` (every field, so nothing depends on defaults)."""
    lines = ["[train]"]
    for key, value in cfg.to_dict().items():
        lines.append(f"{key} = {json.dumps(value)}")  # JSON literals of these types are TOML
    return "\n".join(lines) + "\n"


def run_tune(job: TuneJob, out: str | Path, address: str | None = None, cpus: int = 1) -> Path:
    """Search, write ``best_train.toml`` and ``tune_trials.csv`` in ``out``; the TOML's path."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    address = ray_address(address)
    cache = out / "xla_cache" if address is None else None  # local workers share the disk
    with ray_session(address, worker_env(cpus, cache)):
        tuner = ray_tune.Tuner(
            ray_tune.with_resources(ray_tune.with_parameters(_trial, job=job), {"cpu": cpus}),
            param_space=SPACES[job.algo],
            tune_config=ray_tune.TuneConfig(
                metric=METRIC,
                mode="max",
                num_samples=job.trials,
                scheduler=ASHAScheduler(max_t=job.rungs, grace_period=1, reduction_factor=2),
            ),
            run_config=ray_tune.RunConfig(name="tune", storage_path=str(out / "ray"), verbose=0),
        )
        results = tuner.fit()
    rows = []
    for res in results:
        if res.error is None and res.metrics and METRIC in res.metrics:
            rows.append((float(res.metrics[METRIC]), int(res.metrics["env_steps"]), res.config))
    if not rows or not math.isfinite(max(r[0] for r in rows)):
        raise ChainsenseError(
            "tune: no trial finished with a score; see the Ray logs in " + str(out)
        )
    rows.sort(key=lambda r: -r[0])
    with (out / TRIALS_FILE).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        keys = sorted(SPACES[job.algo])
        w.writerow([METRIC, "env_steps", *keys])
        for score, steps, config in rows:
            w.writerow([f"{score:.6g}", steps, *(config.get(k) for k in keys)])
    best = TrainConfig.from_dict({**job.base, **rows[0][2], "algo": job.algo})
    return atomic_write(out / BEST_FILE, toml_text(best))
