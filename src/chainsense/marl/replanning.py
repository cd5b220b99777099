"""Episodes of a ``PlanningPolicy``: plan on the host, follow the plan in jitted chunks.

A planner (OR-Tools, see ``marl.planner``) cannot run inside ``jit``, so its episode alternates:
``plan(state, params)`` on the host returns a jit-able follower policy, then one jitted
``lax.while_loop`` plays it for up to ``replan_every`` slots, stopping early when the episode
ends or ``follower.finished(state, params)`` says a route is done (then the host replans at
once; every chunk plays at least one slot). Slot keys are the same as in the fully jitted
rollout (``fold_in(key, t + 1)`` split into act / step keys), so a follower that needs no
replanning would play the same episode there. Recorded traces are padded to ``num_slots``
slots with the final state, as a done world's fixed-length scan would produce them.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from chainsense.marl.policies import FollowerPolicy, PlanningPolicy
from chainsense.sim.maps import WorldMap
from chainsense.sim.metrics import episode_metrics
from chainsense.sim.params import WorldParams
from chainsense.sim.state import WorldState
from chainsense.sim.world import episode_start, step


@partial(jax.jit, static_argnames=("params", "length", "record"))
def _chunk(
    follower: FollowerPolicy,
    state: WorldState,
    obs: Array,
    key: Array,
    params: WorldParams,
    length: int,
    record: bool,
) -> tuple[WorldState, Array, Array, Any]:
    m, k = params.num_mts, params.num_pois
    bufs = (
        (
            jnp.zeros((length, m, 2), jnp.float32),
            jnp.zeros((length, m), jnp.float32),
            jnp.zeros((length, m, k), jnp.float32),
            jnp.zeros((length, k), jnp.float32),
        )
        if record
        else ()
    )

    def cond(c: tuple[Array, WorldState, Array, Any]) -> Array:
        i, s, _, _ = c
        go_on = (i == 0) | ~follower.finished(s, params)
        return (i < length) & ~s.done & go_on

    def body(c: tuple[Array, WorldState, Array, Any]) -> tuple[Array, WorldState, Array, Any]:
        i, s, o, b = c
        ka, ks = jax.random.split(jax.random.fold_in(key, s.t + 1))
        actions = follower.act(ka, o, s, params)
        s2, o2, r, _, info = step(ks, s, actions, params)
        if record:
            new = (s2.mt_pos, r, info.collected_per_poi, s2.poi_data)
            b = tuple(buf.at[i].set(x) for buf, x in zip(b, new, strict=True))
        return i + 1, s2, o2, b

    steps, final, obs2, bufs = jax.lax.while_loop(cond, body, (jnp.int32(0), state, obs, bufs))
    return final, obs2, steps, bufs


_metrics = jax.jit(episode_metrics, static_argnames=("params",))


def planned_episode(
    policy: PlanningPolicy,
    key: Array,
    params: WorldParams,
    record: bool,
    world_map: WorldMap | None = None,
) -> tuple[WorldState, dict[str, Array], Any]:
    """(final state, metrics, trace) like the jitted rollout; trace = (positions [T+1,M,2],
    rewards [T,M], collected per PoI [T,M,K], remaining data [T+1,K]) when ``record``."""
    state, obs = episode_start(key, params, world_map)
    length = max(1, min(int(policy.replan_every), params.num_slots))
    parts: list[list[np.ndarray]] = [[], [], [], []]
    initial = state
    while not bool(state.done):
        follower = policy.plan(state, params)
        state, obs, steps, bufs = _chunk(follower, state, obs, key, params, length, record)
        n = int(steps)
        if record:
            for part, buf in zip(parts, bufs, strict=True):
                part.append(np.asarray(buf[:n]))
    trace = None
    if record:
        pos, rew, per_poi, data = (np.concatenate(p) for p in parts)
        pad = params.num_slots - len(pos)
        pos = np.concatenate([np.asarray(initial.mt_pos)[None], pos, np.repeat(pos[-1:], pad, 0)])
        rew = np.concatenate([rew, np.zeros((pad, *rew.shape[1:]), rew.dtype)])
        per_poi = np.concatenate([per_poi, np.zeros((pad, *per_poi.shape[1:]), per_poi.dtype)])
        data0 = np.asarray(initial.poi_data)[None]
        data = np.concatenate([data0, data, np.repeat(data[-1:], pad, 0)])
        trace = (pos, rew, per_poi, data)
    return state, _metrics(state, params), trace
