"""What the MTs and the critics see: observations, the fine data grid, the global state.

With partial observation (``params.observe_radius``) every MT's data maps come from its own
belief of the remaining data (``WorldState.belief``) instead of the truth.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from chainsense.sim.params import WorldParams
from chainsense.sim.state import WorldState

_F = jnp.float32


@functools.cache
def _scatter_add(size: int) -> Any:
    """``zeros(size).at[idx].add(values)`` whose vmap is one flat 1-D scatter.

    XLA's CPU scatter with batch dimensions (what plain ``vmap`` produces) runs about twice as
    slow as a single flat scatter into ``batch * size`` slots, so the batching rule offsets the
    indices per batch entry instead.
    """

    @jax.custom_batching.custom_vmap
    def add(idx: Array, values: Array) -> Array:
        return jnp.zeros((size,), values.dtype).at[idx].add(values)

    @add.def_vmap
    def _rule(
        axis_size: int, in_batched: list[bool], idx: Array, values: Array
    ) -> tuple[Array, bool]:
        if not in_batched[0]:
            idx = jnp.broadcast_to(idx, (axis_size, *idx.shape))
        if not in_batched[1]:
            values = jnp.broadcast_to(values, (axis_size, *values.shape))
        offset = (jnp.arange(axis_size, dtype=idx.dtype) * size).reshape(
            (axis_size,) + (1,) * (idx.ndim - 1)
        )
        flat = jnp.zeros((axis_size * size,), values.dtype)
        flat = flat.at[(idx + offset).reshape(-1)].add(values.reshape(-1))
        return flat.reshape(axis_size, size), True

    return add


def fine_grid(state: WorldState, params: WorldParams, data: Array | None = None) -> Array:
    """Remaining data (``data``, default the truth) summed per cell of the fine grid [F,F]
    (F = obs_grid * fine_factor).

    One scatter-add of K values: the only non-elementwise work of the rich observation.
    """
    fine_n = params.obs_grid * params.fine_factor
    scale = jnp.array([fine_n / params.width, fine_n / params.height], _F)
    cell = jnp.clip(jnp.floor(state.poi_pos * scale).astype(jnp.int32), 0, fine_n - 1)
    idx = cell[:, 1] * fine_n + cell[:, 0]
    values = state.poi_data if data is None else data
    return _scatter_add(fine_n * fine_n)(idx, values).reshape(fine_n, fine_n)


def _pairwise_sum(x: Array) -> Array:
    """Sum of a 1-D float array by a fixed pairwise tree of elementwise adds.

    ``jnp.sum`` leaves the order of the additions to XLA, and XLA picks a different one when it
    hoists the sum of a loop-invariant input out of a ``lax.scan``: the observation's data maps
    then differed in the last bit between a scan and a loop over :func:`step`.
    """
    while x.shape[0] > 1:
        if x.shape[0] % 2:
            x = jnp.concatenate([x, jnp.zeros((1,), x.dtype)])
        x = x[0::2] + x[1::2]
    return x[0]


def observe(state: WorldState, params: WorldParams) -> Array:
    """Observations [M, obs_dim] (see ``params.obs_dim``), all normalised to about [-1, 1]."""
    size = jnp.array([params.width, params.height], _F)
    # Clipped to the PettingZoo observation_space bounds: x / width is a multiply by a rounded
    # reciprocal and may come out one ulp above 1.
    own = jnp.concatenate(
        [state.mt_pos / size, (state.energy / params.initial_energy)[:, None]], axis=1
    )
    own = jnp.clip(own, 0.0, 1.0)
    if params.observation == "paper":
        return own
    m = params.num_mts
    # (T - t) / T, not 1 - t / T: XLA computes the latter as fma(-t, fl(1 / T), 1), -4.75e-8
    # at t = T = 500.
    left = (params.num_slots - state.t).astype(_F) / params.num_slots
    time_left = jnp.full((m, 1), jnp.clip(left, 0.0, 1.0), _F)
    parts = [own, time_left]
    if m > 1:
        if m <= 8:  # static slices: XLA's CPU gather would cost more than the rest
            rel = [
                [(state.mt_pos[j] - state.mt_pos[i]) / size for j in range(m) if j != i]
                for i in range(m)
            ]
            offsets = jnp.stack([jnp.concatenate(r) for r in rel])
        else:
            others = np.array([[j for j in range(m) if j != i] for i in range(m)])  # [M,M-1]
            offsets = ((state.mt_pos[others] - state.mt_pos[:, None, :]) / size).reshape(m, -1)
        parts.append(jnp.clip(offsets, -1.0, 1.0))
    if params.dynamic:  # buffers fill up again: scale by what they can hold
        total_init = jnp.asarray(params.num_pois * params.buffer_capacity, _F)
    else:
        total_init = jnp.maximum(_pairwise_sum(state.poi_init), 1.0e-6)
    g, n = params.obs_grid, params.local_grid
    fine_n = g * params.fine_factor
    f = params.fine_factor
    h = n // 2
    mc = jnp.clip(jnp.floor(state.mt_pos / size * fine_n).astype(jnp.int32), 0, fine_n - 1)
    if params.partial:  # every MT maps its own belief
        fine_m = jax.vmap(lambda d: fine_grid(state, params, d))(state.belief)  # [M,F,F]
        coarse_m = sum(fine_m[:, i::f, j::f] for i in range(f) for j in range(f))
        parts.append(coarse_m.reshape(m, g * g) / (total_init / (g * g)))
        window = jax.vmap(
            lambda fm, c: jax.lax.dynamic_slice(jnp.pad(fm, h), (c[1], c[0]), (n, n))
        )(fine_m, mc)
    else:
        fine = fine_grid(state, params)  # [F,F], row = y cell
        coarse = sum(fine[i::f, j::f] for i in range(f) for j in range(f))  # strided: cheap
        parts.append(jnp.broadcast_to(coarse.reshape(-1) / (total_init / (g * g)), (m, g * g)))
        padded = jnp.pad(fine, h)
        window = jax.vmap(lambda c: jax.lax.dynamic_slice(padded, (c[1], c[0]), (n, n)))(mc)
    parts.append(window.reshape(m, n * n) / (total_init / (fine_n * fine_n)))
    if params.charging:  # where the nearest station is: the MT has to know where to go back
        d = state.stations[None, :, :] - state.mt_pos[:, None, :]  # [M,S,2]
        nearest = jnp.argmin(d[..., 0] ** 2 + d[..., 1] ** 2, axis=1)
        offset = jnp.take_along_axis(d, nearest[:, None, None], axis=1)[:, 0] / size
        parts.append(jnp.clip(offset, -1.0, 1.0))
    return jnp.concatenate(parts, axis=1)


def global_state(state: WorldState, params: WorldParams) -> Array:
    """Flat global state [state_dim] for centralised critics (layout in ``params.state_dim``)."""
    size = jnp.array([params.width, params.height], _F)
    box_scale = jnp.array([params.width, params.height, params.width, params.height], _F)
    return jnp.concatenate(
        [
            (state.poi_pos / size).reshape(-1),
            state.poi_data,
            state.poi_init,
            state.visits.astype(_F) / (params.collect_fraction**-1 + 1.0),
            (state.obstacles / box_scale).reshape(-1),
            (state.mt_pos / size).reshape(-1),
            state.energy / params.initial_energy,
            (state.t.astype(_F) / params.num_slots)[None],
        ]
    )
