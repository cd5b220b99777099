"""Saving and loading trained fleets (msgpack via ``flax.serialization``).

A checkpoint is one file holding the training config, the world parameters it was trained on,
the full learner (online + target networks and optimiser states, so training can resume) and
progress counters. Writes go to a temporary file that is renamed into place, so an interrupted
save never leaves a truncated checkpoint behind.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

from chainsense.config import from_mapping
from chainsense.errors import ChainsenseError
from chainsense.files import atomic_write
from chainsense.marl import algos
from chainsense.marl.config import TrainConfig
from chainsense.sim.params import WorldParams

FORMAT = "chainsense-fleet/1"
#: what a checkpoint written before these keys existed was trained with
_BEFORE_MEMORY = {"memory": False, "shared": False}


@dataclass
class Checkpoint:
    """What a checkpoint file holds."""

    cfg: TrainConfig
    params: WorldParams
    learner: Any  # maddpg.Learner or mappo_update.Learner, by cfg.algo
    progress: dict[str, float]  # env_steps, updates, episodes, seconds, seed


def _world_dict(params: WorldParams) -> dict[str, Any]:
    return dataclasses.asdict(params)


def save(path: str | Path, ckpt: Checkpoint) -> Path:
    """Write ``ckpt`` to ``path`` atomically; returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "train": json.dumps(ckpt.cfg.to_dict()),
        "world": json.dumps(_world_dict(ckpt.params)),
        "progress": json.dumps(ckpt.progress),
        "learner": serialization.to_state_dict(jax.device_get(ckpt.learner)),
    }
    atomic_write(p, serialization.msgpack_serialize(payload))
    return p


def load(path: str | Path) -> Checkpoint:
    """Read a checkpoint; ChainsenseError naming the file when it is missing or not a fleet."""
    p = Path(path)
    if not p.is_file():
        raise ChainsenseError(f"checkpoint: file not found: {p}")
    try:
        payload = serialization.msgpack_restore(p.read_bytes())
    except Exception as exc:  # msgpack raises several unrelated types on garbage input
        raise ChainsenseError(
            f"checkpoint: {p.name} is not a chainsense checkpoint ({exc})"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ChainsenseError(f"checkpoint: {p.name} is not a {FORMAT} checkpoint")
    try:
        cfg = TrainConfig.from_dict({**_BEFORE_MEMORY, **json.loads(payload["train"])})
        params = from_mapping(WorldParams, json.loads(payload["world"]), "world")
        progress = json.loads(payload["progress"])
        template = algos.init_learner(jax.random.PRNGKey(0), cfg, params)
        learner = serialization.from_state_dict(template, payload["learner"])
    except (KeyError, ValueError, TypeError) as exc:
        raise ChainsenseError(f"checkpoint: {p.name} is damaged or incompatible ({exc})") from exc
    shapes_ok = jax.tree_util.tree_all(
        jax.tree_util.tree_map(lambda a, b: np.shape(a) == np.shape(b), template, learner)
    )
    if not shapes_ok:
        raise ChainsenseError(f"checkpoint: {p.name} does not match its own config")
    learner = jax.tree_util.tree_map(lambda x: jax.numpy.asarray(x), learner)
    return Checkpoint(cfg=cfg, params=params, learner=learner, progress=progress)
