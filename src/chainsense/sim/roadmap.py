"""The site's roadmap: shortest paths round the obstacles, between the obstacles' corners.

A map's obstacles never move, so the shortest path between any two of their corners is computed
once per map (at reset) and kept in the state; a policy that steers round obstacles
(``marl.navigation``) then finds the shortest path from an MT to any goal with one look at the
corners it sees and the corners that see the goal. A corner is a box corner pushed ``MARGIN``
outwards (a path touching a box would be refused); corners inside another box or outside the
area are no nodes (``inf`` distances). Two corners are joined where the straight segment
between them touches no box, so a path between corners is a polyline of free segments, and the
shortest polygonal path round boxes bends only at their corners (up to the margin).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from chainsense.sim.geometry import segment_hits_boxes
from chainsense.sim.params import WorldParams

#: how far a roadmap corner lies outside its box's corner (on both axes)
MARGIN = 0.05


def corners(boxes: Array) -> Array:
    """[4C,2] the corners of boxes [C,4], each pushed ``MARGIN`` outwards, box by box."""
    e = MARGIN
    x0, y0, x1, y1 = boxes[:, 0] - e, boxes[:, 1] - e, boxes[:, 2] + e, boxes[:, 3] + e
    four = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    return jnp.stack([jnp.stack(c, axis=1) for c in four], axis=1).reshape(-1, 2)


def usable(points: Array, boxes: Array, params: WorldParams) -> Array:
    """[N] bool: the point lies strictly inside the area and in or on no box."""
    x, y = points[:, 0:1], points[:, 1:2]
    inside = (x >= boxes[:, 0]) & (x <= boxes[:, 2]) & (y >= boxes[:, 1]) & (y <= boxes[:, 3])
    in_area = (x[:, 0] > 0) & (x[:, 0] < params.width) & (y[:, 0] > 0) & (y[:, 0] < params.height)
    return in_area & ~jnp.any(inside, axis=1)


def corner_distances(boxes: Array, params: WorldParams) -> Array:
    """[4C,4C] shortest path lengths between the corners (:func:`corners`) round ``boxes``;
    ``inf`` between corners no free path joins and at unusable corners, 0 on the diagonal of
    usable ones. Visibility is one row of segments at a time (the rows are [4C, C] tests, not
    [16C^2, C] at once), then Floyd-Warshall."""
    if boxes.shape[0] == 0:
        return jnp.zeros((0, 0), jnp.float32)
    c = corners(boxes)
    n = c.shape[0]
    ok = usable(c, boxes, params)

    def row(i: Array) -> Array:
        start = jnp.broadcast_to(c[i], c.shape)
        return ~segment_hits_boxes(start, c - start, boxes)

    free = jax.lax.map(row, jnp.arange(n))  # [N,N]
    length = jnp.sqrt(jnp.sum((c[:, None, :] - c[None, :, :]) ** 2, axis=-1))
    joined = free & ok[:, None] & ok[None, :]
    dist = jnp.where(joined, length, jnp.inf)
    dist = jnp.where(jnp.eye(n, dtype=bool) & ok[:, None], 0.0, dist)

    def through(k: Array, d: Array) -> Array:
        return jnp.minimum(d, d[:, k, None] + d[None, k, :])

    return jax.lax.fori_loop(0, n, through, dist)
