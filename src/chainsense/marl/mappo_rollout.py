"""MAPPO's data collection: one slot in every world with the stochastic shared actor, and GAE.

:func:`collect_step` is the body of a ``lax.scan`` over ``ppo_steps`` slots: it samples z from
the Gaussian actor, steps all ``num_envs`` worlds at once (``world.batch_step``, a vmap over
worlds), records what PPO needs and restarts finished worlds from a small pool of fresh ones
(``marl.world_pool``). :func:`gae` turns the collected rewards and values
into advantages and value targets. A recurrent actor (``cfg.recurrent``) also carries its hidden
state from slot to slot; a world that just restarted has ``start`` set, and the actor zeroes
its hidden state there before reading the slot.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from chainsense.marl import (
    features,
    networks,
    rewards,
    target_actions,
    train,
    world_pool,
)
from chainsense.marl import mappo_networks as mnet
from chainsense.marl.config import TrainConfig
from chainsense.marl.recharge import recharge_reflex
from chainsense.sim import world
from chainsense.sim.params import WorldParams


class Trajectory(NamedTuple):
    """One slot of all worlds (``lax.scan`` adds a leading time axis)."""

    obs: jax.Array  # [B, M, d] learner observation the action was taken from
    z: jax.Array  # [B, M, 2] pre-squash Gaussian sample
    logp: jax.Array  # [B, M] its log density under the acting policy
    value: jax.Array  # [B, M] V(s, m) at obs
    reward: jax.Array  # [B, M] training reward (shaped, scaled)
    done: jax.Array  # [B] 1.0 when the episode ended at this slot
    start: jax.Array  # [B] True when an episode started at this slot (the hidden was zeroed)


@struct.dataclass
class Carry:
    """Everything the MAPPO scan threads from one slot / iteration to the next."""

    env: Any  # batched world.WorldState [B, ...]
    obs: jax.Array  # [B, M, d]
    learner: Any  # mappo_update.Learner
    key: jax.Array
    env_steps: jax.Array  # int32 total env steps taken
    ep_return: jax.Array  # [B] running sum over MTs and slots of the world's reward
    memory: jax.Array  # [B, M, MEMORY_DIM]
    pool_used: jax.Array  # int32 entries of this iteration's world pool taken so far
    hidden: jax.Array  # [B, M, H] recurrent actor's hidden state (H = 0: feed-forward)
    start: jax.Array  # [B] True where the next slot starts an episode
    price: jax.Array  # float32 lambda of shaping = "efficiency" (rewards.next_price)


def collect_step(
    cfg: TrainConfig, params: WorldParams, pool: Any, carry: Carry, _: Any
) -> tuple[Carry, tuple[Trajectory, dict[str, jax.Array]]]:
    """One slot in every world; returns the new carry, the slot's data and episode stats."""
    key, k_act, k_step = jax.random.split(carry.key, 3)
    if cfg.recurrent:
        hidden, mean, log_std = mnet.recurrent_policy(
            cfg, carry.learner.actor, carry.hidden, carry.obs, carry.start
        )
    else:
        hidden = carry.hidden
        mean, log_std = mnet.policy(cfg, carry.learner.actor, carry.obs)
    z = mean + jnp.exp(log_std) * jax.random.normal(k_act, mean.shape)
    value = mnet.value(cfg, carry.learner.critic, carry.obs)
    disk = networks.squash_to_disk(z)
    if cfg.action_space == "targets":  # the actor weighs greedy's targets: remember the moves
        physical = jax.vmap(lambda s, d: target_actions.decode(s, d, params, cfg))(carry.env, disk)
        disk = networks.from_physical(physical, params.max_move)
    else:
        physical = networks.to_physical(disk, params.max_move)
    if cfg.recharge_reflex:  # the rule overrides some MTs: remember what they really did
        physical = jax.vmap(lambda s, a: recharge_reflex(s, params, a, cfg.recharge_rule))(
            carry.env, physical
        )
        disk = networks.from_physical(physical, params.max_move)
    env, world_obs, reward, done, info = world.batch_step(
        jax.random.split(k_step, cfg.num_envs), carry.env, physical, params
    )
    shaped = rewards.shape_reward(cfg, reward, info, params, carry.env, env, carry.price)
    shaped = shaped * cfg.reward_scale
    memory = features.remember(disk, info.collision)
    next_obs = train.batch_learner_obs(cfg, env, world_obs, params, memory)
    ep_return = carry.ep_return + jnp.sum(reward, axis=-1)
    stats = train.episode_stats(done, env, ep_return, params)
    env, next_obs, memory, ep_return, pool_used = world_pool.restart(
        done, pool, carry.pool_used, env, next_obs, memory, ep_return
    )
    traj = Trajectory(
        obs=carry.obs,
        z=z,
        logp=mnet.log_prob(z, mean, log_std),
        value=value,
        reward=shaped,
        done=done.astype(jnp.float32),
        start=carry.start,
    )
    new = carry.replace(
        env=env,
        obs=next_obs,
        key=key,
        env_steps=carry.env_steps + cfg.num_envs,
        ep_return=ep_return,
        memory=memory,
        pool_used=pool_used,
        hidden=hidden,
        start=done.astype(bool),
    )
    return new, (traj, stats)


def gae(
    reward: jax.Array,
    value: jax.Array,
    done: jax.Array,
    last_value: jax.Array,
    gamma: float,
    lam: float,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimates and value targets over a time axis.

    ``reward``/``value`` [T, ...], ``done`` [T, ...] broadcastable to them (1.0 where the
    episode ended at that slot: no bootstrapping across it), ``last_value`` [...] V after the
    last slot. delta_t = r_t + gamma (1 - d_t) V_{t+1} - V_t and
    A_t = delta_t + gamma lambda (1 - d_t) A_{t+1}; targets are A_t + V_t.
    """
    done = jnp.broadcast_to(done, reward.shape)

    def back(carry: tuple[jax.Array, jax.Array], x: tuple) -> tuple[tuple, jax.Array]:
        adv_next, v_next = carry
        r, v, d = x
        delta = r + gamma * (1.0 - d) * v_next - v
        adv = delta + gamma * lam * (1.0 - d) * adv_next
        return (adv, v), adv

    init = (jnp.zeros_like(last_value), last_value)
    _, adv = jax.lax.scan(back, init, (reward, value, done), reverse=True)
    return adv, adv + value
