"""Baselines: one jit-able signature, physical actions in range, greedy a real bar above random."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsense.errors import ConfigError
from chainsense.marl.evaluate import evaluate, rollout
from chainsense.marl.policies import (
    GreedyPolicy,
    Policy,
    RandomPolicy,
    WeightedGreedyPolicy,
    jain_gain,
    nearer_to_another,
    neighbours_with_data,
)
from chainsense.marl.registry import baseline
from chainsense.sim.maps import WorldMap
from chainsense.sim.params import WorldParams, preset
from chainsense.sim.world import reset, reset_with_map, step

SMALL = preset("small")


@pytest.mark.parametrize("pol", [RandomPolicy(), GreedyPolicy()])
def test_actions_are_physical_and_jittable(pol):
    assert isinstance(pol, Policy)
    s, obs = reset(jax.random.PRNGKey(0), SMALL)
    a = jax.jit(lambda p, k, o, st: p.act(k, o, st, SMALL))(pol, jax.random.PRNGKey(1), obs, s)
    assert a.shape == (SMALL.num_mts, 2)
    assert np.all((a[:, 0] >= 0) & (a[:, 0] < 2 * math.pi + 1e-6))
    assert np.all((a[:, 1] >= 0) & (a[:, 1] <= SMALL.max_move + 1e-6))


def test_baseline():
    assert isinstance(baseline("greedy"), GreedyPolicy)
    with pytest.raises(ConfigError, match="policy"):
        baseline("oracle")


def test_greedy_beats_random_clearly():
    seeds = range(6)
    g = evaluate(GreedyPolicy(), SMALL, seeds, "greedy").mean
    r = evaluate(RandomPolicy(), SMALL, seeds, "random").mean
    assert g["data_collection_ratio"] > r["data_collection_ratio"] + 0.3
    assert g["fairness"] > r["fairness"]
    assert g["energy_efficiency"] > r["energy_efficiency"]
    assert g["collisions"] <= r["collisions"]


def test_greedy_walks_around_a_wall_to_reach_data_behind_it():
    p = WorldParams(
        width=10.0,
        height=10.0,
        num_pois=1,
        num_obstacles=1,
        num_mts=1,
        initial_energy=50.0,
        sensing_range=0.5,
        max_move=1.0,
        num_slots=30,
        obstacle_min_size=0.1,
        obstacle_max_size=4.0,
        observation="paper",
    )
    # a wall 3 units tall straight between the start (5, 5) and the only PoI at (8, 5)
    m = WorldMap(
        np.array([[8.0, 5.0]], np.float32),
        np.array([1.0], np.float32),
        np.array([[6.4, 3.5, 6.6, 6.5]], np.float32),
    )
    s, obs = reset_with_map(m, p)
    act = jax.jit(lambda o, st: GreedyPolicy().act(None, o, st, p))
    for _ in range(p.num_slots):
        s, obs, _, _done, info = step(jax.random.PRNGKey(0), s, act(obs, s), p)
        assert not bool(info.collision[0])
    assert float(s.poi_data[0]) == 0.0  # reached and drained


def test_two_greedy_mts_split_up():
    r = rollout(GreedyPolicy(), preset("paper"), jax.random.PRNGKey(0), record=True)
    pos = r.positions
    apart = np.linalg.norm(pos[:, 0] - pos[:, 1], axis=1)
    assert np.mean(apart[50:]) > 2 * preset("paper").sensing_range
    assert r.metrics["data_collection_ratio"] > 0.8
    assert r.events and all(e.amount > 0 for e in r.events)
    total = sum(e.amount for e in r.events)
    assert total == pytest.approx(r.metrics["data_collected"], rel=1e-3)


def test_policy_with_array_leaves_does_not_retrace():
    from flax import struct

    @struct.dataclass
    class Fixed:
        heading: jnp.ndarray

        def act(self, key, obs, state, params):
            return jnp.tile(jnp.stack([self.heading, jnp.float32(0.5)]), (params.num_mts, 1))

    a = evaluate(Fixed(jnp.float32(0.0)), SMALL, [0], "fixed")
    b = evaluate(Fixed(jnp.float32(math.pi)), SMALL, [0], "fixed")
    assert a.mean["data_collected"] != b.mean["data_collected"]


def _two_pois(**changes: float) -> WorldParams:
    """A 10 x 10 world (unless ``changes`` say otherwise) with one MT and two PoIs, for tests that
    set the data by hand."""
    fields: dict[str, float | int | str] = dict(
        width=10.0,
        height=10.0,
        num_pois=2,
        num_obstacles=0,
        num_mts=1,
        sensing_range=0.5,
        num_slots=30,
        observation="paper",
    )
    return WorldParams(**(fields | changes))  # type: ignore[arg-type]


def test_greedy_values_a_refilled_buffer_as_the_world_senses_it():
    """Where data keeps arriving the world's quota is a fraction of the buffer, not of the
    initial data: a PoI that started nearly empty and has filled up is worth the trip."""
    p = _two_pois(data_rate=0.001, buffer_capacity=1.0)
    m = WorldMap(
        np.array([[8.0, 5.0], [3.0, 5.0]], np.float32),  # A to the east, B nearer to the west
        np.array([0.01, 1.0], np.float32),  # A started nearly empty
        np.zeros((0, 4), np.float32),
        poi_rate=np.array([0.001, 0.001], np.float32),
    )
    s, obs = reset_with_map(m, p)
    s = s.replace(poi_data=jnp.array([0.9, 0.05], jnp.float32))  # A has filled up, B not
    for policy in (GreedyPolicy(), WeightedGreedyPolicy()):
        theta, length = np.asarray(policy.act(None, obs, s, p))[0]
        assert length > 0 and math.cos(theta) > 0.99  # east, to A: a quota of 0.2, not 0.002
    s = s.replace(mt_pos=jnp.array([[7.9, 5.0]], jnp.float32))
    s2, *_ = step(jax.random.PRNGKey(0), s, jnp.zeros((1, 2), jnp.float32), p)
    assert float(s.poi_data[0] - s2.poi_data[0]) == pytest.approx(0.2, abs=1e-3)


def test_a_steep_distance_power_still_ranks_far_clusters_on_a_large_site():
    """At distance power 20, (1 + slots) ** 20 passes float32's range beyond some 60 slots (and
    its quotient underflows to 0 earlier): every far cluster then scored 0 and the MT took the
    first PoI in the list, not the nearest. Scores are compared as logarithms, so on a 300 x 300
    site the MT still heads for the PoI 100 slots away rather than the one 260 slots away."""
    p = _two_pois(width=300.0, height=300.0)
    m = WorldMap(
        np.array([[190.0, 190.0], [101.0, 1.0]], np.float32),  # A far (listed first), B nearer
        np.array([1.0, 0.5], np.float32),
        np.zeros((0, 4), np.float32),
    )
    s, obs = reset_with_map(m, p)
    s = s.replace(mt_pos=jnp.array([[1.0, 1.0]], jnp.float32))
    for power in (1.0, 20.0):
        theta, length = np.asarray(WeightedGreedyPolicy(1.0, power).act(None, obs, s, p))[0]
        assert length > 0 and math.cos(theta) > 0.99, power  # east, to B


def test_on_its_belief_greedy_knows_a_refilled_buffer_was_served():
    """Where data keeps arriving a served PoI fills up to its initial data again. On its belief
    an MT must still count it as served (from the records), or the fairness bonus for PoIs never
    served goes to a PoI it drained itself: A, served and refilled, is then worth half of B."""
    p = _two_pois(data_rate=0.001, buffer_capacity=1.0, observe_radius=20.0)
    m = WorldMap(
        np.array([[3.0, 5.0], [6.0, 5.0]], np.float32),  # A listed first, B
        np.array([0.5, 0.5], np.float32),
        np.zeros((0, 4), np.float32),
        poi_rate=np.array([0.001, 0.001], np.float32),
    )
    s, obs = reset_with_map(m, p)
    s = s.replace(mt_pos=jnp.array([[3.0, 5.0]], jnp.float32))
    s, obs, *_ = step(jax.random.PRNGKey(0), s, jnp.zeros((1, 2), jnp.float32), p)  # serves A
    refilled = jnp.array([0.5, 0.5], jnp.float32)
    s = s.replace(
        poi_data=refilled, belief=refilled[None], mt_pos=jnp.array([[4.3, 5.0]], jnp.float32)
    )  # one slot from A and from B
    theta, length = np.asarray(WeightedGreedyPolicy(belief=True).act(None, obs, s, p))[0]
    assert length > 0 and math.cos(theta) > 0.99  # east, to B, never served


def test_the_backlog_weight_prefers_the_fuller_of_two_equal_quotas():
    """Greedy's quota sees 0.2 at both PoIs; with the backlog counted, the one holding five
    slots' worth beats the one about to run dry, and weight 0 stays greedy."""
    p = _two_pois()
    m = WorldMap(
        np.array([[7.9, 5.0], [2.0, 5.0]], np.float32),  # A east, B west, both 2 moves away
        np.array([1.0, 1.0], np.float32),
        np.zeros((0, 4), np.float32),
    )
    s, obs = reset_with_map(m, p)
    s = s.replace(poi_data=jnp.array([0.25, 1.0], jnp.float32))  # A nearly drained, B full

    def heading(policy: Policy) -> float:
        return math.cos(float(np.asarray(policy.act(None, obs, s, p))[0, 0]))

    assert heading(GreedyPolicy()) > 0.99  # greedy: a tie of quotas, the first PoI
    assert heading(WeightedGreedyPolicy(backlog_weight=0.0)) > 0.99
    assert heading(WeightedGreedyPolicy(backlog_weight=2.0)) < -0.99  # west, to the full one
    assert heading(baseline("greedy-backlog")) < -0.99


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 60), min_size=1, max_size=40))
def test_the_jain_gain_has_the_sign_of_what_one_more_visit_does_to_jains_index(visits):
    """For any visit counts, jain_gain(h)[k] > 0 exactly where serving PoI k once more raises
    Jain's index (sum h)^2 / (K sum h^2), and it is 0 everywhere before any visit."""
    h = np.asarray(visits, np.float64)
    gain = np.asarray(jain_gain(jnp.asarray(visits, jnp.int32)), np.float64)
    if h.sum() == 0:
        assert np.all(gain == 0.0)
        return

    def jain(v: np.ndarray) -> float:
        return v.sum() ** 2 / (len(v) * (v * v).sum())

    for k in range(len(h)):
        more = h.copy()
        more[k] += 1
        change = jain(more) - jain(h)
        if abs(change) > 1e-9 and abs(gain[k]) > 1e-4:
            assert np.sign(gain[k]) == np.sign(change), (k, gain[k], change)


