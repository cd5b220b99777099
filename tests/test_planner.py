"""The OR-Tools planner: feasible plans (obstacles, energy, stations, horizon), a bounded solve,
a jit-able follower, and episodes played in chunks exactly like the jitted rollout."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from chainsense.marl.evaluate import evaluate, rollout
from chainsense.marl.paths import Roadmap
from chainsense.marl.planner import PlannerPolicy, _stations
from chainsense.marl.policies import FollowerPolicy, GreedyPolicy, PlanningPolicy, RandomPolicy
from chainsense.marl.registry import baseline
from chainsense.marl.routing import RoutingProblem, route_profile, search_parameters, solve_routes
from chainsense.marl.stops import (
    expected_data,
    passing_energy,
    sensing_field,
    stop_table,
)
from chainsense.sim.geometry import segment_hits_boxes
from chainsense.sim.metrics import ALL_METRICS
from chainsense.sim.params import preset
from chainsense.sim.world import quota_base, reset

SMALL = preset("small")
PAPER = preset("paper")
FAST = PlannerPolicy(time_limit_s=0.2)


def _plan(params, seed, **energy):
    state, _ = reset(jax.random.PRNGKey(seed), params)
    if energy:
        state = state.replace(energy=jnp.full((params.num_mts,), energy["energy"], jnp.float32))
    return state, FAST.make_plan(state, params)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planned_paths_never_touch_an_obstacle_or_leave_the_area(seed):
    state, plan = _plan(PAPER, seed)
    boxes = state.obstacles
    assert sum(len(r) for r in plan.solution.routes) > 10
    for m, legs in enumerate(plan.legs):
        if not legs:
            continue
        verts = np.concatenate([np.asarray(state.mt_pos[m : m + 1]), *legs])
        start, delta = jnp.asarray(verts[:-1]), jnp.asarray(np.diff(verts, axis=0))
        assert not np.any(segment_hits_boxes(start, delta, boxes))
        assert np.all((verts >= 0) & (verts <= [PAPER.width, PAPER.height]))
        # the leg lengths are the distances the solver planned with
        route = plan.solution.routes[m]
        for a, b, leg in zip([m, *route], route, legs, strict=False):
            prev = plan.points[a]
            length = np.sum(np.linalg.norm(np.diff(np.vstack([prev, leg]), axis=0), axis=1))
            assert length == pytest.approx(plan.problem.dist[a, b])


@pytest.mark.parametrize("energy", [None, 6.0, 1.5])
def test_plans_never_spend_more_energy_than_is_left_nor_more_slots(energy):
    kw = {} if energy is None else {"energy": energy}
    state, plan = _plan(SMALL, 3, **kw)
    pb = plan.problem
    for m, route in enumerate(plan.solution.routes):
        levels, ends = route_profile(pb, m, route)
        if route:
            assert levels.min() >= -1.0e-6  # move + sense along the route <= energy at plan time
            assert ends[-1] <= pb.horizon
        way = sum(pb.arc_energy()[a, b] for a, b in zip([m, *route], route, strict=False))
        sense = sum(pb.sense[p - SMALL.num_mts] for p in route)
        assert way + sense <= float(state.energy[m]) + 1.0e-6  # moving, passing and stops
    if energy == 1.5:  # a tight budget: the solver drops stops instead of overspending
        assert plan.solution.dropped


def _line_problem(stations: int, energy: float = 10.0) -> RoutingProblem:
    stops = np.array([[x, 1.0] for x in (5.0, 10.0, 15.0, 20.0, 25.0, 30.0)])
    points = np.concatenate([[[0.0, 1.0]], stops, np.array([[2.0, 2.0]])[:stations]])
    dist, corners = Roadmap(np.zeros((0, 4)), 40.0, 10.0).distances(points)
    return RoutingProblem(
        dist=dist,
        corners=corners,
        num_vehicles=1,
        num_stations=stations,
        value=np.ones(6),
        dwell=np.full(6, 2),
        sense=np.full(6, 3.0),
        energy_left=np.array([energy]),
        battery=10.0,
        horizon=300,
        move_cost=0.1,
        max_move=1.0,
        charge_rate=2.0,
        station_visits=4,
    )


def test_a_station_is_visited_before_the_battery_would_run_out():
    alone = solve_routes(_line_problem(0), 0.3)
    assert len(alone.routes[0]) == 2  # 10 energy: two stops (3 sensing each + travel)
    pb = _line_problem(1)
    sol = solve_routes(pb, 0.5)
    route, station = sol.routes[0], 7
    assert station in route and len([p for p in route if p != station]) == 6
    levels, _ = route_profile(pb, 0, route)
    assert levels.min() >= -1.0e-6  # never below empty: charged in time
    # every stretch between charges fits in one battery
    assert route.index(station) <= 2


def test_the_solver_gets_the_time_limit():
    assert search_parameters(0.25).time_limit.ToMilliseconds() == 250
    sol = solve_routes(_line_problem(0), 0.25)
    assert sol.time_limit_s == 0.25
    _, plan = _plan(SMALL, 0)
    assert plan.solution.time_limit_s == FAST.time_limit_s == 0.2


def test_no_stations_yet():
    state, _ = reset(jax.random.PRNGKey(0), SMALL)
    assert _stations(state, SMALL).shape == (0, 2)


def test_follower_is_a_jittable_policy_with_physical_actions():
    state, plan = _plan(SMALL, 1)
    follower = plan.follower
    assert isinstance(FAST, PlanningPolicy) and isinstance(follower, FollowerPolicy)
    obs = jnp.zeros((SMALL.num_mts, 3))
    act = jax.jit(lambda f, s: f.act(None, obs, s, SMALL))
    a = act(follower, state)
    assert a.shape == (SMALL.num_mts, 2)
    assert np.all((a[:, 0] >= 0) & (a[:, 0] < 2 * math.pi + 1e-6))
    assert np.all((a[:, 1] >= 0) & (a[:, 1] <= SMALL.max_move + 1e-6))
    assert not bool(jax.jit(lambda f, s: f.finished(s, SMALL))(follower, state))
    drained = state.replace(poi_data=jnp.zeros_like(state.poi_data))
    assert bool(follower.finished(drained, SMALL))


def test_planner_collects_at_least_as_much_as_random_on_small():
    seeds = range(3)
    pl = evaluate(FAST, SMALL, seeds, "planner")
    rd = evaluate(RandomPolicy(), SMALL, seeds, "random")
    assert set(pl.per_episode) == set(ALL_METRICS)
    assert np.all(pl.per_episode["data_collected"] >= rd.per_episode["data_collected"])
    for name in ("data_collection_ratio", "energy_usage_ratio", "fairness"):
        assert np.all((pl.per_episode[name] >= 0) & (pl.per_episode[name] <= 1 + 1e-6))
    assert np.all(pl.per_episode["collisions"] == 0)
    assert np.all(pl.per_episode["slots"] <= SMALL.num_slots)


def test_recorded_planner_rollout_has_the_jitted_shapes():
    r = rollout(FAST, SMALL, jax.random.PRNGKey(4), record=True)
    t, m, k = SMALL.num_slots, SMALL.num_mts, SMALL.num_pois
    assert r.positions.shape == (t + 1, m, 2) and r.rewards.shape == (t, m)
    assert r.data_history.shape == (t + 1, k)
    assert sum(e.amount for e in r.events) == pytest.approx(r.metrics["data_collected"], rel=1e-4)
    assert baseline("planner") == PlannerPolicy()


@struct.dataclass
class _Fixed:
    """A PlanningPolicy whose every plan is a fixed policy: chunks must match the jitted scan."""

    inner: object
    replan_every: int = struct.field(pytree_node=False, default=7)

    def plan(self, state, params):
        return _Never(self.inner)


@struct.dataclass
class _Never:
    inner: object

    def act(self, key, obs, state, params):
        return self.inner.act(key, obs, state, params)

    def finished(self, state, params):
        return jnp.array(False)


@pytest.mark.parametrize("pol", [RandomPolicy(), GreedyPolicy()], ids=["random", "greedy"])
def test_chunked_episodes_equal_the_jitted_rollout(pol):
    seeds = range(3)
    jitted = evaluate(pol, SMALL, seeds)
    chunked = evaluate(_Fixed(pol), SMALL, seeds)
    for name in ALL_METRICS:
        np.testing.assert_allclose(chunked.per_episode[name], jitted.per_episode[name], rtol=1e-5)
    a = rollout(pol, SMALL, jax.random.PRNGKey(5), record=True)
    b = rollout(_Fixed(pol), SMALL, jax.random.PRNGKey(5), record=True)
    np.testing.assert_allclose(a.positions, b.positions, atol=1e-5)
    np.testing.assert_allclose(a.data_history, b.data_history, atol=1e-6)
    assert len(a.events) == len(b.events)


CHARGING = preset("charging")


@pytest.mark.parametrize("energy", [3.0, 12.0])
def test_station_dwell_makes_the_energy_feasible_on_charging(energy):
    """Every top-up is no more than the battery has room for, the plan parks at the station the
    slots the world's charge rate needs for it, and no stretch runs below the reserve."""
    state, _ = reset(jax.random.PRNGKey(2), CHARGING)
    state = state.replace(energy=jnp.full((CHARGING.num_mts,), energy, jnp.float32))
    plan = PlannerPolicy(time_limit_s=0.5).make_plan(state, CHARGING)
    pb, sol = plan.problem, plan.solution
    assert pb.charge_rate == CHARGING.charge_rate and pb.passing is not None
    first_station = CHARGING.num_mts + pb.num_stops
    visited = 0
    for m, route in enumerate(sol.routes):
        levels, ends = route_profile(pb, m, route, sol.charged[m])
        assert levels.min() >= -1.0e-6  # energy_left is the MT's energy less the reserve
        assert not route or ends[-1] <= pb.horizon
        np.testing.assert_allclose(levels[:, 1], sol.leave_energy[m], atol=0.05)  # rounding
        for j, node in enumerate(route):
            if node < first_station:
                assert sol.charged[m][j] == 0.0
                continue
            visited += 1
            got = sol.charged[m][j]
            assert 0.0 < got <= pb.battery - levels[j, 0] + 1.0e-3  # room in the battery
            if j + 1 < len(route):  # the next arrival waits for the charge to come in
                slots = math.ceil(got / CHARGING.charge_rate - 1e-9)
                assert sol.arrive_slot[m][j + 1] - sol.arrive_slot[m][j] >= slots
    assert visited > 0  # 3 energy: no route gets far without a station


