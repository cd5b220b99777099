"""Axis-aligned box covers of polygons: what a real obstacle of any shape becomes in the world.

The world's obstacles are closed axis-aligned boxes, so a site's polygons are replaced by boxes
that *cover* them: an MT can never pass through any part of a real obstacle, at the price of a
little extra blocked area near slanted or curved edges.

:func:`cover_with_boxes` lays a grid over the polygon's bounding box whose lines include the
coordinates of the polygon's axis-parallel edges, subdivided so that no cell side exceeds
``tolerance / sqrt(2)`` (a cell's diagonal is then at most ``tolerance``). Every cell whose
interior meets the polygon's interior is kept; kept cells are merged greedily into maximal
rectangles (extend right along the row, then down while the whole span stays kept). Hence:

* the boxes cover the polygon (every point of it lies in a kept cell or on its edge);
* every point of the boxes lies within ``tolerance`` of the polygon (Hausdorff distance);
* polygons whose edges are all axis-aligned (rectangles, L-shapes, courtyards) are covered
  exactly, with no added area, because their edges lie on grid lines; their grid is not
  subdivided at all (its cells are already exact), so any tolerance costs them nothing.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from chainsense.errors import ConfigError

MAX_CELLS = 4_000_000
"""Most grid cells examined for one polygon (bounds time and memory on hostile input)."""


def _grid_lines(lo: float, hi: float, coords: np.ndarray, step: float) -> np.ndarray:
    """Sorted grid lines from ``lo`` to ``hi``: the vertex coordinates, gaps cut below ``step``."""
    base = np.unique(np.clip(np.concatenate([[lo, hi], coords]), lo, hi))
    keep = np.concatenate([[True], np.diff(base) > 1.0e-9 * max(1.0, abs(hi), abs(lo))])
    base = base[keep]
    base[-1] = hi  # a dropped near-duplicate must not pull the last line inside the polygon
    parts = [base[:1]]
    for a, b in itertools.pairwise(base):
        n = max(1, math.ceil((b - a) / step - 1.0e-9))
        parts.append(np.linspace(a, b, n + 1)[1:])
    return np.concatenate(parts)


def _axis_edge_coords(part: BaseGeometry) -> tuple[np.ndarray, np.ndarray, bool]:
    """x of the vertical edges, y of the horizontal edges of every ring of ``part``, and
    whether every edge is one of them (a rectilinear polygon)."""
    xs, ys, rectilinear = [], [], True
    for ring in [part.exterior, *part.interiors]:
        c = np.asarray(ring.coords)
        a, b = c[:-1], c[1:]
        vertical, horizontal = a[:, 0] == b[:, 0], a[:, 1] == b[:, 1]
        rectilinear &= bool(np.all(vertical | horizontal))
        xs.append(a[vertical, 0])
        ys.append(a[horizontal, 1])
    return np.concatenate(xs), np.concatenate(ys), rectilinear


def _merge(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Greedy maximal rectangles (row0, col0, row1, col1; ends exclusive) covering ``mask``."""
    used = np.zeros_like(mask)
    rows, cols = mask.shape
    out = []
    for i in range(rows):
        j = 0
        while j < cols:
            if not mask[i, j] or used[i, j]:
                j += 1
                continue
            j1 = j
            while j1 < cols and mask[i, j1] and not used[i, j1]:
                j1 += 1
            i1 = i + 1
            while i1 < rows and mask[i1, j:j1].all() and not used[i1, j:j1].any():
                i1 += 1
            used[i:i1, j:j1] = True
            out.append((i, j, i1, j1))
            j = j1
    return out


def cover_with_boxes(geom: BaseGeometry, tolerance: float, field: str) -> np.ndarray:
    """Boxes [N,4] (x0, y0, x1, y1) covering the (Multi)Polygon ``geom`` within ``tolerance``.

    See the module docstring for the guarantees. ConfigError naming ``field`` when the grid
    would exceed :data:`MAX_CELLS` cells (a tolerance far finer than the obstacle's size).
    """
    if not (math.isfinite(tolerance) and tolerance > 0):
        raise ConfigError("tolerance", f"must be a finite number > 0, got {tolerance!r}")
    step = tolerance / math.sqrt(2.0)
    parts = list(getattr(geom, "geoms", [geom]))
    found = []
    for part in parts:
        if part.is_empty or part.area <= 0:
            continue
        x0, y0, x1, y1 = part.bounds
        edge_x, edge_y, rectilinear = _axis_edge_coords(part)
        cut = math.inf if rectilinear else step
        xs = _grid_lines(x0, x1, edge_x, cut)
        ys = _grid_lines(y0, y1, edge_y, cut)
        cells = (len(xs) - 1) * (len(ys) - 1)
        if cells > MAX_CELLS:
            raise ConfigError(
                field,
                f"decomposing it at tolerance {tolerance:g} needs {cells} grid cells "
                f"(at most {MAX_CELLS}); raise the tolerance or simplify the shape",
            )
        gx0, gy0 = np.meshgrid(xs[:-1], ys[:-1])
        gx1, gy1 = np.meshgrid(xs[1:], ys[1:])
        grid = shapely.box(gx0.ravel(), gy0.ravel(), gx1.ravel(), gy1.ravel())
        shapely.prepare(part)
        # interiors meet: intersects, and not only along the boundary
        mask = shapely.intersects(part, grid) & ~shapely.touches(part, grid)
        mask = mask.reshape(len(ys) - 1, len(xs) - 1)
        for i0, j0, i1, j1 in _merge(mask):
            found.append((xs[j0], ys[i0], xs[j1], ys[i1]))
    return np.asarray(found, dtype=np.float64).reshape(-1, 4)


def added_area(geom: BaseGeometry, boxes: np.ndarray) -> float:
    """Area the boxes block beyond the polygon itself (>= 0 up to rounding)."""
    if len(boxes) == 0:
        return 0.0
    union = shapely.union_all(shapely.box(boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]))
    return float(union.area - geom.area)


def points_in_boxes(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """[N,C] bool: point n lies in (or on the edge of) closed box c, as the world tests it (numpy
    or jax arrays alike: ``marl.coverage`` calls it inside ``jit``)."""
    x, y = points[:, 0:1], points[:, 1:2]
    hit = (x >= boxes[None, :, 0]) & (x <= boxes[None, :, 2])
    return hit & (y >= boxes[None, :, 1]) & (y <= boxes[None, :, 3])
