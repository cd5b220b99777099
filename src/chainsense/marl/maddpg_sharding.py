"""Data-parallel MADDPG / IDDPG: ``marl.sharding``'s split for the replay loop of ``marl.train``.

Each device steps ``num_envs / devices`` worlds and keeps its own replay buffer of
``buffer_size / devices`` transitions; it adds the same number per iteration as every other
device, so the buffers' ``ptr`` and ``size`` stay equal and are replicated. Every count a device
compares with its own buffer or step count is divided by the device count (batch, buffer,
warm-up, noise decay: :func:`local_config`), the step count it sees is the global one / devices,
and the critic's and actors' gradients are averaged over devices (``maddpg.update``), so each
update is one device's update on a batch of ``batch_size`` drawn from the union of the buffers
(an equal share from each).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial

import jax
from jax.sharding import PartitionSpec as P

from chainsense.marl import buffer as rb
from chainsense.marl import sharding, train
from chainsense.marl.config import TrainConfig
from chainsense.sim.maps import MapArrays
from chainsense.sim.params import WorldParams

AXIS = sharding.AXIS


def local_config(cfg: TrainConfig) -> TrainConfig:
    """The config one device runs: its share of worlds, buffer, batch and step counts."""
    n = cfg.devices
    return dataclasses.replace(
        cfg,
        num_envs=cfg.num_envs // n,
        batch_size=cfg.batch_size // n,
        buffer_size=cfg.buffer_size // n,
        warmup_steps=-(-cfg.warmup_steps // n),
        noise_decay_steps=-(-cfg.noise_decay_steps // n),
        devices=1,
    )


def carry_specs() -> train.Carry:
    """Worlds and buffer contents split along their leading axis, the rest replicated."""
    split, same = P(AXIS), P()
    return train.Carry(
        env=split,
        obs=split,
        learner=same,
        buf=rb.Buffer(data=split, ptr=same, size=same),
        key=same,
        env_steps=same,
        ep_return=split,
        memory=split,
    )


def init_carry(
    key: jax.Array, cfg: TrainConfig, params: WorldParams, site: MapArrays | None = None
) -> train.Carry:
    """Fresh learner, empty buffers and all ``num_envs`` worlds, split over the devices (built
    in place: each device creates only its share of the replay buffer)."""
    build = partial(train.init_carry, cfg=cfg, params=params, site=site)
    return sharding.build_in_place(build, key, cfg, carry_specs())


def make_chunk(
    cfg: TrainConfig, params: WorldParams, site: MapArrays | None = None
) -> Callable[[train.Carry], tuple[train.Carry, dict]]:
    """``train.make_chunk`` over ``cfg.devices`` devices: episode statistics summed over
    devices, losses (already averaged over devices) averaged over the updating iterations."""
    m = sharding.mesh(cfg)
    local = local_config(cfg)
    n = cfg.devices

    def body(carry: train.Carry) -> tuple[train.Carry, dict]:
        key, k_pool, k_run = jax.random.split(carry.key, 3)
        device = jax.lax.axis_index(AXIS)
        pool = train.fresh_pool(local, params, jax.random.fold_in(k_pool, device), site)
        mine = carry.replace(key=jax.random.fold_in(k_run, device), env_steps=carry.env_steps // n)
        mine, (stats, logs) = jax.lax.scan(
            partial(train.iteration, local, params, pool, axis_name=AXIS),
            mine,
            None,
            length=cfg.chunk_iters,
        )
        carry = mine.replace(key=key, env_steps=mine.env_steps * n)
        return carry, train.chunk_stats(jax.lax.psum(stats, AXIS), logs)

    specs = carry_specs()
    # check_vma off for the reason given in marl.sharding.make_chunk
    sharded = jax.jit(
        jax.shard_map(body, mesh=m, in_specs=(specs,), out_specs=(specs, P()), check_vma=False),
        donate_argnums=0,
    )

    def chunk(carry: train.Carry) -> tuple[train.Carry, dict]:
        return sharded(jax.device_put(carry, sharding.lay_out(m, specs, carry)))

    return chunk
