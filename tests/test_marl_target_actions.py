"""``action_space = "targets"`` (``marl.target_actions``): the actor sets greedy's score weights.

At weights (1, 1) the decoding is greedy exactly; other weights change which target an MT
claims in the way the weights say; MAPPO trains and acts through the decoding, remembers the
moves it made; under partial observation each MT decides from its own belief; the mode is
refused where it cannot apply.
"""

import dataclasses
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsense.errors import ConfigError
from chainsense.marl import checkpoint, mappo_rollout, mappo_train, networks, session
from chainsense.marl.config import MAX_DISTANCE_POWER, TrainConfig
from chainsense.marl.evaluate import evaluate
from chainsense.marl.learned import LearnedPolicy, load_policy
from chainsense.marl.policies import (
    GreedyPolicy,
    WeightedGreedyPolicy,
    weighted_goals,
)
from chainsense.marl.registry import JAIN_WEIGHT, ROUTE_ISOLATION, ROUTE_TERRITORY, baseline
from chainsense.marl.target_actions import FAIR_DECADES, decode, disk_to_square, score_weights
from chainsense.sim import world
from chainsense.sim.params import preset

SMALL = preset("small")
CHARGING_SMALL = dataclasses.replace(
    SMALL, num_stations=2, charge_radius=0.5, charge_rate=0.5, initial_energy=4.0
)
TARGETS = TrainConfig(algo="mappo", action_space="targets", num_envs=16, chunk_iters=2)


def _greedy_vs_unit_weights(params, key) -> jax.Array:
    """Largest |greedy - weighted_goals(1, 1)| per slot along a greedy episode."""
    greedy = GreedyPolicy()
    ones = jnp.ones((params.num_mts,), jnp.float32)

    def body(carry, k):
        s, obs = carry
        a = greedy.act(k, obs, s, params)
        b = weighted_goals(s, params, ones, ones)
        s2, obs2, _, _, _ = world.step(k, s, a, params)
        return (s2, obs2), jnp.max(jnp.abs(a - b))

    start = world.reset(key, params)
    return jax.lax.scan(body, start, jax.random.split(key, params.num_slots))[1]


@pytest.mark.parametrize("params", [SMALL, CHARGING_SMALL], ids=["small", "charging"])
def test_unit_weights_are_greedy_exactly(params) -> None:
    for seed in range(3):
        diff = jax.jit(_greedy_vs_unit_weights, static_argnums=0)(params, jax.random.PRNGKey(seed))
        assert float(jnp.max(diff)) == 0.0


@settings(max_examples=50, deadline=None)
@given(st.floats(-1.0, 1.0), st.floats(-1.0, 1.0), st.floats(1.0, MAX_DISTANCE_POWER))
def test_weights_span_their_ranges_and_centre_on_greedy(x: float, y: float, top: float) -> None:
    cfg = dataclasses.replace(TARGETS, max_distance_power=top)
    w, power = (float(v) for v in score_weights(jnp.array([x, y], jnp.float32), cfg))
    assert 10.0**-FAIR_DECADES * 0.999 <= w <= 10.0**FAIR_DECADES * 1.001
    assert 0.0 <= power <= top * 1.0001
    assert math.isclose(math.log10(w), FAIR_DECADES * x, abs_tol=1e-4)
    assert (power > 1.0) == (y > 0.0) or power == 1.0
    assert score_weights(jnp.zeros(2), cfg) == (1.0, 1.0)
    assert math.isclose(float(score_weights(jnp.array([0.0, 1.0]), cfg)[1]), top, rel_tol=1e-6)


@settings(max_examples=100, deadline=None)
@given(st.floats(0.0, 1.0), st.floats(0.0, 2.0 * math.pi))
def test_the_square_weights_reach_every_corner_and_keep_greedy_at_the_centre(
    radius: float, angle: float
) -> None:
    disk = jnp.array([radius * math.cos(angle), radius * math.sin(angle)], jnp.float32)
    u, v = (float(c) for c in disk_to_square(disk))
    assert -1.0 <= u <= 1.0 and -1.0 <= v <= 1.0
    if radius > 0.999:  # the circle lies on the square's edge
        assert max(abs(u), abs(v)) > 0.99
    assert (u >= 0) == (disk[0] >= 0) or abs(u) < 1e-6  # no weight changes side
    corner = jnp.array([-1.0, 1.0], jnp.float32) / math.sqrt(2.0)
    square = dataclasses.replace(TARGETS, max_distance_power=20.0, square_weights=True)
    w, power = score_weights(corner, square)
    assert math.isclose(float(w), 10.0**-FAIR_DECADES, rel_tol=1e-3)
    assert math.isclose(float(power), 20.0, rel_tol=1e-3)
    assert score_weights(jnp.zeros(2), square) == (1.0, 1.0)


