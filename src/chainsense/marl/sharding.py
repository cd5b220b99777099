"""Data-parallel MAPPO: the worlds split over several JAX devices, one learner on all of them.

XLA:CPU runs a MAPPO chunk on one core (docs/learning.md, "Throughput: a profile"); the route to
more cores is more XLA host devices (``--xla_force_host_platform_device_count``, read once when
JAX starts: :func:`request_host_devices`). Each device steps ``num_envs / devices`` worlds with
its own key stream (the device index folded in), world pool and episode statistics; at every
PPO minibatch the devices normalise advantages with the whole minibatch's statistics and
average their gradients (``mappo_update``), so their replicated learners stay identical.
Statistics and env-step counts are summed over devices, so ``marl.session`` and its logs do not
know how many devices ran, and the learner is a plain pytree, so checkpoints do not either.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from chainsense.errors import ConfigError
from chainsense.marl import mappo_rollout as rollout
from chainsense.marl import mappo_train
from chainsense.marl.config import TrainConfig
from chainsense.sim.maps import MapArrays
from chainsense.sim.params import WorldParams

AXIS = "worlds"
HOST_DEVICE_FLAG = "--xla_force_host_platform_device_count"


def with_host_devices(flags: str, count: int) -> str:
    """``flags`` (an ``XLA_FLAGS`` value) asking XLA:CPU for ``count`` host devices: every
    other flag kept, an earlier count replaced."""
    kept = [f for f in flags.split() if not f.startswith(HOST_DEVICE_FLAG)]
    return " ".join([*kept, f"{HOST_DEVICE_FLAG}={count}"])


def request_host_devices(count: int) -> None:
    """Ask XLA:CPU for ``count`` host devices (in ``XLA_FLAGS``, replacing an earlier count).

    Only takes effect before JAX's first computation; :func:`mesh` says so if it came late."""
    if count <= 1:
        return
    os.environ["XLA_FLAGS"] = with_host_devices(os.environ.get("XLA_FLAGS", ""), count)


def mesh(cfg: TrainConfig) -> Mesh:
    """A one-axis mesh of the first ``cfg.devices`` devices, or a ConfigError naming the field."""
    available = jax.devices()
    if cfg.devices > len(available):
        raise ConfigError(
            "devices",
            f"asks for {cfg.devices} devices but JAX has {len(available)} "
            f"({available[0].platform}); on a CPU, XLA_FLAGS={HOST_DEVICE_FLAG}=N must be set "
            "before JAX starts (chainsense train --devices and bench_learning.py --devices do)",
        )
    return Mesh(np.array(available[: cfg.devices]), (AXIS,))


def local_config(cfg: TrainConfig) -> TrainConfig:
    """The config one device runs: its share of the worlds, no further split."""
    return dataclasses.replace(cfg, num_envs=cfg.num_envs // cfg.devices, devices=1)


def carry_specs() -> rollout.Carry:
    """How the carry is laid out: worlds split along their leading axis, the rest replicated."""
    split, same = P(AXIS), P()
    return rollout.Carry(
        env=split,
        obs=split,
        learner=same,
        key=same,
        env_steps=same,
        ep_return=split,
        memory=split,
        pool_used=same,
        hidden=split,
        start=split,
        price=same,
    )


def lay_out(m: Mesh, specs: Any, tree: Any) -> Any:
    """Shardings for ``tree`` from ``specs``, a prefix of it with a PartitionSpec per subtree."""
    return jax.tree_util.tree_map(
        lambda spec, sub: jax.tree_util.tree_map(lambda _: NamedSharding(m, spec), sub),
        specs,
        tree,
        is_leaf=lambda x: isinstance(x, P),
    )


def build_in_place(
    build: Callable[[jax.Array], Any], key: jax.Array, cfg: TrainConfig, specs: Any
) -> Any:
    """``build(key)`` laid out over the devices of ``cfg`` as ``specs`` says, compiled with that
    layout as its output, so each device creates only its share. Built whole and then split,
    MADDPG's replay buffer existed twice for a moment (2.43 GB on ``paper``, docs/learning.md)."""
    layout = lay_out(mesh(cfg), specs, jax.eval_shape(build, key))
    return jax.jit(build, out_shardings=layout)(key)


def init_carry(
    key: jax.Array,
    cfg: TrainConfig,
    params: WorldParams,
    site: MapArrays | None = None,
    learner: Any = None,
) -> rollout.Carry:
    """Fresh learner (or ``learner``, to fine-tune) and all ``num_envs`` worlds, split over the
    devices."""
    build = partial(mappo_train.init_carry, cfg=cfg, params=params, site=site, learner=learner)
    return build_in_place(build, key, cfg, carry_specs())


def _iteration(
    local: TrainConfig,
    params: WorldParams,
    site: MapArrays | None,
    carry: rollout.Carry,
    _: Any,
) -> tuple[rollout.Carry, tuple[dict, dict]]:
    key, k_device = jax.random.split(carry.key)
    mine = carry.replace(key=jax.random.fold_in(k_device, jax.lax.axis_index(AXIS)))
    mine, (stats, logs) = mappo_train.iteration(local, params, site, mine, None, axis_name=AXIS)
    taken = jax.lax.psum(mine.env_steps - carry.env_steps, AXIS)
    new = mine.replace(
        key=key,
        env_steps=carry.env_steps + taken,
        pool_used=jax.lax.psum(mine.pool_used, AXIS),
    )
    return new, (jax.lax.psum(stats, AXIS), logs)


def make_chunk(
    cfg: TrainConfig, params: WorldParams, site: MapArrays | None = None
) -> Callable[[rollout.Carry], tuple[rollout.Carry, dict]]:
    """``mappo_train.make_chunk`` over ``cfg.devices`` devices: the same statistics, summed
    (episodes, metric sums) or averaged (losses) over devices."""
    m = mesh(cfg)
    local = local_config(cfg)

    def body(carry: rollout.Carry) -> tuple[rollout.Carry, dict]:
        carry, (stats, logs) = jax.lax.scan(
            partial(_iteration, local, params, site), carry, None, length=cfg.chunk_iters
        )
        return carry, mappo_train.chunk_stats(cfg, stats, logs)

    specs = carry_specs()
    # check_vma off: the single-device world code mixes per-device values and constants in
    # lax.cond branches, which the checker refuses; the learner stays replicated because every
    # change to it is a pmean-ed gradient step (tests/test_marl_sharding.py checks it)
    sharded = jax.jit(
        jax.shard_map(body, mesh=m, in_specs=(specs,), out_specs=(specs, P()), check_vma=False),
        donate_argnums=0,
    )

    def chunk(carry: rollout.Carry) -> tuple[rollout.Carry, dict]:
        # a resumed learner arrives on one device: lay it out first
        return sharded(jax.device_put(carry, lay_out(m, specs, carry)))

    return chunk
