"""Obstacle-aware shortest paths for the planner: a visibility graph over inflated box corners.

Host-side NumPy (the planner runs between jitted chunks, see ``marl.replanning``). Every box is
inflated by ``margin``; its four inflated corners that lie inside the area and outside the other
boxes are the graph's vertices. Two points see each other when the straight segment between
them misses every box inflated by ``margin / 2`` (so a path that runs along an inflated edge keeps
``margin / 2`` clear of the real box, well above float32 noise); a point that is itself that
close to a box (an MT pressed against a wall) is tested against the real boxes instead. The
shortest path between two points is the direct segment when they see each other, else
point -> corner -> ... -> corner -> point, with corner-to-corner distances from Floyd-Warshall.
The area is convex, so a segment between two points inside it never leaves it.
"""

from __future__ import annotations

import numpy as np

_ROW_BLOCK = 32  # rows of the [P, P, corners] reduction computed at once (bounds memory)


def segments_hit_boxes(a: np.ndarray, b: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """[N] bool: segment a[n] -> b[n] touches any closed box [C,4] (NumPy Liang-Barsky test,
    the same rule as ``sim.world.segment_hits_boxes``)."""
    if boxes.shape[0] == 0 or a.shape[0] == 0:
        return np.zeros(a.shape[0], bool)
    p, d = a[:, None, :], (b - a)[:, None, :]
    lo, hi = boxes[None, :, 0:2], boxes[None, :, 2:4]
    flat = np.abs(d) < 1.0e-12
    safe = np.where(flat, 1.0, d)
    ta, tb = (lo - p) / safe, (hi - p) / safe
    inside = (p >= lo) & (p <= hi)
    t0 = np.where(flat, np.where(inside, -np.inf, np.inf), np.minimum(ta, tb))
    t1 = np.where(flat, np.where(inside, np.inf, -np.inf), np.maximum(ta, tb))
    tmin = np.maximum(np.maximum(t0[..., 0], t0[..., 1]), 0.0)
    tmax = np.minimum(np.minimum(t1[..., 0], t1[..., 1]), 1.0)
    return np.any(tmin <= tmax, axis=1)


def inside_boxes(points: np.ndarray, boxes: np.ndarray, grow: float = 0.0) -> np.ndarray:
    """[P] bool: point inside (or on) any box grown by ``grow`` on every side."""
    if boxes.shape[0] == 0 or points.shape[0] == 0:
        return np.zeros(points.shape[0], bool)
    x, y = points[:, None, 0], points[:, None, 1]
    return np.any(
        (x >= boxes[:, 0] - grow)
        & (x <= boxes[:, 2] + grow)
        & (y >= boxes[:, 1] - grow)
        & (y <= boxes[:, 3] + grow),
        axis=1,
    )


def _grow(boxes: np.ndarray, by: float) -> np.ndarray:
    return boxes + np.array([-by, -by, by, by])


class Roadmap:
    """Visibility graph of one map: shortest obstacle-free paths between arbitrary points."""

    def __init__(
        self, boxes: np.ndarray, width: float, height: float, margin: float = 0.05
    ) -> None:
        self.boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        self.margin = margin
        self.clear = _grow(self.boxes, margin / 2)
        g = _grow(self.boxes, margin)
        c = np.stack([g[:, [0, 1]], g[:, [2, 1]], g[:, [2, 3]], g[:, [0, 3]]], axis=1)
        c = c.reshape(-1, 2)
        ok = (c[:, 0] >= 0) & (c[:, 0] <= width) & (c[:, 1] >= 0) & (c[:, 1] <= height)
        ok &= ~inside_boxes(c, self.clear)
        self.corners = c[ok]
        n = len(self.corners)
        d = self._direct(self.corners, self.corners)
        np.fill_diagonal(d, 0.0)
        hops = np.where(np.isfinite(d), 1, 0).astype(np.int64)
        np.fill_diagonal(hops, 0)
        nxt = np.tile(np.arange(n), (n, 1))  # next corner on the way from i to j
        for k in range(n):
            via = d[:, k : k + 1] + d[k : k + 1, :]
            better = via < d - 1.0e-12
            d = np.where(better, via, d)
            hops = np.where(better, hops[:, k : k + 1] + hops[k : k + 1, :], hops)
            nxt = np.where(better, nxt[:, k : k + 1], nxt)
        self.corner_dist, self.corner_hops, self._next = d, hops, nxt

    def _direct(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """[A,B] straight-line length where a sees b, +inf where not."""
        aa = np.repeat(a, len(b), axis=0)
        bb = np.tile(b, (len(a), 1))
        blocked = segments_hit_boxes(aa, bb, self.clear)
        tight = inside_boxes(aa, self.clear) | inside_boxes(bb, self.clear)
        if np.any(tight):
            blocked[tight] = segments_hit_boxes(aa[tight], bb[tight], self.boxes)
        length = np.linalg.norm(aa - bb, axis=1)
        return np.where(blocked, np.inf, length).reshape(len(a), len(b))

    def distances(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shortest path length [P,P] (+inf: no path) and corners on it [P,P] between points.

        Keeps what :meth:`path` needs to rebuild any of these paths.
        """
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        self.points = pts
        direct = self._direct(pts, pts)
        np.fill_diagonal(direct, 0.0)
        n = len(self.corners)
        if n == 0:
            self._first = self._last = np.zeros((len(pts), len(pts)), np.int64)
            self._via = np.zeros((len(pts), len(pts)), bool)
            return direct, np.zeros(direct.shape, np.int64)
        to_c = self._direct(pts, self.corners)  # [P,n]
        reach = to_c[:, :, None] + self.corner_dist[None, :, :]  # [P,n(c1),n(c2)]
        first = np.argmin(reach, axis=1)  # [P,n]: best first corner to reach corner c2
        best = np.take_along_axis(reach, first[:, None, :], axis=1)[:, 0, :]  # [P,n]
        last = np.zeros((len(pts), len(pts)), np.int64)
        via = np.full((len(pts), len(pts)), np.inf)
        for r in range(0, len(pts), _ROW_BLOCK):
            tot = best[r : r + _ROW_BLOCK, None, :] + to_c[None, :, :]  # [rows,P,n]
            last[r : r + _ROW_BLOCK] = np.argmin(tot, axis=2)
            via[r : r + _ROW_BLOCK] = np.min(tot, axis=2)
        use_via = via < direct - 1.0e-9
        rows = np.arange(len(pts))[:, None]
        c1 = first[rows, last]
        corners = np.where(use_via, self.corner_hops[c1, last] + 1, 0)
        self._first, self._last, self._via = c1, last, use_via
        return np.where(use_via, via, direct), corners

    def path(self, i: int, j: int) -> np.ndarray:
        """Vertices [V,2] of the shortest path from points[i] to points[j] (without its start;
        the last row is points[j]); call :meth:`distances` first."""
        if not self._via[i, j]:
            return self.points[j][None, :]
        c, end = int(self._first[i, j]), int(self._last[i, j])
        chain = [c]
        while c != end:
            c = int(self._next[c, end])
            chain.append(c)
        return np.concatenate([self.corners[chain], self.points[j][None, :]])
