"""Policies behind one call signature: ``act(key, obs[M,obs_dim], state, params) -> actions[M,2]``.

Actions are physical: theta in [0, 2 pi), l in [0, max_move]. Every policy is a pytree
(``flax.struct.dataclass``): settings are static fields, learned weights would be array leaves, so
a policy can be passed as an ordinary argument to a jitted rollout without retracing when its
weights change. Heuristics may read the full ``state`` (an omniscient, centralised view);
learned policies read their observations and, through ``marl.features``, the proximity sensor
computed from ``state``. Policies are picked by name in ``marl.registry``. A
``PlanningPolicy`` (``marl.planner``) plans on the host between jitted chunks instead.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import jax
import jax.numpy as jnp
from flax import struct
from jax import Array

from chainsense.errors import ConfigError
from chainsense.marl.navigation import HEADINGS, head_for
from chainsense.marl.poi_clusters import cluster_sums, sums_at
from chainsense.marl.recharge import GREEDY_RULE, RechargeRule, recharge_goal
from chainsense.marl.score_terms import GREEDY_TERMS, ScoreTerms
from chainsense.marl.standing_grid import grid_problem, standing_points
from chainsense.sim.params import WorldParams
from chainsense.sim.state import WorldState
from chainsense.sim.world import quota_base


@runtime_checkable
class Policy(Protocol):
    """Anything with a jit-able ``act``; see the module docstring."""

    def act(self, key: Array, obs: Array, state: WorldState, params: WorldParams) -> Array:
        """Physical actions [M,2] (theta, l) for every MT."""
        ...


@runtime_checkable
class FollowerPolicy(Policy, Protocol):
    """A policy that plays a plan and says, jit-ably, when the plan needs replacing."""

    def finished(self, state: WorldState, params: WorldParams) -> Array:
        """Scalar bool: replan now (e.g. an MT has finished its route)."""
        ...


@runtime_checkable
class PlanningPolicy(Protocol):
    """A host-side planner: ``plan`` (plain Python, not jit-able) returns a jit-able follower.

    ``marl.evaluate`` plays it in chunks of at most ``replan_every`` slots (``marl.replanning``).
    """

    replan_every: int

    def plan(self, state: WorldState, params: WorldParams) -> FollowerPolicy:
        """A follower for the plan made from ``state``."""
        ...


@struct.dataclass
class RandomPolicy:
    """The paper's control group: theta ~ U[0, 2 pi), l ~ U[0, max_move], independently."""

    def act(self, key: Array, obs: Array, state: WorldState, params: WorldParams) -> Array:
        """Uniform random physical actions [M,2]."""
        del obs, state
        u = jax.random.uniform(key, (params.num_mts, 2), jnp.float32)
        return u * jnp.array([2.0 * math.pi, params.max_move], jnp.float32)


#: the log-score of a cluster without data: below every cluster with data (a log-score above
#: -1e3 even at the steepest power on the largest site), above a PoI already claimed (-inf)
_NO_DATA = -1.0e30


@struct.dataclass
class GreedyPolicy:
    """A strong hand-written baseline using the full state.

    Each slot every MT scores every PoI k by the data it would harvest there next slot (the
    collectable quota of all PoIs within sensing range of k, unvisited PoIs weighted up by
    ``1 + fairness_weight`` for Jain's index) divided by ``1 + slots needed to get there``. MTs
    choose in turn; a PoI within ``2 * sensing_range`` of an earlier MT's target is not offered to
    later MTs (no two MTs chase the same cluster). The MT heads for its target and, when the
    straight move would hit an obstacle or leave the area, takes the collision-free heading among
    ``headings`` candidates that ends closest to the target.

    Where MTs can recharge, an MT whose energy would not take it to the nearest station (with a
    margin) heads there instead, and one at a station stays until its battery is 90% full
    (``recharge``: greedy's rule, ``marl.recharge``).
    """

    fairness_weight: float = struct.field(pytree_node=False, default=1.0)
    headings: int = struct.field(pytree_node=False, default=HEADINGS)
    recharge: RechargeRule = struct.field(pytree_node=False, default=GREEDY_RULE)

    def act(self, key: Array, obs: Array, state: WorldState, params: WorldParams) -> Array:
        """Greedy physical actions [M,2]."""
        del key, obs
        p = params
        quota = jnp.minimum(p.collect_fraction * quota_base(state, p), state.poi_data)
        weight = 1.0 + self.fairness_weight * (state.visits == 0).astype(jnp.float32)
        value = quota * weight  # [K]
        d_pp = state.poi_pos[:, None, :] - state.poi_pos[None, :, :]
        near = (d_pp[..., 0] ** 2 + d_pp[..., 1] ** 2) <= p.sensing_range**2  # [K,K]
        cluster = near.astype(jnp.float32) @ value  # [K]: harvest when parked on PoI k
        has_data = cluster > 0

        d_mp = state.poi_pos[None, :, :] - state.mt_pos[:, None, :]  # [M,K,2]
        dist = jnp.sqrt(d_mp[..., 0] ** 2 + d_mp[..., 1] ** 2)
        slots = jnp.ceil(jnp.maximum(dist - p.max_move, 0.0) / p.max_move)
        score = jnp.where(has_data[None, :], cluster[None, :] / (1.0 + slots), -1.0)  # [M,K]

        targets = claim_targets(state, p, score)
        goal = state.poi_pos[targets]  # [M,2]
        idle = ~has_data[targets]  # nothing left worth a trip: stay put
        if p.charging:
            goal, idle = recharge_goal(
                state.mt_pos, state.energy, state.stations, state.t, p, goal, idle, self.recharge
            )
        return head_for(state, goal, idle, p, self.headings)