def _two_clusters():
    """One MT midway between a visited PoI with 3 quotas of data and an unvisited one with 1,
    every other PoI empty, no obstacles."""
    params = dataclasses.replace(SMALL, num_obstacles=0, num_mts=1)
    state, _ = world.reset(jax.random.PRNGKey(0), params)
    k = params.num_pois
    pos = jnp.zeros((k, 2)).at[:, :].set(jnp.array([7.5, 7.5]))  # parked far away, empty
    pos = pos.at[0].set(jnp.array([1.0, 4.0])).at[1].set(jnp.array([7.0, 4.0]))
    quota = params.collect_fraction
    init = jnp.full((k,), 1.0).at[0].set(3.0)  # so that its quota is 3 quotas of the other's
    data = jnp.zeros((k,)).at[0].set(3.0 * quota).at[1].set(quota)
    visits = jnp.zeros((k,), jnp.int32).at[0].set(1).at[2:].set(1)
    state = state.replace(
        poi_pos=pos, poi_init=init, poi_data=data, visits=visits, mt_pos=jnp.array([[4.0, 4.0]])
    )
    return state, params


def test_the_fairness_weight_decides_between_more_data_and_an_unvisited_poi() -> None:
    state, params = _two_clusters()
    # greedy: 3 quotas beat 1 quota counted twice; weight 30: 31 quotas beat 3
    for weight, heading_x in ((1.0, -1.0), (30.0, 1.0)):
        act = weighted_goals(state, params, jnp.array([weight]), jnp.array([1.0]))
        theta, length = float(act[0, 0]), float(act[0, 1])
        assert length > 0
        assert math.copysign(1.0, math.cos(theta)) == heading_x


def test_the_distance_power_trades_data_for_nearness() -> None:
    state, params = _two_clusters()
    # the visited PoI's 3 quotas are 5 slots away, the unvisited one's 2 (weighted) 1 slot away
    state = state.replace(mt_pos=jnp.array([[6.0, 4.0]]))
    headings = []
    for power in (0.0, 2.0):
        act = weighted_goals(state, params, jnp.array([1.0]), jnp.array([power]))
        headings.append(math.copysign(1.0, math.cos(float(act[0, 0]))))
    assert headings == [-1.0, 1.0]  # power 0: most data wherever; power 2: the near one


def test_training_rollout_decodes_the_actor_and_remembers_the_moves_made() -> None:
    params = preset("energy")
    carry = mappo_train.init_carry(jax.random.PRNGKey(1), TARGETS, params)
    pool = mappo_rollout.world_pool.draw(TARGETS, params, jax.random.PRNGKey(3))
    new, (traj, _) = mappo_rollout.collect_step(TARGETS, params, pool, carry, None)
    sampled = networks.squash_to_disk(traj.z)
    moves = jax.vmap(lambda s, d: decode(s, d, params, TARGETS))(carry.env, sampled)
    made = networks.from_physical(moves, params.max_move)
    np.testing.assert_allclose(new.memory[..., :2], made, atol=1e-5)
    assert not np.allclose(new.memory[..., :2], sampled, atol=1e-3)  # PPO keeps its own sample


def test_a_fleet_whose_actor_says_zero_plays_greedy(tmp_path: Path) -> None:
    learner = mappo_train.init_carry(jax.random.PRNGKey(0), TARGETS, SMALL).learner
    zero = jax.tree_util.tree_map(jnp.zeros_like, learner.actor)  # mean 0 -> weights (1, 1)
    cfg = dataclasses.replace(TARGETS, eval_noise=0.0)
    seeds = range(10000, 10004)
    fleet = evaluate(LearnedPolicy(zero, cfg), SMALL, seeds).per_episode["energy_efficiency"]
    greedy = evaluate(GreedyPolicy(), SMALL, seeds).per_episode["energy_efficiency"]
    np.testing.assert_allclose(fleet, greedy, rtol=1e-6)
    fair = evaluate(WeightedGreedyPolicy(30.0, 1.5), SMALL, seeds).per_episode["energy_efficiency"]
    assert not np.allclose(fair, greedy)


def test_targets_train_save_and_load(tmp_path: Path) -> None:
    result = session.run(TARGETS, SMALL, seed=0, steps=2_000, out_dir=tmp_path / "run")
    assert result.env_steps >= 2_000
    policy, trained = load_policy("mappo", tmp_path / "run" / "fleet.msgpack", SMALL)
    assert policy.cfg.action_space == "targets" and trained == SMALL
    assert checkpoint.load(tmp_path / "run" / "fleet.msgpack").cfg == TARGETS


PARTIAL = dataclasses.replace(SMALL, observation="rich", observe_radius=2.0, share_delay=1)


