"""Geometry of moves: segments against closed boxes and the area, the one collision rule.

:func:`move_blocked` is the single "leaves the area or touches an obstacle" test: ``step``
applies it, and the baselines and the learners' proximity sensor ask it before they move.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from chainsense.sim.params import WorldParams

_F = jnp.float32


def segment_box_entry(start: Array, delta: Array, boxes: Array) -> Array:
    """[N,C] entry parameter in [0,1] of segment n into closed box c, +inf where it misses.

    Liang-Barsky slab test of start + s * delta, s in [0, 1]; touching an edge counts as a hit.
    """
    p = start[:, None, :]  # [N,1,2]
    d = delta[:, None, :]
    lo = boxes[None, :, 0:2]  # [1,C,2]
    hi = boxes[None, :, 2:4]
    flat = jnp.abs(d) < 1.0e-12
    safe = jnp.where(flat, 1.0, d)
    ta = (lo - p) / safe
    tb = (hi - p) / safe
    inside = (p >= lo) & (p <= hi)
    t0 = jnp.where(flat, jnp.where(inside, -jnp.inf, jnp.inf), jnp.minimum(ta, tb))
    t1 = jnp.where(flat, jnp.where(inside, jnp.inf, -jnp.inf), jnp.maximum(ta, tb))
    tmin = jnp.maximum(jnp.maximum(t0[..., 0], t0[..., 1]), 0.0)
    tmax = jnp.minimum(jnp.minimum(t1[..., 0], t1[..., 1]), 1.0)
    return jnp.where(tmin <= tmax, tmin, jnp.inf)


def segment_hits_boxes(start: Array, delta: Array, boxes: Array) -> Array:
    """[N] bool: segment start -> start + delta touches any closed box [C,4]."""
    if boxes.shape[0] == 0:
        return jnp.zeros(start.shape[:1], bool)
    return jnp.any(jnp.isfinite(segment_box_entry(start, delta, boxes)), axis=1)


def _area_slack(p: WorldParams) -> float:
    """How far (about one float32 ulp of the larger side) a move may overshoot the area's edge
    and still count as ending on it: float32 ``cos(pi / 2)`` is -4.4e-8, so a move along x = 0
    ends at x = -4.4e-8 while the same move along x = width rounds back onto the edge."""
    return max(p.width, p.height) * 2.0**-23


def move_end(start: Array, delta: Array, p: WorldParams) -> Array:
    """[N,2] where the move start -> start + delta ends, clipped into the area (see
    :func:`move_blocked` for when such a move is refused)."""
    size = jnp.array([p.width, p.height], _F)
    return jnp.clip(start + delta, 0.0, size)


def move_blocked(start: Array, delta: Array, boxes: Array, p: WorldParams) -> Array:
    """[N] bool: the straight move start -> start + delta is refused by :func:`step` (a collision).

    Refused when it leaves the area [0, width] x [0, height] (by more than float32 rounding, alike
    at all four edges; the end is then clipped onto the edge), when the segment touches an
    obstacle, or when the end point the MT would be stored at (the rounded, clipped float32 sum,
    :func:`move_end`) lies in or on an obstacle: an MT on a closed box could never move again.
    """
    raw = start + delta
    slack = _area_slack(p)
    outside = (raw[:, 0] < -slack) | (raw[:, 0] > p.width + slack)
    outside |= (raw[:, 1] < -slack) | (raw[:, 1] > p.height + slack)
    if boxes.shape[0] == 0:
        return outside
    end = move_end(start, delta, p)
    x, y = end[:, 0:1], end[:, 1:2]
    on_box = (x >= boxes[None, :, 0]) & (x <= boxes[None, :, 2])
    on_box &= (y >= boxes[None, :, 1]) & (y <= boxes[None, :, 3])
    return outside | jnp.any(on_box, axis=1) | segment_hits_boxes(start, delta, boxes)
