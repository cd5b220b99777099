"""The jit-compiled collect-and-update loop over a batch of worlds.

One *iteration* acts in all ``num_envs`` worlds at once (actor + decaying Gaussian noise on the
unit-disk action; uniform random actions during warm-up), steps them with the vmapped world,
writes the ``num_envs`` transitions into the device replay buffer, restarts finished worlds from a
pool of fresh worlds drawn once per chunk, and runs
``updates_per_iter`` MADDPG/IDDPG updates once the buffer holds ``warmup_steps`` transitions.
``chunk_iters`` iterations run inside one ``lax.scan`` call, so Python only wakes up between
chunks (progress bar, CSV / TensorBoard rows, time budget, checkpoints).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from chainsense.marl import buffer as rb
from chainsense.marl import features, maddpg, networks, rewards
from chainsense.marl.config import TrainConfig
from chainsense.sim import metrics, world
from chainsense.sim import observe as observe_mod
from chainsense.sim.maps import MapArrays
from chainsense.sim.params import WorldParams, state_dim

#: what the training log records of every finished episode
METRIC_NAMES = (*metrics.PAPER_METRICS, "collisions")
#: what one update logs (``maddpg.update``); chunks report their means over the updates
LOSS_NAMES = ("critic_loss", "actor_loss", "q_mean")


@struct.dataclass
class Carry:
    """Everything the training scan threads from one iteration to the next."""

    env: Any  # batched world.WorldState [B, ...]
    obs: jax.Array  # [B, M, obs_dim]
    learner: maddpg.Learner
    buf: rb.Buffer
    key: jax.Array
    env_steps: jax.Array  # int32 total env steps taken (B per iteration)
    ep_return: jax.Array  # [B] running sum over MTs and slots of the world's reward
    memory: jax.Array  # [B, M, MEMORY_DIM] last action and refused flag (``cfg.memory``)


def _critic_state(cfg: TrainConfig, state: Any, params: WorldParams) -> jax.Array:
    if cfg.algo == "maddpg" and cfg.critic_input == "global":
        return observe_mod.global_state(state, params)
    return jnp.zeros((0,), jnp.float32)


def _example_transition(cfg: TrainConfig, params: WorldParams) -> maddpg.Transition:
    m, od = params.num_mts, features.learner_obs_dim(cfg, params)
    sd = state_dim(params) if cfg.algo == "maddpg" and cfg.critic_input == "global" else 0
    z = partial(jnp.zeros, dtype=jnp.float32)
    return maddpg.Transition(
        obs=z((m, od)),
        cstate=z((sd,)),
        action=z((m, 2)),
        reward=z((m,)),
        next_obs=z((m, od)),
        next_cstate=z((sd,)),
        done=z(()),
    )


def reset_worlds(
    keys: jax.Array, params: WorldParams, site: MapArrays | None, roadmap: bool = False
) -> tuple:
    """Fresh worlds for ``keys`` [B]: random maps, or all on ``site`` (``--map FILE``: one
    real site, the episodes differing only in the world's own randomness). With their roadmap
    (``WorldState.roadmap``) only when asked: a learner steering itself never reads it, and
    computing it for every fresh world cost MAPPO two thirds of its env steps per second on
    `paper` (:func:`steers_by_rule`)."""
    if site is None:
        return world.batch_reset(keys, params, roadmap)
    return jax.vmap(lambda _: world.reset_from_arrays(site, params, roadmap))(keys)


def steers_by_rule(cfg: TrainConfig) -> bool:
    """Whether the fleet's actions go through the heuristics' navigation (``marl.navigation``):
    the targets decoding and the recharge reflex; their training worlds carry a roadmap."""
    return cfg.action_space == "targets" or cfg.recharge_reflex


def init_carry(
    key: jax.Array, cfg: TrainConfig, params: WorldParams, site: MapArrays | None = None
) -> Carry:
    """Fresh learner, empty buffer and ``num_envs`` freshly reset worlds (on ``site`` when
    given, see :func:`reset_worlds`), all from one key."""
    k_learn, k_env, k_run = jax.random.split(key, 3)
    od = features.learner_obs_dim(cfg, params)
    learner = maddpg.init(k_learn, cfg, params.num_mts, od, state_dim(params))
    k_env, k_off = jax.random.split(k_env)
    env, _ = reset_worlds(jax.random.split(k_env, cfg.num_envs), params, site, steers_by_rule(cfg))
    # Desynchronise the worlds: world b starts its first episode at a random slot, so the buffer
    # always mixes early and late slots instead of holding one time window of lock-stepped worlds.
    offset = jax.random.randint(k_off, (cfg.num_envs,), 0, params.num_slots)
    env = env.replace(t=offset.astype(env.t.dtype))
    memory = fresh_memory(cfg, params)
    world_obs = jax.vmap(lambda s: observe_mod.observe(s, params))(env)
    obs = batch_learner_obs(cfg, env, world_obs, params, memory)
    return Carry(
        env=env,
        obs=obs,
        learner=learner,
        buf=rb.init(_example_transition(cfg, params), cfg.buffer_size),
        key=k_run,
        env_steps=jnp.zeros((), jnp.int32),
        ep_return=jnp.zeros((cfg.num_envs,), jnp.float32),
        memory=memory,
    )


def fresh_memory(cfg: TrainConfig, params: WorldParams) -> jax.Array:
    """[B, M, MEMORY_DIM] memory of ``num_envs`` fresh episodes."""
    return jnp.broadcast_to(
        features.initial_memory(params.num_mts), (cfg.num_envs, params.num_mts, features.MEMORY_DIM)
    )


def min_fill(cfg: TrainConfig) -> int:
    """Transitions the buffer must hold before updates start (also after a resume)."""
    return max(cfg.batch_size, min(cfg.warmup_steps, cfg.buffer_size))


def batch_learner_obs(
    cfg: TrainConfig, env: Any, obs: jax.Array, params: WorldParams, memory: jax.Array
) -> jax.Array:
    """Batched learner observations [B, M, learner_obs_dim] (world obs + sensor + memory)."""
    return jax.vmap(lambda s, o, mem: features.learner_obs(cfg, s, o, params, mem))(
        env, obs, memory
    )


def noise_scale(cfg: TrainConfig, env_steps: jax.Array) -> jax.Array:
    """Exploration noise std: linear decay from noise_start to noise_end over noise_decay_steps."""
    frac = jnp.clip(env_steps.astype(jnp.float32) / cfg.noise_decay_steps, 0.0, 1.0)
    return cfg.noise_start + (cfg.noise_end - cfg.noise_start) * frac


def _explore(cfg: TrainConfig, carry: Carry, key: jax.Array) -> jax.Array:
    k_noise, k_rand = jax.random.split(key)
    d = maddpg.act(cfg, carry.learner.actor, carry.obs)
    noisy = networks.clip_to_disk(
        d + noise_scale(cfg, carry.env_steps) * jax.random.normal(k_noise, d.shape)
    )
    # Warm-up: uniform over the unit disk (uniform direction, sqrt-uniform radius).
    ka, kr = jax.random.split(k_rand)
    ang = jax.random.uniform(ka, d.shape[:-1], maxval=2.0 * jnp.pi)
    rad = jnp.sqrt(jax.random.uniform(kr, d.shape[:-1]))
    rand = jnp.stack([rad * jnp.cos(ang), rad * jnp.sin(ang)], axis=-1)
    return jnp.where(carry.env_steps < cfg.warmup_steps, rand, noisy)


def iteration(
    cfg: TrainConfig,
    params: WorldParams,
    pool: Any,
    carry: Carry,
    _: Any,
    axis_name: str | None = None,
) -> tuple[Carry, Any]:
    """One iteration: step every world, store the transitions, update when the buffer is ready
    (with ``axis_name``: on this device's worlds and buffer, jointly with the other devices)."""
    key, k_act, k_step, k_upd = jax.random.split(carry.key, 4)
    b = cfg.num_envs
    action = _explore(cfg, carry, k_act)
    physical = networks.to_physical(action, params.max_move)
    env, next_obs, reward, done, info = world.batch_step(
        jax.random.split(k_step, b), carry.env, physical, params
    )
    memory = features.remember(action, info.collision)
    next_obs = batch_learner_obs(cfg, env, next_obs, params, memory)
    cstate = jax.vmap(lambda s: _critic_state(cfg, s, params))(carry.env)
    next_cstate = jax.vmap(lambda s: _critic_state(cfg, s, params))(env)
    trans = maddpg.Transition(
        obs=carry.obs,
        cstate=cstate,
        action=action,
        reward=rewards.shape_reward(cfg, reward, info, params, carry.env, env),
        next_obs=next_obs,
        next_cstate=next_cstate,
        done=done.astype(jnp.float32),
    )
    buf = rb.add(carry.buf, trans)
    ep_return = carry.ep_return + jnp.sum(reward, axis=-1)

    stats = episode_stats(done, env, ep_return, params)
    env, next_obs, memory, ep_return = restart_finished(
        done, pool, env, next_obs, memory, ep_return
    )

    env_steps = carry.env_steps + b
    learner = carry.learner
    ready = buf.size >= min_fill(cfg)

    def train(learner: maddpg.Learner) -> tuple[maddpg.Learner, dict]:
        def one(i: int, acc: tuple[maddpg.Learner, dict]) -> tuple[maddpg.Learner, dict]:
            lrn, logs = acc
            batch = rb.sample(buf, jax.random.fold_in(k_upd, i), cfg.batch_size)
            lrn, new_logs = maddpg.update(cfg, lrn, batch, axis_name)
            return lrn, jax.tree_util.tree_map(jnp.add, logs, new_logs)

        lrn, logs = jax.lax.fori_loop(0, cfg.updates_per_iter, one, (learner, _zero_logs()))
        return lrn, jax.tree_util.tree_map(lambda x: x / cfg.updates_per_iter, logs)

    def skip(learner: maddpg.Learner) -> tuple[maddpg.Learner, dict]:
        return learner, _zero_logs()

    learner, logs = jax.lax.cond(ready, train, skip, learner)
    logs["updated"] = ready.astype(jnp.float32)
    new = Carry(
        env=env,
        obs=next_obs,
        learner=learner,
        buf=buf,
        key=key,
        env_steps=env_steps,
        ep_return=ep_return,
        memory=memory,
    )
    return new, (stats, logs)


def episode_stats(
    done: jax.Array, env: Any, ep_return: jax.Array, params: WorldParams
) -> dict[str, jax.Array]:
    """Sums of the metrics and returns of the episodes that ended this step, and their count.

    The metrics of all worlds are computed only in steps where some world finished (a
    ``lax.cond``): with desynchronised worlds most steps end no episode.
    """
    fin = done.astype(jnp.float32)

    def finished(env: Any) -> dict[str, jax.Array]:
        ep_metrics = jax.vmap(lambda s: metrics.episode_metrics(s, params))(env)
        return {
            name: jnp.sum(fin * jnp.asarray(ep_metrics[name], jnp.float32)) for name in METRIC_NAMES
        }

    def none(env: Any) -> dict[str, jax.Array]:
        return {name: jnp.float32(0.0) for name in METRIC_NAMES}

    stats = jax.lax.cond(jnp.any(done), finished, none, env)
    stats["episodes"] = jnp.sum(fin)
    stats["return"] = jnp.sum(fin * ep_return)
    return stats


def restart_finished(
    done: jax.Array,
    pool: Any,
    env: Any,
    obs: jax.Array,
    memory: jax.Array,
    ep_return: jax.Array,
) -> tuple[Any, jax.Array, jax.Array, jax.Array]:
    """Finished worlds restart from the pool of fresh worlds (world b takes entry b), with
    fresh memory and a zero running return."""
    fresh, fresh_obs = pool
    pick = partial(_select, done)
    env = jax.tree_util.tree_map(pick, fresh, env)
    obs = pick(fresh_obs, obs)
    memory = pick(jnp.zeros_like(memory), memory)
    return env, obs, memory, jnp.where(done, 0.0, ep_return)


def fresh_pool(
    cfg: TrainConfig, params: WorldParams, key: jax.Array, site: MapArrays | None = None
) -> tuple[Any, jax.Array]:
    """``num_envs`` fresh worlds and their learner observations (with fresh memory)."""
    keys = jax.random.split(key, cfg.num_envs)
    fresh, fresh_obs = reset_worlds(keys, params, site, steers_by_rule(cfg))
    return fresh, batch_learner_obs(cfg, fresh, fresh_obs, params, fresh_memory(cfg, params))


def _zero_logs() -> dict[str, jax.Array]:
    return {k: jnp.float32(0.0) for k in LOSS_NAMES}


def _select(mask: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """a where mask (broadcast over trailing axes) else b."""
    return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - mask.ndim)), a, b)