def test_the_jain_weight_prefers_the_less_served_of_two_equal_quotas():
    """Both PoIs were served, so greedy's unvisited term sees no difference; with the Jain term
    the one served twice beats the one served ten times, and weight 0 stays greedy."""
    p = _two_pois()
    m = WorldMap(
        np.array([[7.9, 5.0], [2.0, 5.0]], np.float32),  # A east, B west, both 2 moves away
        np.array([1.0, 1.0], np.float32),
        np.zeros((0, 4), np.float32),
    )
    s, obs = reset_with_map(m, p)
    s = s.replace(visits=jnp.array([10, 2], jnp.int32))  # A served often, B seldom

    def heading(policy: Policy) -> float:
        return math.cos(float(np.asarray(policy.act(None, obs, s, p))[0, 0]))

    assert heading(GreedyPolicy()) > 0.99  # greedy: a tie of quotas, the first PoI
    assert heading(WeightedGreedyPolicy(jain_weight=0.0)) > 0.99
    assert heading(WeightedGreedyPolicy(jain_weight=0.1)) < -0.99  # west, to the less served
    assert heading(baseline("greedy-jain")) < -0.99


def test_a_cluster_the_jain_term_outweighs_is_not_worth_a_trip():
    """With a weight so high that A's excess of visits outweighs its data, the MT heads for B
    even though B holds a tenth of A's data."""
    p = _two_pois()
    m = WorldMap(
        np.array([[7.9, 5.0], [2.0, 5.0]], np.float32),
        np.array([1.0, 1.0], np.float32),
        np.zeros((0, 4), np.float32),
    )
    s, obs = reset_with_map(m, p)
    s = s.replace(visits=jnp.array([10, 9], jnp.int32), poi_data=jnp.array([1.0, 0.1]))
    theta = float(np.asarray(WeightedGreedyPolicy(jain_weight=1.0).act(None, obs, s, p))[0, 0])
    assert math.cos(theta) < -0.99