def test_with_a_radius_that_sees_everything_the_belief_decoding_is_greedy() -> None:
    everything = dataclasses.replace(PARTIAL, observe_radius=100.0, share_delay=0)
    seeds = range(10000, 10004)
    believing = evaluate(WeightedGreedyPolicy(belief=True), everything, seeds).per_episode
    greedy = evaluate(GreedyPolicy(), everything, seeds).per_episode
    for metric in ("energy_efficiency", "data_collection_ratio", "fairness"):
        np.testing.assert_allclose(believing[metric], greedy[metric], rtol=1e-6)


def _partial_state(seed: int):
    """A partial-observation world some slots into a greedy episode, with a stale belief."""
    key = jax.random.PRNGKey(seed)
    state, obs = world.reset(key, PARTIAL)
    for k in jax.random.split(key, 6):
        state, obs, _, _, _ = world.step(
            k, state, GreedyPolicy().act(k, obs, state, PARTIAL), PARTIAL
        )
    return state


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**16), st.floats(-1.0, 1.0), st.floats(-1.0, 1.0))
def test_under_partial_observation_an_mt_decides_from_its_own_belief_only(
    seed: int, x: float, y: float
) -> None:
    state = _partial_state(seed)
    disk = jnp.array([[x, y], [-y, x]], jnp.float32)
    before = decode(state, disk, PARTIAL, TARGETS)
    k = jax.random.PRNGKey(seed + 1)
    # the true data and visit counts change, and so does the other MT's belief and weights
    hidden = state.replace(
        poi_data=jax.random.uniform(k, state.poi_data.shape) * state.poi_init,
        visits=jnp.zeros_like(state.visits),
        belief=state.belief.at[1].set(jax.random.uniform(k, state.belief[1].shape)),
    )
    after = decode(hidden, disk.at[1].set(jnp.array([0.3, -0.7])), PARTIAL, TARGETS)
    np.testing.assert_array_equal(before[0], after[0])
    # while what MT 0 believes does decide where it goes
    emptied = state.replace(belief=state.belief.at[0].set(0.0))  # nothing believed left: stays
    assert float(decode(emptied, disk, PARTIAL, TARGETS)[0, 1]) == 0.0


@pytest.mark.parametrize("name", ["greedy-belief", "greedy-near"])
def test_belief_baselines_collect_and_recharge_under_partial_observation(name: str) -> None:
    charging = dataclasses.replace(CHARGING_SMALL, observation="rich", observe_radius=2.0)
    seeds = range(10000, 10004)
    believing = evaluate(baseline(name), charging, seeds).mean
    assert believing["data_collection_ratio"] > 0.5
    assert believing["energy_charged"] > 0.0  # greedy's recharge rule holds on the belief
    local = evaluate(baseline("greedy-local"), charging, seeds).mean
    assert believing["energy_efficiency"] > 0.9 * local["energy_efficiency"]


def test_targets_train_and_act_under_partial_observation(tmp_path: Path) -> None:
    cfg = dataclasses.replace(TARGETS, max_distance_power=6.0, square_weights=True)
    session.run(cfg, PARTIAL, seed=0, steps=2_000, out_dir=tmp_path / "run")
    policy, _ = load_policy("mappo", tmp_path / "run" / "fleet.msgpack", PARTIAL)
    assert policy.cfg.max_distance_power == 6.0 and policy.cfg.square_weights
    table = evaluate(policy, PARTIAL, range(10000, 10002))
    assert table.mean["data_collection_ratio"] > 0.0


