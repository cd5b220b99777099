"""The one place that picks the training loop and learner of an algorithm.

MADDPG and IDDPG share the replay loop of ``marl.train`` and the learner of ``marl.maddpg``;
MAPPO has its own on-policy loop (``marl.mappo_train``) and learner (``marl.mappo_update``).
The session, checkpoints and learned policies call these functions instead of asking which.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from chainsense.errors import ConfigError
from chainsense.marl import (
    features,
    maddpg,
    maddpg_sharding,
    mappo_networks,
    mappo_train,
    mappo_update,
    sharding,
    train,
)
from chainsense.marl.config import TrainConfig
from chainsense.sim.maps import MapArrays
from chainsense.sim.params import WorldParams, state_dim


def init_carry(
    key: jax.Array,
    cfg: TrainConfig,
    params: WorldParams,
    site: MapArrays | None = None,
    learner: Any = None,
) -> Any:
    """Fresh learner (MAPPO: or ``learner``, to fine-tune) and worlds for the algorithm's
    training loop (on ``site`` when given)."""
    if learner is not None and cfg.algo != "mappo":
        raise ConfigError("learner", f"starting from a given learner needs mappo, not {cfg.algo}")
    if cfg.devices > 1 and cfg.algo == "mappo":
        return sharding.init_carry(key, cfg, params, site, learner)
    if cfg.devices > 1:
        return maddpg_sharding.init_carry(key, cfg, params, site)
    if cfg.algo == "mappo":
        return mappo_train.init_carry(key, cfg, params, site, learner)
    return train.init_carry(key, cfg, params, site)


def make_chunk(
    cfg: TrainConfig, params: WorldParams, site: MapArrays | None = None
) -> Callable[[Any], tuple[Any, dict]]:
    """The algorithm's jitted chunk of ``chunk_iters`` iterations (on ``site`` when given)."""
    if cfg.devices > 1 and cfg.algo == "mappo":
        return sharding.make_chunk(cfg, params, site)
    if cfg.devices > 1:
        return maddpg_sharding.make_chunk(cfg, params, site)
    if cfg.algo == "mappo":
        return mappo_train.make_chunk(cfg, params, site)
    return train.make_chunk(cfg, params, site)


def steps_per_chunk(cfg: TrainConfig) -> int:
    """Env steps one chunk takes (all worlds)."""
    per_iter = mappo_train.steps_per_iteration(cfg) if cfg.algo == "mappo" else cfg.num_envs
    return per_iter * cfg.chunk_iters


def init_learner(key: jax.Array, cfg: TrainConfig, params: WorldParams) -> Any:
    """A fresh learner (also the template a checkpoint is read into)."""
    od = features.learner_obs_dim(cfg, params)
    if cfg.algo == "mappo":
        return mappo_update.init(key, cfg, params.num_mts, od)
    return maddpg.init(key, cfg, params.num_mts, od, state_dim(params))


def act(cfg: TrainConfig, actor: Any, obs: jax.Array) -> jax.Array:
    """Deterministic unit-disk actions [..., M, 2] of a trained actor from learner obs."""
    if cfg.algo == "mappo":
        return mappo_networks.act(cfg, actor, obs)
    return maddpg.act(cfg, actor, obs)
