"""The jit-compiled MAPPO loop: collect ``ppo_steps`` slots in every world, GAE, PPO update.

One iteration (:func:`iteration`) is a ``lax.scan`` of ``ppo_steps`` collection slots over all
``num_envs`` worlds (``mappo_rollout``), the value of the last observation, GAE and
``ppo_epochs x ppo_minibatches`` updates (``mappo_update``). ``chunk_iters`` iterations run in one
``lax.scan`` inside one ``jit`` call (the PureJaxRL style: nothing returns to Python in between),
with the same per-chunk statistics as the MADDPG loop so ``marl.session`` drives both alike.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from chainsense.marl import features, mappo_sequence, mappo_update, rewards, train, world_pool
from chainsense.marl import mappo_networks as mnet
from chainsense.marl import mappo_rollout as rollout
from chainsense.marl.config import TrainConfig
from chainsense.sim import observe as observe_mod
from chainsense.sim.maps import MapArrays
from chainsense.sim.params import WorldParams


def init_carry(
    key: jax.Array,
    cfg: TrainConfig,
    params: WorldParams,
    site: MapArrays | None = None,
    learner: mappo_update.Learner | None = None,
) -> rollout.Carry:
    """Fresh learner (or ``learner``: PPO fine-tunes a given one, e.g. a clone of the planner)
    and ``num_envs`` freshly reset worlds (desynchronised; on ``site`` when given), all from one
    key."""
    k_learn, k_env, k_run = jax.random.split(key, 3)
    if learner is None:
        od = features.learner_obs_dim(cfg, params)
        learner = mappo_update.init(k_learn, cfg, params.num_mts, od)
    k_env, k_off = jax.random.split(k_env)
    keys = jax.random.split(k_env, cfg.num_envs)
    env, _ = train.reset_worlds(keys, params, site, train.steers_by_rule(cfg))
    offset = jax.random.randint(k_off, (cfg.num_envs,), 0, params.num_slots)
    env = env.replace(t=offset.astype(env.t.dtype))
    memory = train.fresh_memory(cfg, params)
    world_obs = jax.vmap(lambda s: observe_mod.observe(s, params))(env)
    return rollout.Carry(
        env=env,
        obs=train.batch_learner_obs(cfg, env, world_obs, params, memory),
        learner=learner,
        key=k_run,
        env_steps=jnp.zeros((), jnp.int32),
        ep_return=jnp.zeros((cfg.num_envs,), jnp.float32),
        memory=memory,
        pool_used=jnp.zeros((), jnp.int32),
        hidden=mnet.initial_hidden(cfg, (cfg.num_envs, params.num_mts)),
        start=jnp.ones((cfg.num_envs,), bool),
        price=rewards.initial_price(cfg),
    )


def steps_per_iteration(cfg: TrainConfig) -> int:
    """Env steps of one MAPPO iteration."""
    return cfg.num_envs * cfg.ppo_steps


def _flatten(x: jax.Array) -> jax.Array:
    return x.reshape(-1, *x.shape[2:])


def iteration(
    cfg: TrainConfig,
    params: WorldParams,
    site: MapArrays | None,
    carry: rollout.Carry,
    _: Any,
    axis_name: str | None = None,
) -> tuple[rollout.Carry, tuple[dict, dict]]:
    """One iteration (collect, GAE, update); with ``axis_name`` on this device's worlds, the
    update joint with the other devices' (``marl.sharding``)."""
    key, k_pool, k_upd = jax.random.split(carry.key, 3)
    # fresh worlds for the episodes that end during this iteration
    pool = world_pool.draw(cfg, params, k_pool, site)
    hidden = carry.hidden
    carry, (traj, stats) = jax.lax.scan(
        partial(rollout.collect_step, cfg, params, pool),
        carry.replace(key=key, pool_used=jnp.zeros((), jnp.int32)),
        None,
        length=cfg.ppo_steps,
    )
    carry = carry.replace(price=rewards.next_price(cfg, carry.price, stats, axis_name))
    last_value = mnet.value(cfg, carry.learner.critic, carry.obs)
    adv, target = rollout.gae(
        traj.reward, traj.value, traj.done[..., None], last_value, cfg.gamma, cfg.gae_lambda
    )
    if cfg.recurrent:  # whole sequences: the GRU is re-run over them
        seq = mappo_sequence.SequenceBatch(
            hidden, traj.start, traj.obs, traj.z, traj.logp, traj.value, adv, target
        )
        learner, logs = mappo_sequence.update(cfg, carry.learner, seq, k_upd)
        return carry.replace(learner=learner), (jax.tree_util.tree_map(jnp.sum, stats), logs)
    batch = mappo_update.Batch(
        obs=_flatten(traj.obs),
        z=_flatten(traj.z),
        logp=_flatten(traj.logp),
        value=_flatten(traj.value),
        advantage=_flatten(adv),
        target=_flatten(target),
    )
    learner, logs = mappo_update.update(cfg, carry.learner, batch, k_upd, axis_name)
    return carry.replace(learner=learner), (jax.tree_util.tree_map(jnp.sum, stats), logs)


def make_chunk(
    cfg: TrainConfig, params: WorldParams, site: MapArrays | None = None
) -> Callable[[rollout.Carry], tuple[rollout.Carry, dict]]:
    """A jitted function running ``cfg.chunk_iters`` MAPPO iterations (worlds restarting on
    ``site`` when given); the same statistics as ``train.make_chunk`` (episode sums, mean
    losses, ``updated_iters``)."""

    @partial(jax.jit, donate_argnums=0)
    def chunk(carry: rollout.Carry) -> tuple[rollout.Carry, dict]:
        carry, (stats, logs) = jax.lax.scan(
            partial(iteration, cfg, params, site), carry, None, length=cfg.chunk_iters
        )
        return carry, chunk_stats(cfg, stats, logs)

    return chunk


def chunk_stats(cfg: TrainConfig, stats: dict, logs: dict) -> dict:
    """A chunk's statistics from its iterations': episode sums, mean losses, ``updated_iters``."""
    out = {k: jnp.sum(v) for k, v in stats.items()}
    for k in train.LOSS_NAMES:
        out[k] = jnp.mean(logs[k])
    out["updated_iters"] = jnp.float32(cfg.chunk_iters)
    return out