def test_greedy_fair_jain_spreads_a_binding_battery_more_evenly_than_greedy_fair():
    """Where a battery serves only part of the PoIs once, the Jain term sends the MTs to the
    PoIs served least: on the same 8 small maps greedy-fair-jain's fairness and efficiency are
    above greedy-fair's (measured 0.80 against 0.74, and 0.43 against 0.41)."""
    p = preset("small").replace(initial_energy=6.0, num_slots=100)
    fair = evaluate(baseline("greedy-fair"), p, range(8)).mean
    even = evaluate(baseline("greedy-fair-jain"), p, range(8)).mean
    assert float(even["fairness"]) > float(fair["fairness"]) + 0.02
    assert float(even["energy_efficiency"]) > float(fair["energy_efficiency"])


def test_the_jain_weight_is_refused_on_beliefs_under_partial_observation():
    p = preset("small").replace(observe_radius=2.0)
    s, obs = reset(jax.random.PRNGKey(0), p)
    with pytest.raises(ConfigError) as err:
        WeightedGreedyPolicy(belief=True, jain_weight=0.003).act(None, obs, s, p)
    assert err.value.field == "jain_weight"


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([1, 2, 9, 40]), st.floats(0.0, 1.0))
def test_the_isolation_count_is_the_pois_with_data_within_one_move(seed, k, empty) -> None:
    """For any PoIs and data, PoI k's count is the PoIs holding data within sensing range +
    one move of it (itself included when it holds data), and at least 1. (A few PoI counts, so
    that the world is compiled a few times, not once per example.)"""
    p = _two_pois(num_pois=k)
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0.0, 10.0, (k, 2)).astype(np.float32)
    data = np.where(rng.random(k) < empty, 0.0, rng.uniform(0.01, 1.0, k)).astype(np.float32)
    s, _ = reset_with_map(WorldMap(pos, data, np.zeros((0, 4), np.float32)), p)
    got = np.asarray(neighbours_with_data(s, p, jnp.asarray(data)))
    reach = p.sensing_range + p.max_move
    dist = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    want = np.maximum(((dist <= reach) & (data[None] > 0)).sum(axis=1), 1)
    close = np.abs(dist - reach) < 1e-4  # float32 rounding at the very edge may go either way
    assert np.all((got == want) | close.any(axis=1))


