"""The crowdsensing world as pure JAX functions over an explicit state.

One slot of :func:`step`, for every MT that still has energy (and while the episode runs):

1. The action (theta, l) is wrapped / clipped to theta in [0, 2 pi), l in [0, max_move]
   (NaN counts as 0) and l is cut so the move costs at most the MT's energy.
2. The whole segment is checked against the area and every obstacle (closed boxes, Liang-Barsky
   slab test), and so is the float32 end point the MT would be stored at: if the move leaves the
   area (by more than float32 rounding, alike at all four edges) or touches an obstacle
   anywhere, or would leave the MT on an obstacle's edge, it is refused: the MT stays where it
   is, pays nothing for it and is flagged with a collision. So an MT is never in or on an
   obstacle.
3. After moving, the MT senses every PoI within ``sensing_range``. A served PoI gives up
   ``collect_fraction * poi_init`` per slot (or what remains, if less), split equally among the
   MTs serving it this slot. An MT whose remaining energy cannot pay for its whole share takes a
   proportional part of every share; an MT with only dust left (at most 1e-6 of
   ``initial_energy``) senses nothing. ``visits[k]`` (h_t(k)) counts the slots in which PoI k was
   served: its remaining data went down (a share below float32 resolution is no visit).
4. Reward r_m = omega_t * b_m / phi_m - collision_penalty * collided_m, with omega_t Jain's index
   of the visits after this slot, b_m the data collected and phi_m the energy spent this slot.
   0/0 conventions: b/phi = 0 when phi = 0 (then b = 0 too, because sense_cost > 0); Jain's index
   is 0 while no PoI has been served.

The episode is done after ``num_slots`` slots, or when every MT is out of energy, or when no data
is left. Stepping a done world changes nothing and yields zero rewards, so fixed-length
``lax.scan`` rollouts over a batch stay correct.
"""

from __future__ import annotations

import functools
import math
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax import Array

from chainsense.sim.maps import WorldMap, generate_map
from chainsense.sim.params import WorldParams

_F = jnp.float32
_EPS_DATA = 1.0e-6  # remaining data below this fraction of the PoI's initial data is zero


@struct.dataclass
class WorldState:
    """Everything about one world at the start of slot ``t``; fixed-size arrays only."""

    mt_pos: Array  # [M,2] float32
    energy: Array  # [M] remaining energy
    poi_pos: Array  # [K,2]
    poi_init: Array  # [K] initial data
    poi_data: Array  # [K] remaining data
    visits: Array  # [K] int32, h_t(k): slots in which PoI k was served
    obstacles: Array  # [C,4] (x0, y0, x1, y1)
    t: Array  # int32 scalar: slots elapsed
    collisions: Array  # [M] int32, cumulative refused moves
    collected: Array  # [M] cumulative data collected
    energy_spent: Array  # [M] cumulative energy spent
    done: Array  # bool scalar


@struct.dataclass
class StepInfo:
    """What happened in one slot, per MT (the ledger turns ``collected_per_poi`` into records)."""

    collected_per_poi: Array  # [M,K] data MT m took from PoI k this slot
    collected: Array  # [M] b_t^m
    moved: Array  # [M] distance actually moved
    collision: Array  # [M] bool: move refused
    energy_used: Array  # [M] phi_t^m
    fairness: Array  # scalar omega_t after this slot


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


def fine_grid(state: WorldState, params: WorldParams) -> Array:
    """Remaining data summed per cell of the fine grid [F,F] (F = obs_grid * fine_factor).

    One scatter-add of K values: the only non-elementwise work of the rich observation.
    """
    fine_n = params.obs_grid * params.fine_factor
    scale = jnp.array([fine_n / params.width, fine_n / params.height], _F)
    cell = jnp.clip(jnp.floor(state.poi_pos * scale).astype(jnp.int32), 0, fine_n - 1)
    idx = cell[:, 1] * fine_n + cell[:, 0]
    return _scatter_add(fine_n * fine_n)(idx, state.poi_data).reshape(fine_n, fine_n)


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
    total_init = jnp.maximum(_pairwise_sum(state.poi_init), 1.0e-6)
    g, n = params.obs_grid, params.local_grid
    fine_n = g * params.fine_factor
    fine = fine_grid(state, params)  # [F,F], row = y cell
    f = params.fine_factor
    coarse = sum(fine[i::f, j::f] for i in range(f) for j in range(f))  # strided: cheap on CPU
    parts.append(jnp.broadcast_to(coarse.reshape(-1) / (total_init / (g * g)), (m, g * g)))
    h = n // 2
    padded = jnp.pad(fine, h)
    mc = jnp.clip(jnp.floor(state.mt_pos / size * fine_n).astype(jnp.int32), 0, fine_n - 1)
    window = jax.vmap(lambda c: jax.lax.dynamic_slice(padded, (c[1], c[0]), (n, n)))(mc)
    parts.append(window.reshape(m, n * n) / (total_init / (fine_n * fine_n)))
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


