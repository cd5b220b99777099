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
from chainsense.sim.geometry import segment_hits_boxes
from chainsense.sim.metrics import ALL_METRICS
from chainsense.sim.params import preset
from chainsense.sim.world import reset

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
        move = sum(pb.dist[a, b] for a, b in zip([m, *route], route, strict=False))
        sense = sum(pb.sense[p - SMALL.num_mts] for p in route)
        assert SMALL.move_cost * move + sense <= float(state.energy[m]) + 1.0e-6
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