def test_nearer_to_another_is_strict_and_never_the_mt_itself() -> None:
    dist = jnp.array([[1.0, 2.0, 3.0], [2.0, 2.0, 1.0], [5.0, 0.5, 9.0]])
    np.testing.assert_array_equal(
        nearer_to_another(dist),
        [[False, True, True], [True, True, False], [True, False, True]],
    )
    assert not np.any(nearer_to_another(dist[:1]))  # alone: nobody is nearer


def _stranded_and_crowded() -> tuple[WorldParams, WorldMap]:
    """One MT at (5, 5) between A (west, alone) and B (east) with two PoIs 1.2 off B: beyond
    B's sensing disk (so B's quota ties A's, at the same number of slots) but within one move
    of it. B is listed first, so greedy breaks the tie east."""
    p = _two_pois(num_pois=4)
    m = WorldMap(
        np.array([[8.0, 5.0], [2.0, 5.0], [8.0, 6.2], [8.0, 3.8]], np.float32),
        np.array([1.0, 1.0, 1.0, 1.0], np.float32),
        np.zeros((0, 4), np.float32),
    )
    return p, m


def _heading(policy: Policy, s, obs, p: WorldParams, mt: int = 0) -> float:
    return math.cos(float(np.asarray(policy.act(None, obs, s, p))[mt, 0]))


def test_the_isolation_term_drains_the_stranded_poi_before_the_crowded_one() -> None:
    p, m = _stranded_and_crowded()
    s, obs = reset_with_map(m, p)
    s = s.replace(mt_pos=jnp.array([[5.0, 5.0]], jnp.float32))
    assert _heading(GreedyPolicy(), s, obs, p) > 0.99
    assert _heading(WeightedGreedyPolicy(isolation_weight=0.0), s, obs, p) > 0.99
    assert _heading(WeightedGreedyPolicy(isolation_weight=2.0), s, obs, p) < -0.99  # west, to A
    assert _heading(baseline("greedy-route"), s, obs, p) < -0.99


def test_the_isolation_term_counts_what_the_mt_believes_not_the_truth() -> None:
    """Under partial observation the count reads the MT's belief: believing B's neighbours
    drained, B is as alone as A and the tie goes east again, though the truth would send it
    west."""
    p, m = _stranded_and_crowded()
    p = p.replace(observe_radius=1.0)
    s, obs = reset_with_map(m, p)
    believed = jnp.array([[1.0, 1.0, 0.0, 0.0]], jnp.float32)
    s = s.replace(mt_pos=jnp.array([[5.0, 5.0]], jnp.float32), belief=believed)
    route = WeightedGreedyPolicy(isolation_weight=2.0, belief=True)
    assert _heading(route, s, obs, p) > 0.99
    s = s.replace(belief=s.poi_data[None])
    assert _heading(route, s, obs, p) < -0.99


def test_the_territory_term_leaves_a_poi_to_the_mt_nearer_to_it() -> None:
    """MT 0 chooses first: greedy sends it east to A, 2 slots away, though MT 1 sits beside A;
    worth a hundredth there, A is left to MT 1 and MT 0 goes west to B, 4 slots away."""
    p = _two_pois(num_mts=2)
    m = WorldMap(
        np.array([[7.5, 5.0], [1.0, 5.0]], np.float32),  # A east, B west
        np.array([1.0, 1.0], np.float32),
        np.zeros((0, 4), np.float32),
    )
    s, obs = reset_with_map(m, p)
    s = s.replace(mt_pos=jnp.array([[5.0, 5.0], [8.5, 5.0]], jnp.float32))
    assert _heading(GreedyPolicy(), s, obs, p) > 0.99
    assert _heading(WeightedGreedyPolicy(territory_weight=1.0), s, obs, p) > 0.99
    assert _heading(WeightedGreedyPolicy(territory_weight=0.01), s, obs, p) < -0.99
