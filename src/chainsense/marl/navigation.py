"""Getting an MT to a goal round the obstacles: the one-slot moves every heuristic shares
(greedy and its weighted forms, the recharge reflex, greedy-local, the planner's legs).

Without a map search: head for the goal when it is in sight, else for the best corner of the
first obstacle in the way (:func:`waypoints`), and take the free heading closest to that among a
fan of candidates (:func:`steer`).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import Array

from chainsense.sim.geometry import move_blocked, segment_box_entry, segment_hits_boxes
from chainsense.sim.params import WorldParams
from chainsense.sim.state import WorldState

HEADINGS = 24  # candidate headings tried round an obstacle (greedy and the recharge reflex)
_CORNER_MARGIN = 0.05


def head_for(
    state: WorldState, goal: Array, idle: Array, p: WorldParams, headings: int = HEADINGS
) -> Array:
    """Physical actions [M,2] that take each MT towards ``goal`` [M,2] round the obstacles in
    its way (``waypoints``, ``steer``); an ``idle`` MT, or one with no free heading, stays."""
    way = waypoints(state.mt_pos, goal, state.obstacles, p)
    to_way = way - state.mt_pos
    length = jnp.minimum(jnp.sqrt(jnp.sum(to_way**2, axis=1)), p.max_move)
    theta0 = jnp.arctan2(to_way[:, 1], to_way[:, 0])
    theta, free_way = steer(state.mt_pos, theta0, length, way, state.obstacles, p, headings)
    length = jnp.where(idle | ~free_way, 0.0, length)
    return jnp.stack([jnp.mod(theta, 2.0 * math.pi), length], axis=1)


def waypoints(pos: Array, goal: Array, boxes: Array, params: WorldParams) -> Array:
    """[M,2] where to head now: the goal if in sight, else the best corner of the first obstacle.

    Corners are pushed ``_CORNER_MARGIN`` outwards; a corner is usable when the MT sees it, it is
    inside the area and not where the MT already is. Cost = path length via the corner, plus the
    corner-to-goal leg again if the goal is not visible from the corner (one more corner needed).
    """
    if boxes.shape[0] == 0:
        return goal
    m = pos.shape[0]
    entry = segment_box_entry(pos, goal - pos, boxes)  # [M,C]
    direct = ~jnp.any(jnp.isfinite(entry), axis=1)
    first = boxes[jnp.argmin(entry, axis=1)]  # [M,4]
    e = _CORNER_MARGIN
    x0, y0, x1, y1 = first[:, 0] - e, first[:, 1] - e, first[:, 2] + e, first[:, 3] + e
    corners = jnp.stack(
        [
            jnp.stack([x0, y0], 1),
            jnp.stack([x1, y0], 1),
            jnp.stack([x1, y1], 1),
            jnp.stack([x0, y1], 1),
        ],
        axis=1,
    )  # [M,4,2]
    flat_c = corners.reshape(-1, 2)
    src = jnp.repeat(pos, 4, axis=0)
    dst = jnp.repeat(goal, 4, axis=0)
    seen = ~move_blocked(src, flat_c - src, boxes, params).reshape(m, 4)
    onward = ~segment_hits_boxes(flat_c, dst - flat_c, boxes).reshape(m, 4)
    d1 = jnp.sqrt(jnp.sum((corners - pos[:, None]) ** 2, axis=-1))
    d2 = jnp.sqrt(jnp.sum((corners - goal[:, None]) ** 2, axis=-1))
    usable = seen & (d1 > 1.0e-2)
    cost = jnp.where(usable, d1 + d2 + jnp.where(onward, 0.0, d2), jnp.inf)
    best = jnp.argmin(cost, axis=1)
    corner = jnp.take_along_axis(corners, best[:, None, None], axis=1)[:, 0]
    ok = jnp.isfinite(jnp.min(cost, axis=1))
    return jnp.where((direct | ~ok)[:, None], goal, corner)


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
