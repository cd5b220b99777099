"""The planner's OR-Tools model: a prize-collecting vehicle routing problem with energy and time.

Points are the ``V`` vehicle (MT) positions, then ``N`` stops (a stop senses a cluster of PoIs),
then ``S`` charging stations. The solver's nodes: one start node per vehicle, one shared dummy
end node (routes are open: an MT may end anywhere), the stops, and for every station
``station_visits`` x ``len(charge_levels)`` optional top-up copies. Dimensions:

* ``energy``: energy used since the last charge, at most ``battery``; a vehicle starts at
  ``battery - energy_left`` (so without stations a route uses at most the energy left). Arc
  i -> j costs ``sense[i] + move_cost * dist[i, j] + passing[i, j]`` (``passing``: what the
  world's automatic sensing is expected to take on the way, see ``marl.stops``). A station copy
  charges a fixed level (a full, 3/4, 1/2 or 1/4 battery by default) as negative energy of its
  own, and its cumul must be at least that level: an MT never charges more than it has used
  (the world's battery cannot overflow). Consecutive copies of one station (distance 0) add
  up, so the solver tops up by what the rest of the route needs, in quarter batteries.
* ``time``: slots from now, at most ``horizon``; arc i -> j takes the service slots of i
  (``dwell - 1`` at a stop: the arrival slot already senses; ``ceil(level / charge_rate) - 1``
  at a station copy: the world gives ``charge_rate`` per slot, the arrival slot included) plus
  ``max(1, ceil(dist / max_move) + corners)`` to travel (every corner of an obstacle-aware path
  may cost one partly used slot).

(Custom constraints tying a station's energy slack to its time slack, the natural model of a
top-up of any size, made OR-Tools 9.15 either find no route at all or crash in its search on
the ``charging`` preset; fixed levels use only the dimensions' own bounds.)

Stops are optional with a drop penalty ``drop_weight * value`` (in the same integer energy
units as the arc costs; the default 1e4 makes a unit of data worth 1e5 units of travel, so the
objective is in effect lexicographic: collect the most value the energy and time allow, then
travel the least): the solver drops the least valuable stops only when energy or time binds.
Station copies cost nothing to drop. Arc cost = move energy (+ a tiny distance term so that a
world without move cost still prefers short routes) and a small global span cost on time
balances the vehicles and keeps charging dwells no longer than needed. Search:
PATH_CHEAPEST_ARC first solution, then guided local search, bounded by ``time_limit_s`` seconds
of wall clock per solve (the bound of one plan).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

SCALE = 1000  # integer units per unit of energy
_BIG = 10**12


@dataclass(frozen=True)
class RoutingProblem:
    """One planning instance; distances from ``marl.paths.Roadmap.distances`` over the points."""

    dist: np.ndarray  # [P,P] obstacle-aware path length (+inf: no path), P = V + N + S
    corners: np.ndarray  # [P,P] corners on that path
    num_vehicles: int
    num_stations: int
    value: np.ndarray  # [N] prize of each stop (data it drains)
    dwell: np.ndarray  # [N] slots parked at each stop
    sense: np.ndarray  # [N] energy sensing costs at each stop (an upper bound)
    energy_left: np.ndarray  # [V]
    battery: float  # most energy an MT can hold (a full charge)
    horizon: int  # slots left in the episode
    move_cost: float
    max_move: float
    charge_rate: float = 0.0  # energy a station gives per slot (> 0 when there are stations)
    station_visits: int = 2  # optional visits of every station per plan
    charge_levels: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25)  # top-ups offered (battery shares)
    drop_weight: float = 1.0e4
    passing: np.ndarray | None = None  # [P,P] energy sensed on the way from i to j (None: 0)

    def arc_energy(self) -> np.ndarray:
        """[P,P] energy of the way from i to j: moving plus what is sensed in passing."""
        extra = 0.0 if self.passing is None else self.passing
        with np.errstate(invalid="ignore"):
            return self.move_cost * self.dist + extra

    @property
    def num_stops(self) -> int:
        """N."""
        return len(self.value)


@dataclass
class RouteSolution:
    """Routes as point indices (stops and stations, without the start), per vehicle."""

    routes: list[list[int]]
    time_limit_s: float  # the limit the solver was given
    wall_s: float
    found: bool
    objective: int = 0
    dropped: list[int] = field(default_factory=list)  # stop point indices left out
    leave_energy: list[list[float]] = field(default_factory=list)  # planned level leaving a node
    arrive_slot: list[list[int]] = field(default_factory=list)  # planned arrival, slots from now
    charged: list[list[float]] = field(default_factory=list)  # energy charged at each node


def search_parameters(time_limit_s: float) -> pywrapcp.DefaultRoutingSearchParameters:
    """PATH_CHEAPEST_ARC + guided local search, stopped after ``time_limit_s`` seconds."""
    sp = pywrapcp.DefaultRoutingSearchParameters()
    sp.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    sp.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    sp.time_limit.FromMilliseconds(max(1, round(1000 * time_limit_s)))
    return sp


def _layout(pb: RoutingProblem) -> tuple[np.ndarray, np.ndarray]:
    """Point index of every solver node (starts, end (-1), stops, station copies) and the
    energy each node charges (a station copy's level; 0 elsewhere)."""
    v, n, s = pb.num_vehicles, pb.num_stops, pb.num_stations
    levels = np.asarray(pb.charge_levels, np.float64) * pb.battery
    copies = pb.station_visits * len(levels)
    stations = np.repeat(np.arange(v + n, v + n + s), copies)
    layout = np.concatenate([np.arange(v), [-1], np.arange(v, v + n), stations]).astype(np.int64)
    charge = np.concatenate([np.zeros(v + 1 + n), np.tile(levels, s * pb.station_visits)])
    return layout, charge


def travel_slots(pb: RoutingProblem) -> np.ndarray:
    """[P,P] slots to get from point i to point j and sense (or charge) there once."""
    with np.errstate(invalid="ignore"):
        raw = np.ceil(pb.dist / pb.max_move - 1.0e-9) + pb.corners
    return np.where(np.isfinite(pb.dist), np.maximum(raw, 1.0), np.inf)


def node_tables(pb: RoutingProblem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per point: (service slots after arrival, own energy, kind 0 start / 1 stop / 2 station);
    a station's service and energy depend on what it charges (see :func:`charge_slots`)."""
    v, n, s = pb.num_vehicles, pb.num_stops, pb.num_stations
    service = np.concatenate([np.zeros(v), np.asarray(pb.dwell) - 1, np.zeros(s)])
    own = np.concatenate([np.zeros(v), pb.sense, np.zeros(s)])
    kind = np.concatenate([np.zeros(v), np.ones(n), np.full(s, 2)]).astype(np.int64)
    return service, own, kind


def charge_slots(pb: RoutingProblem, charged: np.ndarray | float) -> np.ndarray:
    """Slots parked after the arrival slot to charge ``charged`` (the arrival slot charges)."""
    rate = max(pb.charge_rate, 1.0e-12)
    return np.maximum(np.ceil(np.asarray(charged) / rate - 1.0e-9) - 1.0, 0.0)


def _matrices(
    pb: RoutingProblem, layout: np.ndarray, charge: np.ndarray
) -> tuple[list, list, list]:
    """Integer (cost, energy, time) transit matrices over solver nodes."""
    service, own, _ = node_tables(pb)
    pts = np.where(layout < 0, 0, layout)
    node_service = np.where(charge > 0, charge_slots(pb, charge), service[pts])
    node_own = np.where(charge > 0, -charge, own[pts])
    node_own[layout < 0] = 0.0
    d = pb.dist[np.ix_(pts, pts)]
    slots = travel_slots(pb)[np.ix_(pts, pts)]
    ok = np.isfinite(d)
    d = np.where(ok, d, 0.0)
    cost = np.where(ok, np.ceil(SCALE * (pb.move_cost + 1.0e-3) * d), _BIG)
    arc = np.where(ok, pb.arc_energy()[np.ix_(pts, pts)], 0.0)
    energy = np.ceil(SCALE * (node_own[:, None] + arc))
    energy = np.where(ok, energy, _BIG)
    time_ = np.where(ok, node_service[:, None] + slots, pb.horizon + 1)
    end = layout < 0  # into the end node: only the service of the last node
    cost[:, end], time_[:, end] = 0, node_service[:, None]
    energy[:, end] = np.ceil(SCALE * node_own)[:, None]
    for mat in (cost, energy, time_):
        mat[end, :] = 0
        np.fill_diagonal(mat, 0)
    return (
        cost.astype(np.int64).tolist(),
        energy.astype(np.int64).tolist(),
        np.minimum(time_, pb.horizon + 1).astype(np.int64).tolist(),
    )


def solve_routes(pb: RoutingProblem, time_limit_s: float) -> RouteSolution:
    """Solve ``pb`` within ``time_limit_s`` seconds (see the module docstring for the model)."""
    t0 = time.perf_counter()
    v = pb.num_vehicles
    if pb.num_stations and pb.charge_rate <= 0:
        raise ValueError("stations need a charge_rate > 0")
    layout, charge = _layout(pb)
    manager = pywrapcp.RoutingIndexManager(len(layout), v, list(range(v)), [v] * v)
    model = pywrapcp.RoutingModel(manager)
    cost, energy, time_ = _matrices(pb, layout, charge)
    model.SetArcCostEvaluatorOfAllVehicles(model.RegisterTransitMatrix(cost))

    cap = math.floor(SCALE * pb.battery)
    model.AddDimensionWithVehicleCapacity(
        model.RegisterTransitMatrix(energy), cap, [cap] * v, False, "energy"
    )
    e_dim = model.GetDimensionOrDie("energy")
    horizon = max(pb.horizon, 0)
    model.AddDimension(model.RegisterTransitMatrix(time_), 0, horizon, True, "time")
    t_dim = model.GetDimensionOrDie("time")
    t_dim.SetGlobalSpanCostCoefficient(10)
    for m in range(v):
        used = cap - math.floor(SCALE * max(float(pb.energy_left[m]), 0.0))
        e_dim.CumulVar(model.Start(m)).SetValue(min(max(used, 0), cap))
        e_dim.SlackVar(model.Start(m)).SetValue(0)
        t_dim.SlackVar(model.Start(m)).SetValue(0)
    for node in range(v + 1, len(layout)):
        idx = manager.NodeToIndex(node)
        e_dim.SlackVar(idx).SetValue(0)
        if charge[node] > 0:  # charge no more than was used: the battery never overflows
            e_dim.CumulVar(idx).SetMin(math.ceil(SCALE * charge[node]))
            model.AddDisjunction([idx], 0)
            continue
        prize = pb.drop_weight * SCALE * float(pb.value[layout[node] - v])
        model.AddDisjunction([idx], max(1, min(_BIG, round(prize))))

    sp = search_parameters(time_limit_s)
    found = model.SolveWithParameters(sp)
    limit = sp.time_limit.ToMilliseconds() / 1000.0
    if found is None:
        return RouteSolution([[] for _ in range(v)], limit, time.perf_counter() - t0, False)
    routes: list[list[int]] = []
    leave: list[list[float]] = []
    arrive: list[list[int]] = []
    charged: list[list[float]] = []
    for m in range(v):
        idx = found.Value(model.NextVar(model.Start(m)))
        route, lv, at, got = [], [], [], []
        while not model.IsEnd(idx):
            node = manager.IndexToNode(idx)
            route.append(int(layout[node]))
            own = -charge[node] if charge[node] > 0 else pb.sense[layout[node] - v]
            used = found.Value(e_dim.CumulVar(idx)) + SCALE * own
            lv.append((cap - used) / SCALE)
            got.append(float(charge[node]))
            at.append(int(found.Value(t_dim.CumulVar(idx))))
            idx = found.Value(model.NextVar(idx))
        routes.append(route)
        leave.append(lv)
        arrive.append(at)
        charged.append(got)
    visited = {p for r in routes for p in r}
    dropped = [p for p in range(v, v + pb.num_stops) if p not in visited]
    return RouteSolution(
        routes,
        limit,
        time.perf_counter() - t0,
        True,
        found.ObjectiveValue(),
        dropped,
        leave,
        arrive,
        charged,
    )


def route_profile(
    pb: RoutingProblem, m: int, route: list[int], charged: list[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Energy left on arrival at, and after leaving, every node of vehicle ``m``'s route, and the
    slot each node's service ends (floats, from the model's own tables): ([R,2], [R]).

    ``charged``: energy taken at each node (stations only; default: up to a full battery), each
    station taking ``ceil(charged / charge_rate) - 1`` slots after its arrival slot."""
    service, own, kind = node_tables(pb)
    slots = travel_slots(pb)
    arc = pb.arc_energy()
    level, t, prev = float(pb.energy_left[m]), 0.0, m
    energy, ends = [], []
    for i, p in enumerate(route):
        level -= arc[prev, p]
        arrive = level
        t += slots[prev, p] + service[p]
        if kind[p] == 2:
            got = pb.battery - level if charged is None else charged[i]
            level += got
            t += float(charge_slots(pb, got))
        else:
            level -= own[p]
        energy.append((arrive, level))
        ends.append(t)
        prev = p
    return np.array(energy).reshape(-1, 2), np.array(ends)
