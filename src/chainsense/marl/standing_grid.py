"""Where within one move to stand: a fine lattice of points round each MT, besides the PoIs.

Greedy's rule (``policies.weighted_targets``) offers an MT the PoIs themselves as places to
stand, each worth what a sensing disk centred on it would collect. Where data keeps arriving
(`dynamic`) the best place to stand next is seldom a PoI: a disk between three PoIs senses all
three, and where the buffers hold a little everywhere the best next stand is the point within
one move whose disk holds the most. With ``ScoreTerms.grid = s > 0`` the rule also offers,
round every MT, the points of a square lattice of spacing ``s`` (aligned to the area's origin)
that lie within one move and two spacings of it, inside the area and outside every obstacle,
each scored by the same rule on the disk round it (docs/learning.md, nineteenth part). Far
targets stay PoIs: the lattice only chooses the next stand.

The sums are dense, [M x points, PoIs] per world and slot: 2 x 400 points over 256 PoIs on
`dynamic` at spacing 0.125 (``poi_clusters.sums_at``), about what greedy's own [K, K] sums
cost. The lattice is bounded (:data:`MAX_GRID_POINTS` per MT) rather than binned like
``poi_clusters``.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax import Array

from chainsense.config import is_number
from chainsense.sim.boxes import points_in_boxes
from chainsense.sim.params import WorldParams

#: the most lattice points offered round one MT (400 at spacing 0.125 with one unit's move)
MAX_GRID_POINTS = 4_096
#: the finest and the coarsest spacing accepted, in units of length (the coarsest is the
#: largest area side a world may have)
MIN_SPACING = 0.01
MAX_SPACING = 1.0e4


def points_per_side(p: WorldParams, spacing: float) -> int:
    """Lattice points on each side of an MT along one axis: one move and two spacings' worth."""
    return math.ceil(p.max_move / spacing) + 2


def offsets(p: WorldParams, spacing: float) -> np.ndarray:
    """[P,2] the lattice round an MT, as offsets from the lattice node nearest to it: cell
    centres ``(i + 0.5) * spacing`` for ``i`` in ``[-n, n)`` along each axis (a static array)."""
    n = points_per_side(p, spacing)
    side = (np.arange(-n, n) + 0.5) * spacing
    gx, gy = np.meshgrid(side, side, indexing="xy")
    return np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)


def standing_points(
    mt_pos: Array, obstacles: Array, p: WorldParams, spacing: float
) -> tuple[Array, Array]:
    """[M*P,2] the lattice points round every MT and [M*P] whether each may be stood on (inside
    the area, outside every obstacle). The lattice is the area's own (cell centres at
    ``(i + 0.5) * spacing``), so the points do not drift with the MT."""
    node = jnp.round(mt_pos / spacing) * spacing  # [M,2], a lattice node
    points = (node[:, None, :] + jnp.asarray(offsets(p, spacing))[None]).reshape(-1, 2)
    inside = (
        (points[:, 0] >= 0.0)
        & (points[:, 0] <= p.width)
        & (points[:, 1] >= 0.0)
        & (points[:, 1] <= p.height)
    )
    if obstacles.shape[0]:
        inside &= ~jnp.any(points_in_boxes(points, obstacles), axis=1)
    return points, inside


def spacing_problem(spacing: object) -> str | None:
    """Why ``spacing`` is no spacing in any world (None when it is one): 0 (no lattice) or a
    number (not a bool) in [:data:`MIN_SPACING`, :data:`MAX_SPACING`]."""
    if is_number(spacing) and (spacing == 0.0 or MIN_SPACING <= spacing <= MAX_SPACING):  # type: ignore[operator]
        return None
    return (
        f"must be 0 (the PoIs only) or a spacing in [{MIN_SPACING:g}, {MAX_SPACING:g}], "
        f"got {spacing!r}"
    )


def grid_problem(p: WorldParams, spacing: float) -> str | None:
    """Why ``spacing`` is no lattice for worlds ``p`` (None when it is one): 0 (no lattice) or a
    spacing (:func:`spacing_problem`) giving at most :data:`MAX_GRID_POINTS` points round an
    MT."""
    if spacing == 0.0:
        return None
    if problem := spacing_problem(spacing):
        return problem
    count = (2 * points_per_side(p, spacing)) ** 2
    if count > MAX_GRID_POINTS:
        return (
            f"spacing {spacing:g} gives {count} points within one move "
            f"(max_move {p.max_move:g}) of an MT, over the {MAX_GRID_POINTS} allowed: take a "
            "coarser one"
        )
    return None
