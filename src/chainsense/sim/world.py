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

Scenarios (each off unless its params say so; see ``WorldParams`` and ``sim.scenario``): after
the move, an MT at a charging station recharges (before it senses); with data that keeps
arriving, PoIs sense from buffers of ``buffer_capacity`` (the quota is ``collect_fraction`` of
it) and generate new data at the end of the slot; with partial observation each MT's belief of
the remaining data is updated from what it senses, what it sees and what the ledger shares.

The episode is done after ``num_slots`` slots, or when every MT is out of energy (and away from
any station), or when no data is left and none will arrive. Stepping a done world changes
nothing and yields zero rewards, so fixed-length
``lax.scan`` rollouts over a batch stay correct.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
from jax import Array

from chainsense.sim import scenario
from chainsense.sim.geometry import move_blocked, move_end
from chainsense.sim.maps import MapArrays, WorldMap, generate_map, map_arrays
from chainsense.sim.observe import observe
from chainsense.sim.params import WorldParams
from chainsense.sim.roadmap import corner_distances
from chainsense.sim.state import StepInfo, WorldState

_F = jnp.float32
_EPS_DATA = 1.0e-6  # remaining data below this fraction of the PoI's initial data is zero


def _initial_state(arrays: MapArrays, params: WorldParams, roadmap: bool = True) -> WorldState:
    m, k = params.num_mts, params.num_pois
    data = arrays.poi_data.astype(_F)
    dyn = k if params.dynamic else 0
    ring = (max(params.share_delay, 0), m, k) if params.partial else (0, m, 0)
    boxes = arrays.obstacles.astype(_F).reshape(params.num_obstacles, 4)
    return WorldState(
        mt_pos=jnp.broadcast_to(jnp.array(params.start, _F), (m, 2)),
        energy=jnp.full((m,), params.initial_energy, _F),
        poi_pos=arrays.poi_pos.astype(_F),
        poi_init=data,
        poi_data=data,
        visits=jnp.zeros((k,), jnp.int32),
        obstacles=boxes,
        roadmap=corner_distances(boxes, params) if roadmap else jnp.zeros((0, 0), _F),
        t=jnp.int32(0),
        collisions=jnp.zeros((m,), jnp.int32),
        collected=jnp.zeros((m,), _F),
        energy_spent=jnp.zeros((m,), _F),
        done=jnp.array(False),
        stations=arrays.stations.astype(_F).reshape(params.num_stations, 2),
        charged=jnp.zeros((m,), _F),
        poi_rate=arrays.poi_rate.astype(_F).reshape(dyn),
        generated=jnp.zeros((dyn,), _F),
        lost=jnp.zeros((dyn,), _F),
        birth=jnp.zeros((dyn,), _F),
        age_sum=jnp.zeros((), _F),
        belief=jnp.broadcast_to(data, (m, k)) if params.partial else jnp.zeros((m, 0), _F),
        shared=jnp.zeros(ring, _F),
        known_served=jnp.zeros((m, k if params.partial and params.dynamic else 0), bool),
    )


@partial(jax.jit, static_argnames=("params", "roadmap"))
def reset(key: Array, params: WorldParams, roadmap: bool = True) -> tuple[WorldState, Array]:
    """A fresh world: map drawn from ``key`` (or from ``params.map_seed``), MTs at the start.
    ``roadmap=False`` leaves ``WorldState.roadmap`` empty: for worlds no heuristic steers in (a
    learner's training worlds), where it would cost more than the slots played (a policy that
    steers there computes it per slot instead, ``marl.navigation``)."""
    map_key = key if params.map_seed is None else jax.random.PRNGKey(params.map_seed)
    state = _initial_state(generate_map(map_key, params), params, roadmap)
    return state, observe(state, params)


def episode_start(
    key: Array, params: WorldParams, site: WorldMap | MapArrays | None = None
) -> tuple[WorldState, Array]:
    """The start of the episode that ``key`` plays, the rule every evaluation shares: the map is
    drawn from ``fold_in(key, 0)`` (slot t's keys come from ``fold_in(key, t + 1)``, so the map
    never shares a key with a step), or is ``site`` where one is given. Jit-able inside a
    rollout with ``site`` as ``MapArrays``."""
    if site is None:
        return reset(jax.random.fold_in(key, 0), params)
    if isinstance(site, WorldMap):
        site = map_arrays(site)
    return reset_from_arrays(site, params)


