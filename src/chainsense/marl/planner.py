"""``planner``: the OR-Tools routing baseline, replanned on the host, followed inside ``jit``.

Every ``replan_every`` slots (every ``replan_changing`` = 10 where the world changes: stations,
data that keeps arriving), and as soon as an MT has finished its route, ``marl.replanning``
calls :meth:`PlannerPolicy.plan` on the host with the full state (an omniscient, centralised
planner like ``greedy``). A plan:

1. Stops (``marl.stops``): a greedy set cover of the PoIs that hold data, candidates at the PoIs
   and on a grid, coverage radius ``cover * sensing_range``. A stop's dwell is the slots its
   PoIs need to give up their data at the world's quota (``collect_fraction`` of the initial
   data, or of the buffer where data keeps arriving), its value that data (unvisited PoIs
   weighted by ``1 + fairness_weight``, for Jain's index), its sensing energy an upper bound.
   Where data keeps arriving, the data is what a PoI is expected to hold when the nearest MT
   can get there (its rate is known to a full-information planner), the plan looks ``window``
   = 40 slots ahead and a stop takes at most ``arriving_cap`` = 3 slots (the crumbs wait for
   the next visit). Stops are drained while the fleet's energy (with what the stations can
   give in the slots left) can pay for all the data, and capped at ``short_energy_cap`` = 2
   slots when it cannot (measured on the paper map with 40 energy per MT, 3 seeds: efficiency
   0.39 with cap 2, 0.37 with cap 1, 0.33 draining).
2. Distances: ``marl.paths.Roadmap`` (visibility graph over inflated box corners); the energy of
   every arc adds what the world's automatic sensing takes on the way (``marl.stops``).
3. Routes: ``marl.routing.solve_routes``, a prize-collecting VRP with energy (capacity; stations
   as top-up nodes whose dwell is what the charge takes at the world's rate) and time (slots
   left) dimensions, **at most ``time_limit_s`` seconds of solver wall clock per plan** (default
   1 s). Where MTs must reach a station, ``reserve`` = 5% of the battery is left out of the plan.

:class:`RouteFollower` is the plan as a jit-able policy (padded arrays). The stop an MT heads for
is the first of its route that is not done, read from the state alone: a stop is done when each
of its PoIs holds no data (whoever drained it) or has been served the planned number of slots
and, at a station, when the MT holds the energy the plan leaves it with plus ``charge_margin``
= 10% of the battery (the estimates of passing costs err; capped at 99% of the battery). The MT
steers to the furthest vertex of that stop's path leg it can reach in a straight line, else uses
``greedy``'s corner heuristic; ``greedy``'s heading search keeps every move collision-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from flax import struct
from jax import Array

from chainsense.marl.navigation import steer, waypoints
from chainsense.marl.paths import Roadmap
from chainsense.marl.routing import RouteSolution, RoutingProblem, solve_routes
from chainsense.marl.stops import (
    cover_stops,
    expected_data,
    passing_energy,
    sensing_field,
    stop_table,
)
from chainsense.sim.geometry import move_blocked
from chainsense.sim.params import WorldParams
from chainsense.sim.state import WorldState
from chainsense.sim.world import quota_base


def _stations(state: WorldState, params: WorldParams) -> np.ndarray:
    """Charging stations [S,2] of the world (none unless MTs can recharge there)."""
    if not params.charging:
        return np.zeros((0, 2), np.float64)
    return np.asarray(state.stations, np.float64).reshape(-1, 2)


@struct.dataclass
class RouteFollower:
    """A plan as padded arrays: M routes of up to S stops, their path legs of up to P vertices."""

    path: Array  # [M,P,2] path vertices, in route order
    leg: Array  # [M,P] int32: stop each vertex leads to (-1: padding)
    stop_pos: Array  # [M,S,2]
    n_stops: Array  # [M] int32
    poi_stop: Array  # [M,K] int32: this MT's stop draining PoI k (-1: none)
    visit_goal: Array  # [K] int32: PoI k is done once served this many slots (or empty)
    charge_to: Array  # [M,S]: energy to wait for at a station stop (0 elsewhere)
    replan_at: Array  # int32 scalar: the slot from which the plan is stale (replan)
    headings: int = struct.field(pytree_node=False, default=24)

    def _current(self, state: WorldState) -> tuple[Array, Array]:
        """(index of each MT's current stop [M], route finished [M])."""
        s = self.stop_pos.shape[1]
        idx = jnp.arange(s)
        open_ = (state.poi_data > 0) & (state.visits < self.visit_goal)
        pending = (self.poi_stop[:, None, :] == idx[None, :, None]) & open_
        charged = state.energy[:, None] >= self.charge_to
        done = ~jnp.any(pending, axis=2) & charged
        done |= idx[None, :] >= self.n_stops[:, None]
        return jnp.argmin(done, axis=1), jnp.all(done, axis=1)

    def finished(self, state: WorldState, params: WorldParams) -> Array:
        """Scalar bool: the plan is stale, or some MT with energy left has done every stop of a
        non-empty route."""
        del params
        _, over = self._current(state)
        return jnp.any(over & (self.n_stops > 0) & (state.energy > 0)) | (state.t >= self.replan_at)

    def act(self, key: Array, obs: Array, state: WorldState, params: WorldParams) -> Array:
        """Physical actions [M,2] towards each MT's current stop (zero length when finished)."""
        del key, obs
        p = params
        cur, over = self._current(state)
        m, n_v = self.path.shape[:2]
        on_leg = self.leg == cur[:, None]  # [M,P]
        start = jnp.broadcast_to(state.mt_pos[:, None, :], (m, n_v, 2))
        pad = jnp.array([-0.01, -0.01, 0.01, 0.01], jnp.float32)
        seen = ~move_blocked(
            start.reshape(-1, 2),
            (self.path - start).reshape(-1, 2),
            state.obstacles + pad,
            p,
        ).reshape(m, n_v)
        usable = on_leg & seen
        far = n_v - 1 - jnp.argmax(usable[:, ::-1], axis=1)
        goal = jnp.take_along_axis(self.stop_pos, cur[:, None, None], axis=1)[:, 0]
        fallback = waypoints(state.mt_pos, goal, state.obstacles, state.roadmap, p)
        vertex = jnp.take_along_axis(self.path, far[:, None, None], axis=1)[:, 0]
        way = jnp.where(jnp.any(usable, axis=1)[:, None], vertex, fallback)
        to_way = way - state.mt_pos
        length = jnp.minimum(jnp.sqrt(jnp.sum(to_way**2, axis=1)), p.max_move)
        theta0 = jnp.arctan2(to_way[:, 1], to_way[:, 0])
        theta, free = steer(state.mt_pos, theta0, length, way, state.obstacles, p, self.headings)
        length = jnp.where(over | ~free, 0.0, length)
        return jnp.stack([jnp.mod(theta, 2.0 * math.pi), length], axis=1)


@dataclass
class Plan:
    """One plan on the host: the routes (point indices and positions) and the model they solve."""

    problem: RoutingProblem
    solution: RouteSolution
    points: np.ndarray  # [P,2]: MT positions, stops, stations
    legs: list[list[np.ndarray]]  # per MT, per route node: path vertices [V,2] to reach it
    poi_stop: np.ndarray  # [K] stop point index draining PoI k (-1: none)
    follower: RouteFollower


def _bucket(n: int) -> int:
    """Padding size: the next power of two >= n (at least 8), so that few shapes compile."""
    return max(8, 1 << max(0, n - 1).bit_length())


@dataclass(frozen=True)
class PlannerPolicy:
    """The ``planner`` baseline (see the module docstring); a ``PlanningPolicy``."""

    replan_every: int = 25
    time_limit_s: float = 1.0
    fairness_weight: float = 1.0
    cover: float = 0.97
    margin: float = 0.05
    station_visits: int = 3
    headings: int = 24
    dwell_cap: int | None = None  # most slots per stop and plan (None: see short_energy_cap)
    short_energy_cap: int | None = 2  # the cap when the fleet's energy cannot take all data
    replan_changing: int = 10  # plans go stale after this many slots where the world changes
    window: int = 40  # slots planned ahead where data keeps arriving (it is replanned anyway)
    arriving_cap: int = 3  # slots per stop where data keeps arriving (the last crumbs wait)
    charge_margin: float = 0.1  # battery share charged beyond the plan's need (estimates err)
    reserve: float = 0.05  # battery share kept unplanned where MTs must reach a station

    def plan(self, state: WorldState, params: WorldParams) -> RouteFollower:
        """The jit-able follower of a fresh plan for ``state``."""
        return self.make_plan(state, params).follower

    def make_plan(self, state: WorldState, params: WorldParams) -> Plan:
        """Plan routes for every MT from ``state`` (host-side; ``time_limit_s`` per solve)."""
        p = params
        poi_pos = np.asarray(state.poi_pos, np.float64)
        data = np.asarray(state.poi_data, np.float64)
        base = np.asarray(quota_base(state, p), np.float64)
        rate = np.asarray(state.poi_rate, np.float64) if p.dynamic else np.zeros_like(data)
        boxes = np.asarray(state.obstacles, np.float64).reshape(-1, 4)
        mt_pos = np.asarray(state.mt_pos, np.float64)
        energy = np.asarray(state.energy, np.float64)
        t = int(state.t)
        horizon = p.num_slots - t
        if p.dynamic:
            horizon = min(horizon, self.window)
        has = expected_data(data, rate, np.full_like(data, horizon), p) > 0
        stops, stop_of = cover_stops(poi_pos, has, boxes, p, cover=self.cover, margin=self.margin)
        stations = _stations(state, p)
        points = np.concatenate([mt_pos, stops, stations])
        roadmap = Roadmap(boxes, p.width, p.height, self.margin)
        dist, corners = roadmap.distances(points)
        with np.errstate(invalid="ignore"):
            slots = np.maximum(np.ceil(dist / p.max_move - 1.0e-9) + corners, 1.0)
        eta = np.min(slots[: p.num_mts, p.num_mts : p.num_mts + len(stops)], axis=0)
        eta_poi = np.where(stop_of >= 0, eta[np.maximum(stop_of, 0)] if len(stops) else 0, 0.0)
        expected = np.where(stop_of >= 0, expected_data(data, rate, eta_poi, p), 0.0)
        table = stop_table(
            stops,
            stop_of,
            poi_pos,
            expected,
            base,
            1.0 + self.fairness_weight * (np.asarray(state.visits) == 0),
            p,
            self._cap(expected, energy, horizon, p),
        )
        field, _ = sensing_field(poi_pos, np.minimum(data, p.collect_fraction * base), p)
        problem = RoutingProblem(
            dist=dist,
            corners=corners,
            num_vehicles=p.num_mts,
            num_stations=len(stations),
            value=table.value,
            dwell=table.dwell,
            sense=table.sense,
            energy_left=energy - (self.reserve * p.initial_energy if p.charging else 0.0),
            battery=max(p.initial_energy, float(energy.max())),
            horizon=horizon,
            move_cost=p.move_cost,
            max_move=p.max_move,
            charge_rate=p.charge_rate if p.charging else 0.0,
            station_visits=self.station_visits,
            passing=passing_energy(points, slots, field, p),
        )
        solution = solve_routes(problem, self.time_limit_s)
        legs = [
            [roadmap.path(a, b) for a, b in zip([m, *r], r, strict=False)]
            for m, r in enumerate(solution.routes)
        ]
        poi_stop = np.where(stop_of >= 0, stop_of + p.num_mts, -1)
        changing = p.dynamic or p.charging
        stale = t + (self.replan_changing if changing else self.replan_every)
        follower = self._follower(problem, solution, legs, poi_stop, p).replace(
            visit_goal=jnp.asarray(np.asarray(state.visits) + table.need, jnp.int32),
            replan_at=jnp.int32(stale),
        )
        return Plan(problem, solution, points, legs, poi_stop, follower)

    def _cap(
        self, expected: np.ndarray, energy: np.ndarray, horizon: int, p: WorldParams
    ) -> int | None:
        """Slots per stop: ``dwell_cap``, else ``short_energy_cap`` when the fleet's energy
        (with all the charging the slots left allow) cannot take all the data, else none."""
        if self.dwell_cap is not None:
            return self.dwell_cap
        if p.dynamic:  # time binds, not energy: take the full quotas, come back for the rest
            return self.arriving_cap
        budget = energy.sum() + (p.charge_rate * p.num_mts * horizon if p.charging else 0.0)
        if p.sense_cost * expected.sum() > budget:
            return self.short_energy_cap  # the fleet cannot take it all: spread, for fairness
        return None

    def _follower(
        self,
        pb: RoutingProblem,
        sol: RouteSolution,
        legs: list[list[np.ndarray]],
        poi_stop: np.ndarray,
        p: WorldParams,
    ) -> RouteFollower:
        m, n_station0 = p.num_mts, p.num_mts + pb.num_stops
        s_pad = _bucket(max(len(r) for r in sol.routes))
        v_pad = _bucket(max(sum(len(leg) for leg in ls) for ls in legs))
        path = np.zeros((m, v_pad, 2), np.float32)
        leg = np.full((m, v_pad), -1, np.int32)
        stop_pos = np.zeros((m, s_pad, 2), np.float32)
        own = np.full((m, len(poi_stop)), -1, np.int32)
        charge_to = np.zeros((m, s_pad), np.float32)
        full = 0.99 * min(pb.battery, p.initial_energy)  # the world charges up to this
        for i, route in enumerate(sol.routes):
            row = 0
            for j, (node, verts) in enumerate(zip(route, legs[i], strict=True)):
                path[i, row : row + len(verts)] = verts
                leg[i, row : row + len(verts)] = j
                row += len(verts)
                stop_pos[i, j] = verts[-1]
                if node >= n_station0:  # a station: top up to what the plan needs, and more
                    need = sol.leave_energy[i][j] + self.charge_margin * pb.battery
                    charge_to[i, j] = min(full, need)
                own[i, poi_stop == node] = j
        return RouteFollower(
            path=jnp.asarray(path),
            leg=jnp.asarray(leg),
            stop_pos=jnp.asarray(stop_pos),
            n_stops=jnp.asarray([len(r) for r in sol.routes], jnp.int32),
            poi_stop=jnp.asarray(own),
            visit_goal=jnp.zeros(len(poi_stop), jnp.int32),
            charge_to=jnp.asarray(charge_to),
            replan_at=jnp.int32(np.iinfo(np.int32).max),
            headings=self.headings,
        )
