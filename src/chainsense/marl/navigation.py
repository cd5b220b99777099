"""Getting an MT to a goal round the obstacles: the one-slot moves every heuristic shares
(greedy and its weighted forms, the recharge reflex, greedy-local, the planner's legs).

Head for the goal when it is in sight, else for the first corner of the shortest path round the
obstacles (:func:`waypoints`, on the map's roadmap of corners, ``sim.roadmap``), and take the
free heading closest to that among a fan of candidates (:func:`steer`).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import Array

from chainsense.sim.geometry import move_blocked, segment_hits_boxes
from chainsense.sim.params import WorldParams
from chainsense.sim.roadmap import corner_distances, corners, usable
from chainsense.sim.state import WorldState

HEADINGS = 24  # candidate headings tried round an obstacle (greedy and the recharge reflex)


def head_for(
    state: WorldState, goal: Array, idle: Array, p: WorldParams, headings: int = HEADINGS
) -> Array:
    """Physical actions [M,2] that take each MT towards ``goal`` [M,2] round the obstacles in
    its way (``waypoints``, ``steer``); an ``idle`` MT, or one with no free heading, stays."""
    way = waypoints(state.mt_pos, goal, state.obstacles, state.roadmap, p)
    to_way = way - state.mt_pos
    length = jnp.minimum(jnp.sqrt(jnp.sum(to_way**2, axis=1)), p.max_move)
    theta0 = jnp.arctan2(to_way[:, 1], to_way[:, 0])
    theta, free_way = steer(state.mt_pos, theta0, length, way, state.obstacles, p, headings)
    length = jnp.where(idle | ~free_way, 0.0, length)
    return jnp.stack([jnp.mod(theta, 2.0 * math.pi), length], axis=1)


def waypoints(pos: Array, goal: Array, boxes: Array, roadmap: Array, params: WorldParams) -> Array:
    """[M,2] where to head now: the goal if in sight, else the first corner of the shortest path
    to it round the obstacles (``roadmap``: ``WorldState.roadmap``, see ``sim.roadmap``), which
    is the corner i the MT sees that minimises ``|pos - i| + roadmap[i, j] + |j - goal|`` over
    the corners j that see the goal. A corner the MT stands on is skipped (it would not move).
    Where no path is known (the goal walled in), the goal itself. A world reset without its
    roadmap (``world.reset(..., roadmap=False)``) has it computed here, every slot.

    The shortest path makes the next waypoint a potential that falls with every move: a rule
    that looked only at the first obstacle in the way sent MTs into pockets between
    overlapping boxes and back out again, slot after slot (docs/learning.md, fourteenth part).
    """
    if boxes.shape[0] == 0:
        return goal
    if roadmap.shape[0] == 0:  # a world reset without one (a learner's training world)
        roadmap = corner_distances(boxes, params)
    c = corners(boxes)  # [N,2]
    ok = usable(c, boxes, params)
    m, n = pos.shape[0], c.shape[0]
    direct = ~segment_hits_boxes(pos, goal - pos, boxes)
    at_pos = jnp.repeat(pos, n, axis=0)
    at_goal = jnp.repeat(goal, n, axis=0)
    every = jnp.tile(c, (m, 1))
    seen = ~segment_hits_boxes(at_pos, every - at_pos, boxes).reshape(m, n)
    sees_goal = ~segment_hits_boxes(every, at_goal - every, boxes).reshape(m, n)
    first = jnp.sqrt(jnp.sum((c[None] - pos[:, None]) ** 2, axis=-1))
    last = jnp.sqrt(jnp.sum((c[None] - goal[:, None]) ** 2, axis=-1))
    first = jnp.where(seen & ok[None] & (first > 1.0e-2), first, jnp.inf)
    last = jnp.where(sees_goal & ok[None], last, jnp.inf)
    onward = jnp.min(roadmap[None, :, :] + last[:, None, :], axis=-1)  # [M,N]: corner -> goal
    cost = first + onward
    best = jnp.argmin(cost, axis=1)
    found = jnp.isfinite(jnp.min(cost, axis=1))
    return jnp.where((direct | ~found)[:, None], goal, c[best])


def steer(
    pos: Array,
    theta0: Array,
    length: Array,
    way: Array,
    boxes: Array,
    params: WorldParams,
    n: int,
) -> tuple[Array, Array]:
    """Heading closest to ``theta0`` among ``n`` candidates whose move is free; ([M], ok [M])."""
    half = jnp.arange(1, n // 2 + 1)
    offs = jnp.concatenate([jnp.zeros(1), jnp.stack([half, -half], 1).reshape(-1)])[:n]
    offs = offs * (2.0 * math.pi / n)
    cand = theta0[:, None] + offs[None, :]  # [M,n]
    delta = length[:, None, None] * jnp.stack([jnp.cos(cand), jnp.sin(cand)], axis=-1)
    start = jnp.broadcast_to(pos[:, None, :], delta.shape)
    blocked = move_blocked(start.reshape(-1, 2), delta.reshape(-1, 2), boxes, params)
    blocked = blocked.reshape(cand.shape)
    remaining = jnp.sqrt(jnp.sum((way[:, None, :] - start - delta) ** 2, axis=-1))
    cost = jnp.where(blocked, jnp.inf, remaining + 1.0e-3 * jnp.abs(offs)[None, :])
    best = jnp.argmin(cost, axis=1)
    theta = jnp.take_along_axis(cand, best[:, None], axis=1)[:, 0]
    return theta, jnp.isfinite(jnp.min(cost, axis=1))
