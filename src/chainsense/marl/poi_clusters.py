"""Per-PoI sums over the PoIs within sensing range, by a cell list instead of a K x K matrix.

Greedy's target score needs, for every PoI k, the data of all PoIs within ``sensing_range`` of
it (what an MT parked on k would harvest). The dense way builds the K x K neighbour matrix every
slot: 1 M entries on ``large`` (1,024 PoIs), half a millisecond of CPU per world and slot, and
1 GB for 256 worlds at once. Here the PoIs are binned into square cells no smaller than the
range, so every neighbour of k lies in the 3 x 3 cells round k's cell, and only those cells'
PoIs are tested: ``3 * RUN_CAP`` candidates per PoI instead of K (the 3 cells of a row are one
run of the PoIs sorted by cell).

A row of 3 cells holds at most ``RUN_CAP`` candidates; a map denser than that somewhere falls
back to the dense sum (``lax.cond``), so the result is exact on every map. For a batch of
worlds the choice is made once, for all of them (a ``custom_vmap`` rule): under a plain
``vmap`` the ``cond`` would become a select and run both branches for every world. Below
``CELLS_FROM_POIS`` PoIs :func:`cluster_sums` keeps the dense matrix, which is cheaper there.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array

from chainsense.sim.params import WorldParams

#: below this many PoIs the dense matrix is cheaper (MAPPO's training loop, 2 CPU cores:
#: ``benchmarks/bench_poi_clusters.py --train``)
CELLS_FROM_POIS = 512
#: PoIs tested per row of 3 cells round a PoI's cell (3 runs per PoI); about 3.6 on average
#: on every preset
RUN_CAP = 16


def _grid(extent: float, reach: float) -> tuple[int, float]:
    """Cells per side and their size (>= ``reach``) over ``extent``."""
    n = max(1, math.floor(extent / reach))
    return n, extent / n


def sums_at(points: Array, poi_pos: Array, values: Array, reach: float) -> Array:
    """[G, c]: for every one of ``points`` [G,2] the sum of ``values`` [K, c] over the PoIs
    within ``reach`` (dense: a [G, K] matrix)."""
    d = points[:, None, :] - poi_pos[None, :, :]
    near = ((d[..., 0] ** 2 + d[..., 1] ** 2) <= reach**2).astype(values.dtype)
    return near @ values


def dense_sums(poi_pos: Array, values: Array, reach: float) -> Array:
    """[K, c]: for every PoI the sum of ``values`` [K, c] over the PoIs within ``reach``."""
    return sums_at(poi_pos, poi_pos, values, reach)


def cluster_sums(
    poi_pos: Array, values: Array, params: WorldParams, reach: float | None = None
) -> Array:
    """[K, c]: for every PoI the sum of ``values`` [K, c] over the PoIs within ``reach``
    (``params.sensing_range`` unless given) of it (itself included): :func:`cell_sums` from
    ``CELLS_FROM_POIS`` PoIs on, :func:`dense_sums` below (where the dense matrix is cheaper)."""
    reach = params.sensing_range if reach is None else reach
    if poi_pos.shape[-2] < CELLS_FROM_POIS:
        return dense_sums(poi_pos, values, reach)
    return cell_sums(poi_pos, values, params, reach)


def cell_sums(
    poi_pos: Array, values: Array, params: WorldParams, reach: float | None = None
) -> Array:
    """:func:`dense_sums` by the cell list (see the module docstring), within ``reach``
    (``params.sensing_range`` unless given).

    Under ``vmap`` (batched worlds) the choice between the cell list and the dense fallback is
    made once for the whole batch, so the batch stays vectorised and the ``cond`` is a real one.
    """
    reach = params.sensing_range if reach is None else reach
    return _batched(float(params.width), float(params.height), float(reach))(poi_pos, values)


@functools.cache
def _batched(width: float, height: float, reach: float) -> Any:
    @jax.custom_batching.custom_vmap
    def sums(poi_pos: Array, values: Array) -> Array:
        return _choose(_runs(poi_pos, width, height, reach), poi_pos, values, reach)

    @sums.def_vmap
    def _rule(
        axis_size: int, in_batched: list[bool], poi_pos: Array, values: Array
    ) -> tuple[Array, bool]:
        if not in_batched[0]:
            poi_pos = jnp.broadcast_to(poi_pos, (axis_size, *poi_pos.shape))
        if not in_batched[1]:
            values = jnp.broadcast_to(values, (axis_size, *values.shape))
        runs = jax.vmap(lambda p: _runs(p, width, height, reach))(poi_pos)
        fits = jnp.max(runs[2]) <= RUN_CAP
        sparse = jax.vmap(_sparse, in_axes=(0, 0, 0, None))
        out = jax.lax.cond(
            fits,
            lambda: sparse(runs, poi_pos, values, reach),
            lambda: _dense_one_by_one(poi_pos, values, reach),
        )
        return out, True

    return sums


def _dense_one_by_one(poi_pos: Array, values: Array, reach: float) -> Array:
    """:func:`dense_sums` of a batch of worlds, one world after another: the fallback's K x K
    matrix then exists for one world at a time. XLA reserves a ``cond``'s memory for both
    branches whether or not they run, so a vmapped fallback would hold the matrix for every
    world in every compiled loop (1 GB for 256 worlds of 1,024 PoIs) only for maps that are
    rarely that dense."""
    return jax.lax.map(lambda pv: dense_sums(pv[0], pv[1], reach), (poi_pos, values))


def _choose(runs: tuple[Array, Array, Array], poi_pos: Array, values: Array, reach: float) -> Array:
    return jax.lax.cond(
        jnp.max(runs[2]) <= RUN_CAP,
        lambda: _sparse(runs, poi_pos, values, reach),
        lambda: dense_sums(poi_pos, values, reach),
    )


def _runs(poi_pos: Array, width: float, height: float, reach: float) -> tuple[Array, Array, Array]:
    """The PoIs in cell order [K], and for every PoI and row of 3 cells round its cell where
    that row's run of PoIs starts in that order [K,3] and how long it is [K,3]."""
    k = poi_pos.shape[0]
    nx, wx = _grid(width, reach)
    ny, wy = _grid(height, reach)
    cx = jnp.clip(jnp.floor(poi_pos[:, 0] / wx).astype(jnp.int32), 0, nx - 1)
    cy = jnp.clip(jnp.floor(poi_pos[:, 1] / wy).astype(jnp.int32), 0, ny - 1)
    cell = cy * nx + cx
    if nx * ny * k < 2**31:  # one sort of unique int32 keys: ~5x faster than argsort on a CPU
        key = jnp.sort(cell * k + jnp.arange(k, dtype=jnp.int32))
        order, sorted_cell = key % k, key // k
    else:
        order = jnp.argsort(cell)
        sorted_cell = cell[order]
    ids = jnp.arange(nx * ny, dtype=jnp.int32)
    first = jnp.searchsorted(sorted_cell, ids, side="left")
    count = jnp.searchsorted(sorted_cell, ids, side="right") - first
    # the 3 cells of a row round a PoI's cell are consecutive in cell order: one run each
    row = cy[:, None] + jnp.array([-1, 0, 1], jnp.int32)[None, :]  # [K,3]
    row_ok = (row >= 0) & (row < ny)
    row = jnp.clip(row, 0, ny - 1) * nx
    left = row + jnp.maximum(cx - 1, 0)[:, None]
    right = row + jnp.minimum(cx + 1, nx - 1)[:, None]
    lo = first[left]
    run = jnp.where(row_ok, first[right] + count[right] - lo, 0)
    return order, lo, run


def _sparse(runs: tuple[Array, Array, Array], poi_pos: Array, values: Array, reach: float) -> Array:
    """The sums from the runs alone: exact when no run is longer than ``RUN_CAP``."""
    order, lo, run = runs
    k = poi_pos.shape[0]
    packed = jnp.concatenate([poi_pos, values], axis=1)[order]  # [K,2+c] in cell order
    slot = jnp.arange(RUN_CAP, dtype=jnp.int32)
    held = slot < run[..., None]  # [K,3,cap]
    cand = packed[jnp.clip(lo[..., None] + slot, 0, k - 1)]  # [K,3,cap,2+c]
    d = cand[..., :2] - poi_pos[:, None, None, :]
    near = held & ((d[..., 0] ** 2 + d[..., 1] ** 2) <= reach**2)
    return jnp.sum(jnp.where(near[..., None], cand[..., 2:], 0.0), axis=(1, 2))