def _initial_state(pos: Array, data: Array, boxes: Array, params: WorldParams) -> WorldState:
    m, k = params.num_mts, params.num_pois
    return WorldState(
        mt_pos=jnp.broadcast_to(jnp.array(params.start, _F), (m, 2)),
        energy=jnp.full((m,), params.initial_energy, _F),
        poi_pos=pos.astype(_F),
        poi_init=data.astype(_F),
        poi_data=data.astype(_F),
        visits=jnp.zeros((k,), jnp.int32),
        obstacles=boxes.astype(_F).reshape(params.num_obstacles, 4),
        t=jnp.int32(0),
        collisions=jnp.zeros((m,), jnp.int32),
        collected=jnp.zeros((m,), _F),
        energy_spent=jnp.zeros((m,), _F),
        done=jnp.array(False),
    )


@partial(jax.jit, static_argnames=("params",))
def reset(key: Array, params: WorldParams) -> tuple[WorldState, Array]:
    """A fresh world: map drawn from ``key`` (or from ``params.map_seed``), MTs at the start."""
    map_key = key if params.map_seed is None else jax.random.PRNGKey(params.map_seed)
    pos, data, boxes = generate_map(map_key, params)
    state = _initial_state(pos, data, boxes, params)
    return state, observe(state, params)


def reset_with_map(world_map: WorldMap, params: WorldParams) -> tuple[WorldState, Array]:
    """A fresh world on a given map (see ``maps.load_map`` / ``maps.validate_map``)."""
    return _reset_with_arrays(
        jnp.asarray(world_map.poi_pos, _F),
        jnp.asarray(world_map.poi_data, _F),
        jnp.asarray(world_map.obstacles, _F).reshape(params.num_obstacles, 4),
        params,
    )


@partial(jax.jit, static_argnames=("params",))
def _reset_with_arrays(
    pos: Array, data: Array, boxes: Array, params: WorldParams
) -> tuple[WorldState, Array]:
    state = _initial_state(pos, data, boxes, params)
    return state, observe(state, params)


def _inverse_count(n: Array, m: int) -> Array:
    """1 / max(n, 1) for small integer counts n in [0, m], by selects (no divide) when m <= 4."""
    if m > 4:
        return 1.0 / jnp.maximum(n, 1.0)
    inv = jnp.ones_like(n)
    for c in range(2, m + 1):
        inv = jnp.where(n == c, 1.0 / c, inv)
    return inv


def _rounded(x: Array) -> Array:
    """``x`` (a float32 product) rounded on its own before it is added to anything.

    XLA's CPU backend contracts ``a * b + c`` into a fused multiply-add (one rounding instead of
    two) wherever both end up in one fused kernel, and which operations share a kernel differs
    between the jitted :func:`step` and the same step inside a ``lax.scan`` body: the two then
    disagreed in the last bit, and from there in energies, visits and fairness. A select on the
    product is not contracted through. Used on [M]-sized values only: on [K]-sized ones it slows
    the fused sensing loop (there a select on the MT's coverage already separates the products).
    """
    return jnp.where(jnp.isnan(x), 0.0, x)


def _sense(
    state: WorldState, pos: Array, senses: Array, energy_left: Array, p: WorldParams
) -> tuple[Array, Array, Array, Array, Array]:
    """Sensing after the move: (taken [M,K], b [M], poi_data [K], visits [K], jain [2]).

    Written for the CPU memory system: the MT loop is unrolled over structure-of-arrays PoI
    coordinates and every per-PoI quantity is a cheap elementwise function of the state, so XLA
    fuses it into its consumers instead of writing [K] temporaries. One reduction pass gives each
    MT's demand; one pass writes the new data and visits and gives Jain's sums. A PoI counts as
    served only when its remaining data actually went down: a share below the PoI's float32
    resolution (e.g. a tiny ``collect_fraction``) takes nothing, records nothing and is no visit.
    (An MT with only dust energy left does not sense at all, see :func:`step`.)
    """
    px, py = state.poi_pos[:, 0], state.poi_pos[:, 1]
    r2 = p.sensing_range**2
    ins = []
    for m in range(p.num_mts):
        dx, dy = px - pos[m, 0], py - pos[m, 1]
        ins.append(((dx * dx + dy * dy) <= r2) & senses[m])
    servers = ins[0].astype(_F)
    for i in ins[1:]:
        servers = servers + i.astype(_F)
    data, init = state.poi_data, state.poi_init
    quota = jnp.minimum(p.collect_fraction * init, data)
    quota = jnp.where(data - quota <= _EPS_DATA * init, data, quota)
    each = quota * _inverse_count(servers, p.num_mts)
    demand = jnp.stack([jnp.sum(jnp.where(i, each, 0.0)) for i in ins])  # [M]
    cost = p.sense_cost * demand
    scale = jnp.where(cost > energy_left, energy_left / jnp.where(cost > 0, cost, 1.0), 1.0)
    taken = [jnp.where(i, each * scale[m], 0.0) for m, i in enumerate(ins)]
    per_poi = taken[0]
    for tk in taken[1:]:
        per_poi = per_poi + tk
    left = jnp.maximum(data - per_poi, 0.0)
    left = jnp.where(left <= _EPS_DATA * init, 0.0, left)
    # Where nothing was taken the data is kept as it is, not recomputed: XLA's CPU backend
    # flushes subnormal results to 0, so data - 0 would make a tiny amount vanish unvisited.
    left = jnp.where(per_poi > 0, left, data)
    served = (per_poi > 0) & (left < data)
    taken = [jnp.where(served, tk, 0.0) for tk in taken]
    # What each MT pays for (no second pass over K): it exceeds the sum of its records only by
    # shares that were below the float32 resolution of a PoI's data.
    b = _rounded(demand * scale)  # added to the MT's running total in step
    visits = state.visits + served.astype(state.visits.dtype)
    h = visits.astype(_F)
    jain = jnp.stack([jnp.sum(h), jnp.sum(h * h)])
    return jnp.stack(taken), b, left, visits, jain