@struct.dataclass
class WeightedGreedyPolicy:
    """Greedy with other fixed score weights (:func:`weighted_goals`) for every MT; with
    ``belief``, each MT on its own belief of the remaining data (:func:`believed_goals`).

    The registry's ``greedy-fair`` (unvisited PoIs worth 31x, not 2x; distance power 1.5) is
    greedy at its best fixed weights on the worlds where energy binds: the opponent a fleet that
    learns these weights (``marl.target_actions``) must beat to show that learning them pays.
    ``greedy-backlog`` also counts each PoI's backlog (the data beyond one slot's quota), which
    greedy's quota cannot see: the best of a grid on ``dynamic``, where a full buffer is worth
    more than a nearly empty one with the same quota. ``greedy-jain`` adds to that what serving
    each PoI adds to Jain's index (:func:`jain_gain`), which after the first visits greedy's
    unvisited term no longer sees.
    ``greedy-belief`` (weights 1, 1, on the belief) is greedy's rule under partial observation:
    the heuristic that knows what a learned MT knows there (its belief, the static site, the
    others' positions), where ``greedy`` reads the true data and ``greedy-local`` only the
    coarse maps of the observation. ``greedy-near`` (0.03, 20, on the belief; the truth where
    every MT sees everything) is the best of a grid on ``paper``; ``greedy-route`` adds the
    isolation and territory terms (:class:`ScoreTerms`) to it, so that the MTs drain a PoI that
    would be left stranded before moving on and split the area between them.
    ``greedy-grid`` is greedy-backlog that may also stand anywhere within one move, on a lattice
    of spacing 0.125 (``grid``, ``marl.standing_grid``): where data keeps arriving, the disk
    between PoIs and the next step of a sweep are places worth standing.
    """

    fairness_weight: float = struct.field(pytree_node=False, default=1.0)
    distance_power: float = struct.field(pytree_node=False, default=1.0)
    belief: bool = struct.field(pytree_node=False, default=False)
    backlog_weight: float = struct.field(pytree_node=False, default=0.0)
    recharge: RechargeRule = struct.field(pytree_node=False, default=GREEDY_RULE)
    jain_weight: float = struct.field(pytree_node=False, default=0.0)
    isolation_weight: float = struct.field(pytree_node=False, default=0.0)
    territory_weight: float = struct.field(pytree_node=False, default=1.0)
    grid: float = struct.field(pytree_node=False, default=0.0)
    travel_weight: float = struct.field(pytree_node=False, default=0.0)

    @property
    def terms(self) -> ScoreTerms:
        """The fleet-wide score terms of these settings."""
        return ScoreTerms(
            self.backlog_weight,
            self.jain_weight,
            self.isolation_weight,
            self.territory_weight,
            self.grid,
            self.travel_weight,
        )

    def act(self, key: Array, obs: Array, state: WorldState, params: WorldParams) -> Array:
        """Greedy physical actions [M,2] under these weights."""
        del key, obs
        goals = believed_goals if self.belief else weighted_goals
        ones = jnp.ones((params.num_mts,), jnp.float32)
        return goals(
            state,
            params,
            self.fairness_weight * ones,
            self.distance_power * ones,
            self.terms,
            self.recharge,
        )


def claim_targets(
    state: WorldState, p: WorldParams, score: Array, points: Array | None = None
) -> Array:
    """[M] index of the point each MT heads for, from its scores [M,C] over ``points`` [C,2]
    (the PoIs unless given; scores finite, above every point without data where worth a trip):
    the MTs choose in turn, and a point within ``2 * sensing_range`` of an earlier MT's target
    is not offered to later ones (no two MTs chase the same cluster)."""
    points = state.poi_pos if points is None else points
    claim_r2 = (2.0 * p.sensing_range) ** 2

    def choose(free: Array, m: Array) -> tuple[Array, Array]:
        s = jnp.where(free, score[m], -jnp.inf)
        k = jnp.argmax(s)
        dk = points - points[k]
        taken = (dk[:, 0] ** 2 + dk[:, 1] ** 2) <= claim_r2
        return free & ~taken, k

    free0 = jnp.ones((points.shape[0],), bool)
    return jax.lax.scan(choose, free0, jnp.arange(p.num_mts))[1]