def make_chunk(
    cfg: TrainConfig, params: WorldParams, site: MapArrays | None = None
) -> Callable[[Carry], tuple[Carry, dict]]:
    """A jitted function running ``cfg.chunk_iters`` iterations; returns carry and chunk stats.
    Finished worlds restart on ``site`` when given (:func:`reset_worlds`).

    Stats are sums over the episodes that ended in the chunk (``episodes`` counts them) and
    means of the losses over the iterations that ran updates (``updated`` counts them).
    """

    @partial(jax.jit, donate_argnums=0)  # the buffer is updated in place, not copied
    def chunk(carry: Carry) -> tuple[Carry, dict]:
        # Fresh worlds for the resets of this chunk, drawn once per chunk: the worlds are
        # desynchronised, so some world finishes in almost every iteration, and resetting all B
        # worlds there (map generation by rejection sampling) would cost more than the steps.
        key, k_pool = jax.random.split(carry.key)
        pool = fresh_pool(cfg, params, k_pool, site)
        carry, (stats, logs) = jax.lax.scan(
            partial(iteration, cfg, params, pool),
            carry.replace(key=key),
            None,
            length=cfg.chunk_iters,
        )
        return carry, chunk_stats(stats, logs)

    return chunk


def chunk_stats(stats: dict, logs: dict) -> dict:
    """A chunk's statistics from its iterations': episode sums, the losses' means over the
    iterations that updated, ``updated_iters``."""
    out = {k: jnp.sum(v) for k, v in stats.items()}
    n_upd = jnp.sum(logs["updated"])
    for k in LOSS_NAMES:
        out[k] = jnp.sum(logs[k]) / jnp.maximum(n_upd, 1.0)
    out["updated_iters"] = n_upd
    return out
