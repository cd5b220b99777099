"""``chainsense tune`` on a real local Ray: a tiny search whose best config train accepts."""

import csv
import math
from pathlib import Path

import pytest

from chainsense.errors import ConfigError
from chainsense.experiments import tune
from chainsense.marl.config import load_train_config
from chainsense.sim.params import preset

BASE = {"num_envs": 16, "warmup_steps": 100, "chunk_iters": 10, "buffer_size": 4_000}


@pytest.mark.slow  # a local Ray and four short trainings: ~50 s
def test_tiny_search_writes_a_train_config_that_train_reads(tmp_path: Path) -> None:
    job = tune.TuneJob(
        algo="maddpg",
        world=preset("small"),
        base=BASE,
        steps=640,
        trials=2,
        rungs=2,
        episodes=2,
    )
    best = tune.run_tune(job, tmp_path)
    cfg = load_train_config(best)  # the loader of `chainsense train --config`
    assert cfg.algo == "maddpg" and cfg.num_envs == 16 and cfg.chunk_iters == 10
    with (tmp_path / tune.TRIALS_FILE).open(newline="") as fh:
        trials = list(csv.DictReader(fh))
    assert len(trials) == 2
    top = trials[0]  # sorted best first; the written config is the top trial's
    assert math.isclose(cfg.actor_lr, float(top["actor_lr"]))
    assert cfg.batch_size == int(top["batch_size"])
    assert 1e-5 <= cfg.actor_lr <= 1e-3 and cfg.batch_size in (128, 256, 512)
    assert float(top["energy_efficiency"]) >= float(trials[1]["energy_efficiency"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"algo": "alphago"}, "algo"),
        ({"trials": 0}, "trials"),
        ({"trials": 10_000}, "trials"),
        ({"rungs": 0}, "rungs"),
        ({"steps": 0}, "steps"),
        ({"base": {"gamma": 2.0}}, "train.gamma"),
        ({"base": {"colour": 1}}, "train.colour"),
    ],
)
def test_bad_jobs_are_refused_before_ray_starts(change: dict, field: str) -> None:
    args = dict(algo="mappo", world=preset("small"), base={}, steps=10, trials=2, rungs=2)
    with pytest.raises(ConfigError) as err:
        tune.TuneJob(**{**args, "episodes": 2, **change})
    assert err.value.field == field