def weighted_goals(
    state: WorldState,
    p: WorldParams,
    fairness_weight: Array,
    distance_power: Array,
    terms: ScoreTerms = GREEDY_TERMS,
    recharge: RechargeRule = GREEDY_RULE,
) -> Array:
    """Greedy's physical actions [M,2] with each MT's own score weights ([M] each): PoI k is
    worth its cluster's quota with unvisited PoIs counted ``1 + fairness_weight`` times, plus
    the fleet's ``terms`` (:class:`ScoreTerms`), over
    ``(1 + slots to get there) ** distance_power``; MTs recharge by ``recharge``.
    ``GreedyPolicy`` is weights (1, 1) for all and no terms.
    The cluster sums (``poi_clusters.cluster_sums``: a cell list on large maps) are one pass
    whatever M is, as the weighted part is split off. ``GreedyPolicy`` keeps its own dense sum of
    the already weighted quotas, so that the baseline every figure is measured against stays
    bit for bit what it was."""
    goal, idle = weighted_targets(
        state, p, state.poi_data, state.visits == 0, fairness_weight, distance_power, terms
    )
    return _go(state, p, goal, idle, recharge)


def believed_goals(
    state: WorldState,
    p: WorldParams,
    fairness_weight: Array,
    distance_power: Array,
    terms: ScoreTerms = GREEDY_TERMS,
    recharge: RechargeRule = GREEDY_RULE,
) -> Array:
    """:func:`weighted_goals` under partial observation: each MT plays greedy's whole claim
    round on its own belief of the remaining data (``WorldState.belief``: what it saw and what
    the ledger has shared), assuming the others weigh as it does, and takes the target the round
    gives it. A PoI counts as unvisited while its believed data is still its initial data (where
    data keeps arriving: while the MT knows of no collection there, its own or one the ledger
    delivered, ``WorldState.known_served``). It
    reads the static site (PoIs, obstacles, stations) and the MTs' positions and energy, never
    the true data, the visit counts or another MT's belief or weights. In a world without
    partial observation every belief is the truth, and this is :func:`weighted_goals`.
    The Jain term reads the true visit counts, so it is refused under partial observation; the
    isolation term counts the PoIs the MT believes hold data, the territory term reads the MTs'
    positions."""
    if not p.partial:
        return weighted_goals(state, p, fairness_weight, distance_power, terms, recharge)
    if terms.jain:
        raise ConfigError(
            "jain_weight", "reads every PoI's visit count: not under partial observation"
        )
    ones = jnp.ones((p.num_mts,), jnp.float32)

    def own(i: Array) -> tuple[Array, Array]:
        belief = state.belief[i]
        # a refilled buffer holds its initial data again: there only the records tell
        unvisited = ~state.known_served[i] if p.dynamic else belief >= state.poi_init
        goal, idle = weighted_targets(
            state,
            p,
            belief,
            unvisited,
            fairness_weight[i] * ones,
            distance_power[i] * ones,
            terms,
        )
        return goal[i], idle[i]

    goal, idle = jax.vmap(own)(jnp.arange(p.num_mts))
    return _go(state, p, goal, idle, recharge)


