"""Policies behind one call signature: ``act(key, obs[M,obs_dim], state, params) -> actions[M,2]``.

Actions are physical: theta in [0, 2 pi), l in [0, max_move]. Every policy is a pytree
(``flax.struct.dataclass``): settings are static fields, learned weights would be array leaves, so
a policy can be passed as an ordinary argument to a jitted rollout without retracing when its
weights change. Heuristics may read the full ``state``; learned policies must use ``obs`` only.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import jax
import jax.numpy as jnp
from flax import struct
from jax import Array

from chainsense.errors import ConfigError
from chainsense.sim.params import WorldParams
from chainsense.sim.world import WorldState, segment_hits_boxes


@runtime_checkable
class Policy(Protocol):
    """Anything with a jit-able ``act``; see the module docstring."""

    def act(self, key: Array, obs: Array, state: WorldState, params: WorldParams) -> Array:
        """Physical actions [M,2] (theta, l) for every MT."""
        ...


@struct.dataclass
class RandomPolicy:
    """The paper's control group: theta ~ U[0, 2 pi), l ~ U[0, max_move], independently."""

    def act(self, key: Array, obs: Array, state: WorldState, params: WorldParams) -> Array:
        """Uniform random physical actions [M,2]."""
        del obs, state
        u = jax.random.uniform(key, (params.num_mts, 2), jnp.float32)
        return u * jnp.array([2.0 * math.pi, params.max_move], jnp.float32)


@struct.dataclass
class GreedyPolicy:
    """A strong hand-written baseline using the full state.

    Each slot every MT scores every PoI k by the data it would harvest there next slot (the
    collectable quota of all PoIs within sensing range of k, unvisited PoIs weighted up by
    ``1 + fairness_weight`` for Jain's index) divided by ``1 + slots needed to get there``. MTs
    choose in turn; a PoI within ``2 * sensing_range`` of an earlier MT's target is not offered to
    later MTs (no two MTs chase the same cluster). The MT heads for its target and, when the
    straight move would hit an obstacle or leave the area, takes the collision-free heading among
    ``headings`` candidates that ends closest to the target.
    """

    fairness_weight: float = struct.field(pytree_node=False, default=1.0)
    headings: int = struct.field(pytree_node=False, default=24)

    def act(self, key: Array, obs: Array, state: WorldState, params: WorldParams) -> Array:
        """Greedy physical actions [M,2]."""
        del key, obs
        p = params
        quota = jnp.minimum(p.collect_fraction * state.poi_init, state.poi_data)
        weight = 1.0 + self.fairness_weight * (state.visits == 0).astype(jnp.float32)
        value = quota * weight  # [K]
        d_pp = state.poi_pos[:, None, :] - state.poi_pos[None, :, :]
        near = (d_pp[..., 0] ** 2 + d_pp[..., 1] ** 2) <= p.sensing_range**2  # [K,K]
        cluster = near.astype(jnp.float32) @ value  # [K]: harvest when parked on PoI k
        has_data = cluster > 0

        d_mp = state.poi_pos[None, :, :] - state.mt_pos[:, None, :]  # [M,K,2]
        dist = jnp.sqrt(d_mp[..., 0] ** 2 + d_mp[..., 1] ** 2)
        slots = jnp.ceil(jnp.maximum(dist - p.max_move, 0.0) / p.max_move)
        score = jnp.where(has_data[None, :], cluster[None, :] / (1.0 + slots), -1.0)  # [M,K]

        claim_r2 = (2.0 * p.sensing_range) ** 2

        def choose(free: Array, m: Array) -> tuple[Array, Array]:
            s = jnp.where(free, score[m], -2.0)
            k = jnp.argmax(s)
            dk = state.poi_pos - state.poi_pos[k]
            taken = (dk[:, 0] ** 2 + dk[:, 1] ** 2) <= claim_r2
            return free & ~taken, k

        free0 = jnp.ones((p.num_pois,), bool)
        _, targets = jax.lax.scan(choose, free0, jnp.arange(p.num_mts))
        goal = state.poi_pos[targets]  # [M,2]
        # With nothing left worth a trip, stay put.
        idle = ~has_data[targets]
        to_goal = goal - state.mt_pos
        gdist = jnp.sqrt(jnp.sum(to_goal**2, axis=1))
        length = jnp.minimum(gdist, p.max_move)
        theta0 = jnp.arctan2(to_goal[:, 1], to_goal[:, 0])

        n = self.headings
        offs = jnp.concatenate(
            [
                jnp.zeros(1),
                jnp.repeat(jnp.arange(1, n // 2 + 1), 2) * jnp.tile(jnp.array([1, -1]), n // 2),
            ]
        )[:n] * (2.0 * math.pi / n)
        cand = theta0[:, None] + offs[None, :]  # [M,n]
        step_len = jnp.broadcast_to(length[:, None], cand.shape)
        delta = step_len[..., None] * jnp.stack([jnp.cos(cand), jnp.sin(cand)], axis=-1)
        start = jnp.broadcast_to(state.mt_pos[:, None, :], delta.shape)
        end = start + delta
        out = (
            (end[..., 0] < 0)
            | (end[..., 0] > p.width)
            | (end[..., 1] < 0)
            | (end[..., 1] > p.height)
        )
        hit = segment_hits_boxes(start.reshape(-1, 2), delta.reshape(-1, 2), state.obstacles)
        blocked = out | hit.reshape(cand.shape)
        remaining = jnp.sqrt(jnp.sum((goal[:, None, :] - end) ** 2, axis=-1))
        cost = jnp.where(blocked, jnp.inf, remaining + 1.0e-3 * jnp.abs(offs)[None, :])
        best = jnp.argmin(cost, axis=1)
        theta = jnp.take_along_axis(cand, best[:, None], axis=1)[:, 0]
        free_way = jnp.isfinite(jnp.min(cost, axis=1))
        length = jnp.where(idle | ~free_way, 0.0, length)
        return jnp.stack([jnp.mod(theta, 2.0 * math.pi), length], axis=1)


POLICIES: dict[str, type] = {"random": RandomPolicy, "greedy": GreedyPolicy}


def get_policy(name: str) -> Policy:
    """A baseline policy by name ('random' or 'greedy'); ConfigError naming the known ones."""
    try:
        return POLICIES[name]()
    except KeyError:
        raise ConfigError(
            "policy", f"unknown policy {name!r} (known: {', '.join(sorted(POLICIES))})"
        ) from None