def test_followers_wait_at_a_station_until_the_plan_s_energy_is_in():
    state, _ = reset(jax.random.PRNGKey(2), CHARGING)
    state = state.replace(energy=jnp.full((CHARGING.num_mts,), 3.0, jnp.float32))
    plan = PlannerPolicy(time_limit_s=0.5).make_plan(state, CHARGING)
    f, sol = plan.follower, plan.solution
    m = next(i for i, r in enumerate(sol.routes) if max(sol.charged[i], default=0) > 0)
    j = int(np.argmax(np.asarray(sol.charged[m]) > 0))
    want = float(f.charge_to[m, j])
    assert want >= sol.leave_energy[m][j] - 1.0e-3  # at least what the plan leaves with
    assert want <= 0.99 * CHARGING.initial_energy + 1.0e-6  # the world charges up to the battery
    # parked at that station with the stops before it done: it stays until charged
    done_before = state.replace(
        mt_pos=state.mt_pos.at[m].set(f.stop_pos[m, j]),
        visits=jnp.maximum(state.visits, f.visit_goal * (f.poi_stop[m] >= 0)),
        energy=state.energy.at[m].set(want - 1.0),
    )
    done_before = done_before.replace(
        poi_data=jnp.where((f.poi_stop[m] >= 0) & (f.poi_stop[m] < j), 0.0, state.poi_data)
    )
    cur, _ = f._current(done_before)
    assert int(cur[m]) == j
    charged = done_before.replace(energy=done_before.energy.at[m].set(want))
    cur, _ = f._current(charged)
    assert int(cur[m]) != j


