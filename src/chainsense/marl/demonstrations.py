"""DAgger demonstrations: the planner's action on every state a rollout visits, as learner labels.

The OR-Tools planner (``marl.planner``) cannot run inside ``jit``, but the ``RouteFollower`` of
one plan is a state-feedback policy: it gives the planner's action in *any* state, including the
states a learner drives the fleet into. So an episode here alternates, like
``marl.replanning.planned_episode``: plan on the host, then one jitted ``lax.while_loop`` of up
to ``replan_every`` slots (stopping early when a route is done: replan at once). In every slot
each MT's executed action is the expert's with probability ``beta`` and the learner's otherwise
(DAgger's mixture, Ross et al. 2011: ``beta = 1`` in the first round, 0 later), and the slot
records the learner observation (``features.learner_obs`` with memory: exactly the actor's
input), the expert's action and the training reward (``rewards.shape_reward`` x
``reward_scale``), so the critic can be fitted to the returns of the episodes played.

Label parametrisation: the world takes (theta, l) = ``to_physical(squash_to_disk(z))`` from the
actor's pre-squash ``z``. The expert's (theta, l) maps to the unit disk exactly
(``networks.from_physical``), but a full-length move (|d| = 1, most of the planner's moves) has
no finite ``z``. Labels are therefore cloned in ``z`` with the disk radius capped at
``DISK_CAP``: PPO's likelihood is Gaussian in ``z``, so a regression there is the maximum
likelihood fit of the policy PPO then fine-tunes, and a cap of 0.98 (|z| <= 4.9) loses 2% of a
full move's length while keeping the targets in the range a small-std Gaussian can explore.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from chainsense.marl import features, networks, rewards
from chainsense.marl import mappo_networks as mnet
from chainsense.marl.config import TrainConfig
from chainsense.marl.planner import PlannerPolicy, RouteFollower
from chainsense.sim.maps import WorldMap
from chainsense.sim.metrics import episode_metrics
from chainsense.sim.params import WorldParams
from chainsense.sim.state import WorldState
from chainsense.sim.world import episode_start, step

#: largest unit-disk radius a label is cloned at (see the module docstring)
DISK_CAP = 0.98


def disk_to_z(disk: Array, cap: float = DISK_CAP) -> Array:
    """Unit-disk displacements [..., 2] -> pre-squash z with ``squash_to_disk(z)`` equal to the
    displacement shrunk to radius <= ``cap`` (the inverse of the squash inside the disk)."""
    norm = jnp.sqrt(jnp.sum(disk * disk, axis=-1, keepdims=True))
    capped = disk * jnp.minimum(1.0, cap / jnp.maximum(norm, 1e-12))
    r2 = jnp.sum(capped * capped, axis=-1, keepdims=True)
    return capped / jnp.sqrt(1.0 - r2)


class Episode(NamedTuple):
    """The T slots of one demonstration episode (T = the episode's slots)."""

    obs: np.ndarray  # [T, M, d] learner observation at each slot
    expert: np.ndarray  # [T, M, 2] the expert's unit-disk action there
    reward: np.ndarray  # [T, M] training reward of the executed action
    metrics: dict[str, float]  # the episode's paper metrics (of the executed, mixed policy)
    plans: int


@partial(jax.jit, static_argnames=("cfg", "params", "length"))
def _chunk(
    follower: RouteFollower,
    actor: Any,
    beta: Array,
    carry: tuple[WorldState, Array, Array],
    key: Array,
    cfg: TrainConfig,
    params: WorldParams,
    length: int,
) -> tuple[tuple[WorldState, Array, Array], Array, tuple[Array, Array, Array]]:
    """Up to ``length`` slots under the beta-mixture of expert and learner; labelled slots."""
    m = params.num_mts
    od = features.learner_obs_dim(cfg, params)
    bufs = (
        jnp.zeros((length, m, od), jnp.float32),
        jnp.zeros((length, m, 2), jnp.float32),
        jnp.zeros((length, m), jnp.float32),
    )

    def cond(c: tuple) -> Array:
        i, (s, _, _), _ = c
        go_on = (i == 0) | ~follower.finished(s, params)
        return (i < length) & ~s.done & go_on

    def body(c: tuple) -> tuple:
        i, (s, o, mem), b = c
        k_exp, k_step, k_mix, k_noise = jax.random.split(jax.random.fold_in(key, s.t + 1), 4)
        lobs = features.learner_obs(cfg, s, o, params, mem)
        expert = networks.from_physical(follower.act(k_exp, o, s, params), params.max_move)
        own = mnet.act(cfg, actor, lobs)
        own = networks.clip_to_disk(own + cfg.eval_noise * jax.random.normal(k_noise, own.shape))
        use_expert = jax.random.uniform(k_mix, (m, 1)) < beta
        disk = jnp.where(use_expert, expert, own)
        s2, o2, r, _, info = step(k_step, s, networks.to_physical(disk, params.max_move), params)
        shaped = rewards.shape_reward(cfg, r, info, params, s, s2) * cfg.reward_scale
        new = (lobs, expert, shaped)
        b = tuple(buf.at[i].set(x) for buf, x in zip(b, new, strict=True))
        return i + 1, (s2, o2, features.remember(disk, info.collision)), b

    steps, carry, bufs = jax.lax.while_loop(cond, body, (jnp.int32(0), carry, bufs))
    return carry, steps, bufs


_metrics = jax.jit(episode_metrics, static_argnames=("params",))


def episode(
    planner: PlannerPolicy,
    actor: Any,
    beta: float,
    key: Array,
    cfg: TrainConfig,
    params: WorldParams,
    world_map: WorldMap | None = None,
) -> Episode:
    """One labelled episode on the map of ``fold_in(key, 0)`` (or ``world_map``): replanned on
    the host every ``replan_every`` slots (``replan_changing`` where the world changes) and
    whenever a route is done."""
    state, obs = episode_start(key, params, world_map)
    changing = params.dynamic or params.charging
    every = planner.replan_changing if changing else planner.replan_every
    length = max(1, min(int(every), params.num_slots))
    carry = (state, obs, features.initial_memory(params.num_mts))
    parts: list[list[np.ndarray]] = [[], [], []]
    plans = 0
    while not bool(carry[0].done):
        follower = planner.plan(carry[0], params)
        plans += 1
        carry, steps, bufs = _chunk(
            follower, actor, jnp.float32(beta), carry, key, cfg, params, length
        )
        n = int(steps)
        for part, buf in zip(parts, bufs, strict=True):
            part.append(np.asarray(buf[:n]))
    obs_t, expert, reward = (np.concatenate(p) for p in parts)
    metrics = {k: float(v) for k, v in _metrics(carry[0], params).items()}
    return Episode(obs_t, expert, reward, metrics, plans)


def discounted_returns(reward: np.ndarray, gamma: float) -> np.ndarray:
    """Per-MT discounted returns [T, M] of one whole episode (nothing after its last slot)."""
    out = np.zeros_like(reward, dtype=np.float64)
    acc = np.zeros(reward.shape[1:], np.float64)
    for t in range(len(reward) - 1, -1, -1):
        acc = reward[t] + gamma * acc
        out[t] = acc
    return out.astype(np.float32)


class Dataset(NamedTuple):
    """Labelled slots of many episodes, flattened: leading axis N."""

    obs: np.ndarray  # [N, M, d]
    z: np.ndarray  # [N, M, 2] cloning targets (``disk_to_z`` of the expert's action)
    ret: np.ndarray  # [N, M] discounted training return from that slot on


def collect(
    planner: PlannerPolicy,
    actor: Any,
    beta: float,
    keys: list[Array],
    cfg: TrainConfig,
    params: WorldParams,
    world_map: WorldMap | None = None,
) -> tuple[Dataset, dict[str, float]]:
    """One labelled episode per key; the dataset and what it cost (env steps, plans, CPU and
    wall seconds) with the mean metrics of the episodes played."""
    t0, c0 = time.perf_counter(), time.process_time()
    eps = [episode(planner, actor, beta, k, cfg, params, world_map) for k in keys]
    data = Dataset(
        obs=np.concatenate([e.obs for e in eps]),
        z=np.asarray(disk_to_z(jnp.asarray(np.concatenate([e.expert for e in eps])))),
        ret=np.concatenate([discounted_returns(e.reward, cfg.gamma) for e in eps]),
    )
    info = {
        "episodes": float(len(eps)),
        "env_steps": float(sum(len(e.obs) for e in eps)),
        "plans": float(sum(e.plans for e in eps)),
        "cpu_s": time.process_time() - c0,
        "wall_s": time.perf_counter() - t0,
    }
    for k in ("energy_efficiency", "data_collection_ratio", "fairness"):
        info[k] = float(np.mean([e.metrics[k] for e in eps]))
    return data, info
