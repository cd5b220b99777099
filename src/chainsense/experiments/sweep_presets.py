"""``reproduce``'s named sweeps: the paper's grid (metrics vs number of MTs and vs sensing
range) at three sizes, written as the same specs a user would give ``chainsense sweep``.

``paper``'s budget is in environment steps, not minutes, so its results do not depend on how
loaded the machine is while it runs. 3 M steps per fleet was calibrated from CPU-seconds of
one-thread training on the paper world (MADDPG 62k env steps per CPU-second with 2 MTs, 18k
with 5; MAPPO 41k and 19k; about 25 CPU-s of compilation per run): 60 trainings, 40 baseline
evaluations and their compilations come to about 90 minutes on two quiet cores.
"""

from __future__ import annotations

from typing import Any

from chainsense.errors import ConfigError
from chainsense.experiments import sweep_spec
from chainsense.experiments.sweep_spec import SweepSpec

_PAPER_GRID = {"num_mts": [1, 2, 3, 4, 5], "sensing_range": [0.6, 0.8, 1.0, 1.2, 1.4]}
_ALL = ["maddpg", "iddpg", "mappo", "random", "greedy", "greedy-local", "planner"]

PRESETS: dict[str, dict[str, Any]] = {
    # two configurations x two seeds of seconds each: the fast suite's sweep
    "smoke": {
        "sweep": {
            "name": "smoke",
            "scenarios": ["small"],
            "grid": {"num_mts": [1, 2]},
            "policies": ["maddpg", "greedy"],
            "seeds": 2,
            "episodes": 4,
            "budget": {"steps": 2_000},
        },
        "train": {"num_envs": 16, "warmup_steps": 200, "chunk_iters": 10, "buffer_size": 5_000},
    },
    # the sequential reproduce's former quick preset: small world, minutes
    "quick": {
        "sweep": {
            "name": "quick",
            "scenarios": ["small"],
            "grid": {"num_mts": [1, 2, 3, 4, 5], "sensing_range": [0.7, 1.1, 1.5]},
            "policies": ["maddpg", "iddpg", "greedy", "random"],
            "seeds": 1,
            "episodes": 10,
            "budget": {"steps": 100_000},
        },
        "train": {
            "num_envs": 64,
            "buffer_size": 50_000,
            "warmup_steps": 2_000,
            "noise_decay_steps": 80_000,
            "chunk_iters": 50,
            "gamma": 0.99,
            "move_penalty": 0.25,
        },
    },
    "paper": {
        "sweep": {
            "name": "paper",
            "scenarios": ["paper"],
            "grid": _PAPER_GRID,
            "policies": _ALL,
            "seeds": 2,
            "episodes": 10,
            "budget": {"steps": 3_000_000},
        },
    },
    # what the paper's training budget calls for: 6 M steps, 3 seeds, 20 episodes
    "full": {
        "sweep": {
            "name": "full",
            "scenarios": ["paper"],
            "grid": _PAPER_GRID,
            "policies": _ALL,
            "seeds": 3,
            "episodes": 20,
            "budget": {"steps": 6_000_000},
        },
    },
}


def preset(name: str, seeds: int | None = None, episodes: int | None = None) -> SweepSpec:
    """A named reproduce sweep, with the number of training seeds and episodes overridable."""
    if name not in PRESETS:
        raise ConfigError(
            "preset", f"unknown reproduce preset {name!r} (known: {', '.join(PRESETS)})"
        )
    data = PRESETS[name]
    sweep = {**data["sweep"]}
    if seeds is not None:
        sweep["seeds"] = seeds
    if episodes is not None:
        sweep["episodes"] = episodes
    return sweep_spec.from_mapping({**data, "sweep": sweep})