@partial(jax.jit, static_argnames=("params",))
def step(
    key: Array, state: WorldState, actions: Array, params: WorldParams
) -> tuple[WorldState, Array, Array, Array, StepInfo]:
    """Advance one slot: (state, obs [M,obs_dim], rewards [M], done, info).

    ``actions`` [M,2] are physical (theta, l). ``key`` is accepted so that every world function
    has the same calling convention; the dynamics are deterministic and do not consume it.
    """
    del key
    p = params
    live = (state.energy > 0) & ~state.done
    a = jnp.nan_to_num(actions.astype(_F), nan=0.0, posinf=0.0, neginf=0.0)
    theta = jnp.mod(a[:, 0], 2.0 * math.pi)
    length = jnp.clip(a[:, 1], 0.0, p.max_move)
    if p.move_cost > 0:
        length = jnp.minimum(length, state.energy / p.move_cost)
    length = jnp.where(live, length, 0.0)
    delta = _rounded(length[:, None] * jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=1))
    end = move_end(state.mt_pos, delta, p)
    collision = live & (length > 0) & move_blocked(state.mt_pos, delta, state.obstacles, p)
    moved = jnp.where(collision, 0.0, length)
    pos = jnp.where(collision[:, None], state.mt_pos, end)
    move_energy = _rounded(p.move_cost * moved)
    energy_left = jnp.maximum(state.energy - move_energy, 0.0)

    # An MT left with only dust (what the end of the slot would zero anyway) senses nothing.
    senses = live & (energy_left > _EPS_DATA * p.initial_energy)
    taken, b, poi_data, visits, (h_sum, h_sq) = _sense(state, pos, senses, energy_left, p)

    sense_energy = _rounded(p.sense_cost * b)
    energy = jnp.maximum(energy_left - sense_energy, 0.0)
    energy = jnp.where(energy <= _EPS_DATA * p.initial_energy, 0.0, energy)
    # phi from its parts, never as state.energy - energy: that float32 difference of two numbers
    # near e.g. 440 loses the small sensing term (1 ulp = 3e-5) and b / phi exceeded 1.
    used = move_energy + sense_energy
    fairness = jnp.where(
        h_sq > 0, h_sum * h_sum / (p.num_pois * jnp.where(h_sq > 0, h_sq, 1.0)), 0.0
    )
    fairness = jnp.minimum(fairness, 1.0)  # Jain's index is <= 1; float32 sums may round above
    ratio = jnp.where(used > 0, b / jnp.where(used > 0, used, 1.0), 0.0)
    rewards = _rounded(fairness * ratio) - p.collision_penalty * collision.astype(_F)

    t = jnp.where(state.done, state.t, state.t + 1)
    done = state.done | (t >= p.num_slots) | jnp.all(energy <= 0) | jnp.all(poi_data <= 0)
    new = WorldState(
        mt_pos=pos,
        energy=energy,
        poi_pos=state.poi_pos,
        poi_init=state.poi_init,
        poi_data=poi_data,
        visits=visits,
        obstacles=state.obstacles,
        t=t,
        collisions=state.collisions + collision.astype(jnp.int32),
        collected=state.collected + b,
        energy_spent=state.energy_spent + used,
        done=done,
    )
    info = StepInfo(
        collected_per_poi=taken,
        collected=b,
        moved=moved,
        collision=collision,
        energy_used=used,
        fairness=fairness,
    )
    return new, observe(new, p), rewards, done, info


@partial(jax.jit, static_argnames=("params",))
def batch_reset(keys: Array, params: WorldParams) -> tuple[WorldState, Array]:
    """:func:`reset` over a batch of keys [B,...]: states and obs [B,M,obs_dim]."""
    return jax.vmap(lambda k: reset(k, params))(keys)


@partial(jax.jit, static_argnames=("params",))
def batch_step(
    keys: Array, states: WorldState, actions: Array, params: WorldParams
) -> tuple[WorldState, Array, Array, Array, StepInfo]:
    """:func:`step` over a batch: keys [B,...], states [B,...], actions [B,M,2]."""
    return jax.vmap(lambda k, s, a: step(k, s, a, params))(keys, states, actions)