def reset_with_map(world_map: WorldMap, params: WorldParams) -> tuple[WorldState, Array]:
    """A fresh world on a given map (see ``maps.load_map`` / ``maps.validate_map``)."""
    return reset_from_arrays(map_arrays(world_map), params)


@partial(jax.jit, static_argnames=("params", "roadmap"))
def reset_from_arrays(
    arrays: MapArrays, params: WorldParams, roadmap: bool = True
) -> tuple[WorldState, Array]:
    """A fresh world on a map already on the device (jit-able inside a rollout); ``roadmap`` as
    in :func:`reset`."""
    state = _initial_state(arrays, params, roadmap)
    return state, observe(state, params)


def quota_base(state: WorldState, params: WorldParams) -> Array:
    """[K] what a PoI's per-slot quota is a fraction of: its initial data, or its buffer where
    data keeps arriving (a PoI that started nearly empty fills up like any other). Policies that
    model the sensing (``marl.policies``) read it from here, so that they value a PoI by what
    the world will really give."""
    if params.dynamic:
        return jnp.full_like(state.poi_data, params.buffer_capacity)
    return state.poi_init


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
    state: WorldState, pos: Array, senses: Array, energy_left: Array, init: Array, p: WorldParams
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
    data = state.poi_data  # init: the size a PoI's quota is a fraction of
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
    gain = scenario.charge(pos, energy_left, state, p) if p.charging else jnp.zeros_like(moved)
    energy_left = energy_left + gain

    # An MT left with only dust (what the end of the slot would zero anyway) senses nothing.
    senses = live & (energy_left > _EPS_DATA * p.initial_energy)
    base = quota_base(state, p)
    taken, b, poi_data, visits, (h_sum, h_sq) = _sense(state, pos, senses, energy_left, base, p)
    dyn = (state.poi_data, state.generated, state.lost, state.birth, state.age_sum)
    if p.dynamic:
        dyn = scenario.generate(state, jnp.sum(taken, axis=0), poi_data, p)
        poi_data = dyn[0]
    belief, shared, known = (state.belief, state.shared, state.known_served)
    if p.partial:
        belief, shared, known = scenario.share(state, taken, poi_data, pos, p)

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
    stuck = energy <= 0
    if p.charging:
        stuck &= ~scenario.at_station(pos, state.stations, p)
    done = state.done | (t >= p.num_slots) | jnp.all(stuck)
    if not p.dynamic:  # data that keeps arriving never runs out
        done |= jnp.all(poi_data <= 0)
    new = WorldState(
        mt_pos=pos,
        energy=energy,
        poi_pos=state.poi_pos,
        poi_init=state.poi_init,
        poi_data=poi_data,
        visits=visits,
        obstacles=state.obstacles,
        roadmap=state.roadmap,
        t=t,
        collisions=state.collisions + collision.astype(jnp.int32),
        collected=state.collected + b,
        energy_spent=state.energy_spent + used,
        done=done,
        stations=state.stations,
        charged=state.charged + gain,
        poi_rate=state.poi_rate,
        generated=dyn[1],
        lost=dyn[2],
        birth=dyn[3],
        age_sum=dyn[4],
        belief=belief,
        shared=shared,
        known_served=known,
    )
    info = StepInfo(
        collected_per_poi=taken,
        collected=b,
        moved=moved,
        collision=collision,
        energy_used=used,
        fairness=fairness,
        charged=gain,
    )
    return new, observe(new, p), rewards, done, info


@partial(jax.jit, static_argnames=("params", "roadmap"))
def batch_reset(keys: Array, params: WorldParams, roadmap: bool = True) -> tuple[WorldState, Array]:
    """:func:`reset` over a batch of keys [B,...]: states and obs [B,M,obs_dim]."""
    return jax.vmap(lambda k: reset(k, params, roadmap))(keys)


@partial(jax.jit, static_argnames=("params",))
def batch_step(
    keys: Array, states: WorldState, actions: Array, params: WorldParams
) -> tuple[WorldState, Array, Array, Array, StepInfo]:
    """:func:`step` over a batch: keys [B,...], states [B,...], actions [B,M,2]."""
    return jax.vmap(lambda k, s, a: step(k, s, a, params))(keys, states, actions)