def test_plans_go_stale_where_the_world_changes():
    for params, every in ((CHARGING, 10), (preset("dynamic"), 10), (SMALL, 25)):
        state, _ = reset(jax.random.PRNGKey(0), params)
        follower = PlannerPolicy(time_limit_s=0.2).make_plan(state, params).follower
        assert int(follower.replan_at) == every
        later = state.replace(t=jnp.int32(every))
        assert bool(follower.finished(later, params))


def test_where_data_keeps_arriving_a_stop_is_worth_the_data_at_arrival():
    dyn = preset("dynamic")
    data, rate = np.array([0.1, 0.9, 0.0]), np.array([0.01, 0.01, 0.0])
    got = expected_data(data, rate, np.array([20.0, 20.0, 5.0]), dyn)
    np.testing.assert_allclose(got, [0.3, 1.0, 0.0])  # bounded by the buffer of 1
    np.testing.assert_allclose(expected_data(data, rate, np.full(3, 20.0), PAPER), data)
    state, _ = reset(jax.random.PRNGKey(0), dyn)  # the world's rule, which the planner reads
    np.testing.assert_allclose(quota_base(state.replace(poi_init=state.poi_init * 0.4), dyn), 1.0)
    # one stop over two PoIs: it dwells for the fuller one, at most the cap
    pos = np.array([[1.0, 1.0], [1.2, 1.0]])
    args = (np.array([[1.1, 1.0]]), np.array([0, 0]), pos)
    table = stop_table(*args, np.array([0.3, 1.0]), np.ones(2), np.ones(2), dyn, None)
    assert table.dwell.tolist() == [5] and table.need.tolist() == [2, 5]
    assert table.value[0] == pytest.approx(1.3) and table.sense[0] == pytest.approx(1.3)
    capped = stop_table(*args, np.array([0.3, 1.0]), np.ones(2), np.ones(2), dyn, 3)
    assert capped.dwell.tolist() == [3] and capped.value[0] == pytest.approx(0.3 + 0.6)


def test_passing_energy_counts_what_is_sensed_on_the_way():
    params = SMALL
    pois = np.array([[4.0, 4.0]])
    field, _ = sensing_field(pois, np.array([0.5]), params)
    points = np.array([[1.0, 4.0], [7.0, 4.0], [1.0, 1.0], [7.0, 1.0]])
    dist, corners = Roadmap(np.zeros((0, 4)), params.width, params.height).distances(points)
    slots = np.maximum(np.ceil(dist / params.max_move - 1e-9) + corners, 1.0)
    cost = passing_energy(points, slots, field, params)
    # past the PoI (within range for about 2 of the 5 slots on the way): about 2 quotas
    assert 0.5 <= cost[0, 1] <= 1.5 and cost[1, 0] == pytest.approx(cost[0, 1])
    assert cost[2, 3] == 0.0  # 3 away from the PoI: nothing in range
    assert np.all(np.diag(cost) == 0.0)
    none, _ = sensing_field(pois, np.array([0.0]), params)  # drained: passing is free
    assert np.all(passing_energy(points, slots, none, params) == 0.0)