def weighted_targets(
    state: WorldState,
    p: WorldParams,
    data: Array,
    unvisited: Array,
    fairness_weight: Array,
    distance_power: Array,
    terms: ScoreTerms = GREEDY_TERMS,
) -> tuple[Array, Array]:
    """[M,2] where each MT heads and [M] whether nothing is worth a trip, scored on ``data``
    [K] and ``unvisited`` [K] (the truth, or one MT's belief) with per-MT weights [M] and the
    fleet's ``terms`` (:class:`ScoreTerms`). The places offered are the PoIs, and with
    ``terms.grid`` also the free lattice points within one move of each MT
    (``marl.standing_grid``), each worth the sensing disk round it. A cluster whose Jain term
    outweighs its data is not worth a trip."""
    quota = jnp.minimum(p.collect_fraction * quota_base(state, p), data)
    columns = [quota, quota * unvisited.astype(jnp.float32)]
    if terms.backlog:
        columns.append(jnp.maximum(data - quota, 0.0))
    if terms.jain:
        columns.append(jnp.where(quota > 0, jain_gain(state.visits), 0.0))
    values = jnp.stack(columns, axis=1)
    sums = cluster_sums(state.poi_pos, values, p)  # [K,2..4]
    points, free = state.poi_pos, jnp.ones((p.num_pois,), bool)
    if terms.grid:
        problem = grid_problem(p, terms.grid)
        if problem:
            raise ConfigError("target_grid", problem)
        grid, open_ = standing_points(state.mt_pos, state.obstacles, p, terms.grid)
        points = jnp.concatenate([points, grid])
        sums = jnp.concatenate([sums, sums_at(grid, state.poi_pos, values, p.sensing_range)])
        free = jnp.concatenate([free, open_])
    cluster = sums[None, :, 0] + fairness_weight[:, None] * sums[None, :, 1]  # [M,C]
    if terms.backlog:
        cluster = cluster + terms.backlog * sums[None, :, 2]
    if terms.jain:
        cluster = cluster + terms.jain * sums[None, :, -1]
    has_data = (sums[None, :, 0] > 0) & (cluster > 0) & free[None, :]  # [M,C]

    d_mp = points[None, :, :] - state.mt_pos[:, None, :]
    dist = jnp.sqrt(d_mp[..., 0] ** 2 + d_mp[..., 1] ** 2)
    slots = jnp.ceil(jnp.maximum(dist - p.max_move, 0.0) / p.max_move)
    # cluster / (1 + slots) ** power, compared as a logarithm: at a steep power the quotient
    # leaves float32's range on large sites (24 slots to 100 at power 20), and every far cluster
    # scored 0 alike. A cluster with data has a positive sum, so its log-score is finite.
    log_score = jnp.log(jnp.where(has_data, cluster, 1.0)) - distance_power[:, None] * jnp.log1p(
        slots
    )
    if terms.isolation:
        log_score = log_score - terms.isolation * jnp.log(
            neighbours_with_data(state, p, data, points)
        )
    if terms.territory != 1.0:
        log_score = log_score + jnp.where(nearer_to_another(dist), math.log(terms.territory), 0.0)
    if terms.travel:
        log_score = log_score - terms.travel * dist
    score = jnp.where(has_data, log_score, _NO_DATA)
    targets = claim_targets(state, p, score, points)
    return points[targets], ~has_data[jnp.arange(p.num_mts), targets]


def neighbours_with_data(
    state: WorldState, p: WorldParams, data: Array, points: Array | None = None
) -> Array:
    """[C] how many PoIs with ``data`` lie within ``sensing_range + max_move`` of each PoI, then
    of each further point of ``points`` (the PoIs first, then grid points; the PoIs alone unless
    given): the PoIs an MT parked there could sense after one more move, at least 1. The
    isolation term's count, small where a PoI would be left stranded."""
    reach = p.sensing_range + p.max_move
    held = (data > 0).astype(jnp.float32)[:, None]
    count = cluster_sums(state.poi_pos, held, p, reach)[:, 0]
    if points is not None and points.shape[0] > p.num_pois:
        grid = points[p.num_pois :]
        count = jnp.concatenate([count, sums_at(grid, state.poi_pos, held, reach)[:, 0]])
    return jnp.maximum(count, 1.0)


def nearer_to_another(dist: Array) -> Array:
    """[M,K] whether some other MT is strictly nearer to the PoI than this one, from the MTs'
    distances ``dist`` [M,K] to the PoIs (the territory term)."""
    m = dist.shape[0]
    others = jnp.where(jnp.eye(m, dtype=bool)[:, :, None], jnp.inf, dist[None, :, :])  # [M,M,K]
    return jnp.min(others, axis=1) < dist


def jain_gain(visits: Array) -> Array:
    """[K] what one more visit to each PoI adds to Jain's index of the visit counts h, in visits:
    ``sum h^2 (2 sum h + 1) / (2 (sum h)^2) - 1/2 - h_k``, which has the sign of the change and,
    up to a factor nearly the same for every PoI, its size (0 before any visit). It is positive
    for PoIs served less than the visit-weighted mean count and negative for the over-served:
    greedy's unvisited term stops seeing the difference once every PoI has been served once."""
    h = visits.astype(jnp.float32)
    s = jnp.sum(h)
    q = jnp.sum(h * h)
    safe = jnp.maximum(s, 1.0)
    return jnp.where(s > 0, q * (2.0 * s + 1.0) / (2.0 * safe * safe) - 0.5 - h, 0.0)


def _go(state: WorldState, p: WorldParams, goal: Array, idle: Array, rule: RechargeRule) -> Array:
    """Physical actions [M,2] to the points ``goal`` [M,2] (to a station when ``rule`` sends an
    MT there, where MTs recharge); an ``idle`` MT stays."""
    if p.charging:
        goal, idle = recharge_goal(
            state.mt_pos, state.energy, state.stations, state.t, p, goal, idle, rule
        )
    return head_for(state, goal, idle, p)