def test_targets_are_refused_where_they_cannot_apply() -> None:
    for changes, field in (
        ({"algo": "maddpg"}, "action_space"),
        ({"algo": "iddpg"}, "action_space"),
        ({"recharge_reflex": True}, "recharge_reflex"),
        ({"imitate": "planner"}, "imitate"),
        ({"max_distance_power": 0.5}, "max_distance_power"),
        ({"max_distance_power": float("nan")}, "max_distance_power"),
        ({"max_distance_power": 1e9}, "max_distance_power"),
        ({"max_distance_power": True}, "max_distance_power"),
        ({"backlog_weight": -0.5}, "backlog_weight"),
        ({"backlog_weight": float("inf")}, "backlog_weight"),
        ({"backlog_weight": float("nan")}, "backlog_weight"),
        ({"backlog_weight": 1e9}, "backlog_weight"),
        ({"backlog_weight": True}, "backlog_weight"),
        ({"backlog_weight": "2"}, "backlog_weight"),
        ({"jain_weight": -0.001}, "jain_weight"),
        ({"jain_weight": float("nan")}, "jain_weight"),
        ({"jain_weight": 11.0}, "jain_weight"),
        ({"jain_weight": "0.003"}, "jain_weight"),
        ({"isolation_weight": -1.0}, "isolation_weight"),
        ({"isolation_weight": float("nan")}, "isolation_weight"),
        ({"isolation_weight": 21.0}, "isolation_weight"),
        ({"isolation_weight": True}, "isolation_weight"),
        ({"territory_weight": 0.0}, "territory_weight"),  # would rank below no data at all
        ({"territory_weight": 1.5}, "territory_weight"),
        ({"territory_weight": float("-inf")}, "territory_weight"),
        ({"territory_weight": "0.01"}, "territory_weight"),
        ({"travel_weight": -0.1}, "travel_weight"),
        ({"travel_weight": 10.5}, "travel_weight"),
        ({"travel_weight": float("nan")}, "travel_weight"),
        ({"travel_weight": True}, "travel_weight"),
    ):
        with pytest.raises(ConfigError) as err:
            TrainConfig(**{"algo": "mappo", "action_space": "targets", **changes})
        assert err.value.field == field
    with pytest.raises(ConfigError, match="action_space"):
        TrainConfig.from_dict({"algo": "mappo", "action_space": "teleport"})
    with pytest.raises(ConfigError) as err:  # the backlog weighs greedy's targets, not moves
        TrainConfig(algo="mappo", backlog_weight=2.0)
    assert err.value.field == "backlog_weight"
    for name, value in (
        ("jain_weight", 0.003),
        ("isolation_weight", 6.0),
        ("territory_weight", 0.01),
        ("travel_weight", 0.3),
    ):
        with pytest.raises(ConfigError) as err:
            TrainConfig(algo="mappo", **{name: value})
        assert err.value.field == name


def test_the_jain_weight_is_refused_under_partial_observation_before_any_work(tmp_path) -> None:
    """The Jain term reads every PoI's visit count, which an MT under partial observation does
    not know: refused by name, and nothing is written."""
    cfg = TrainConfig(algo="mappo", action_space="targets", jain_weight=0.003)
    partial = preset("small").replace(observe_radius=2.0, share_delay=1)
    with pytest.raises(ConfigError) as err:
        session.run(cfg, partial, seed=0, steps=10, out_dir=tmp_path / "run")
    assert err.value.field == "jain_weight"
    assert not (tmp_path / "run").exists()


def test_the_decoding_at_the_centre_with_the_jain_weight_is_greedy_jain() -> None:
    """An actor that says zero, on a fleet with greedy-jain's fixed weights, moves as greedy-jain
    slot by slot, on a small world where data keeps arriving."""
    params = preset("small").replace(data_rate=0.02)
    cfg = TrainConfig(
        algo="mappo", action_space="targets", backlog_weight=2.0, jain_weight=JAIN_WEIGHT
    )
    heuristic = baseline("greedy-jain")
    zero = jnp.zeros((params.num_mts, 2), jnp.float32)

    def body(carry, k):
        s, obs = carry
        a = heuristic.act(k, obs, s, params)
        b = decode(s, zero, params, cfg)
        s2, obs2, _, _, _ = world.step(k, s, a, params)
        return (s2, obs2), jnp.max(jnp.abs(a - b))

    key = jax.random.PRNGKey(5)
    start = world.reset(key, params)
    scan = jax.jit(lambda st: jax.lax.scan(body, st, jax.random.split(key, params.num_slots))[1])
    assert float(jnp.max(scan(start))) == 0.0


def test_the_decoding_at_the_centre_with_the_route_terms_is_greedy_with_them() -> None:
    """An actor that says zero, on a fleet with greedy-route's isolation and territory terms,
    moves as greedy with those terms on each MT's belief, slot by slot, under partial
    observation (the terms read the beliefs and the MTs' positions, nothing else)."""
    params = preset("small").replace(observe_radius=2.0, share_delay=1)
    cfg = TrainConfig(
        algo="mappo",
        action_space="targets",
        isolation_weight=ROUTE_ISOLATION,
        territory_weight=ROUTE_TERRITORY,
    )
    heuristic = WeightedGreedyPolicy(
        belief=True, isolation_weight=ROUTE_ISOLATION, territory_weight=ROUTE_TERRITORY
    )
    zero = jnp.zeros((params.num_mts, 2), jnp.float32)

    def body(carry, k):
        s, obs = carry
        a = heuristic.act(k, obs, s, params)
        b = decode(s, zero, params, cfg)
        s2, obs2, _, _, _ = world.step(k, s, a, params)
        return (s2, obs2), jnp.max(jnp.abs(a - b))

    key = jax.random.PRNGKey(7)
    start = world.reset(key, params)
    scan = jax.jit(lambda st: jax.lax.scan(body, st, jax.random.split(key, params.num_slots))[1])
    assert float(jnp.max(scan(start))) == 0.0
