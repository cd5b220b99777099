"""The travel term of greedy's score (``ScoreTerms.travel``): a place d away is worth
exp(-travel * d) of its score, so an MT stays on a disk with data rather than hop to a slightly
better one within the same move, and far better places still win."""

import jax
import numpy as np
import pytest

from chainsense.marl.evaluate import rollout
from chainsense.marl.policies import GreedyPolicy, WeightedGreedyPolicy
from chainsense.marl.score_terms import GREEDY_TERMS, ScoreTerms
from chainsense.sim.maps import WorldMap
from chainsense.sim.params import WorldParams, preset
from chainsense.sim.world import reset_with_map, step


def _world(richer: float) -> tuple[WorldParams, WorldMap]:
    """One MT on PoI A (data 1); PoI B, holding ``richer`` times as much, 0.9 east: within one
    move, and the two sensing disks (0.3) apart."""
    p = WorldParams(
        width=10.0,
        height=10.0,
        num_pois=2,
        num_obstacles=0,
        num_mts=1,
        sensing_range=0.3,
        num_slots=20,
        observation="paper",
        start_x=5.0,
        start_y=5.0,
    )
    pois = np.array([[5.0, 5.0], [5.9, 5.0]], np.float32)
    data = np.array([1.0, richer], np.float32)
    return p, WorldMap(pois, data, np.zeros((0, 4), np.float32))


def _move(policy, p: WorldParams, m: WorldMap) -> np.ndarray:
    s, obs = reset_with_map(m, p)
    return np.asarray(policy.act(None, obs, s, p))[0]


def test_greedy_hops_for_a_slightly_richer_disk_and_the_travel_term_stays() -> None:
    """B holds 1.2x A's data: greedy's slot count prices the 0.9 hop at nothing, so it leaves A;
    at travel 0.5 B is worth 1.2 exp(-0.45) = 0.77 of A and the MT stays and senses A."""
    p, m = _world(1.2)
    heading, length = _move(GreedyPolicy(), p, m)
    assert length == pytest.approx(0.9, abs=1e-5) and abs(heading) < 1e-4
    assert _move(WeightedGreedyPolicy(travel_weight=0.5), p, m)[1] == 0.0


def test_a_far_better_place_is_still_worth_the_trip() -> None:
    """B holds 2x A's data: 2 exp(-0.45) = 1.28 > 1, so the MT still goes to B."""
    p, m = _world(2.0)
    assert _move(WeightedGreedyPolicy(travel_weight=0.5), p, m)[1] == pytest.approx(0.9, abs=1e-5)


def test_the_mt_drains_its_disk_before_it_leaves() -> None:
    """With the term (and no bonus for unvisited PoIs, which would pull the MT to B once A is
    visited) the MT stays on A until A's data is gone (5 quotas), then goes to B."""
    p, m = _world(1.2)
    policy = WeightedGreedyPolicy(fairness_weight=0.0, travel_weight=0.5)
    s, obs = reset_with_map(m, p)
    moved = []
    for _ in range(8):
        s, obs, _, _, info = step(None, s, policy.act(None, obs, s, p), p)
        moved.append(float(np.asarray(info.moved)[0]))
    assert moved[:5] == [0.0] * 5 and moved[5] == pytest.approx(0.9, abs=1e-5)
    assert float(np.asarray(s.poi_data)[0]) == 0.0


def test_at_zero_the_term_is_greedy_bit_for_bit() -> None:
    """travel = 0 is greedy's score and is not computed: an episode on `charging` at greedy's
    weights with the term at 0 ends with greedy's own figures to the bit; at 0.3 it does not."""
    assert ScoreTerms(travel=0.0) == GREEDY_TERMS
    p = preset("charging")
    ends = []
    for policy in (GreedyPolicy(), WeightedGreedyPolicy(travel_weight=0.0)):
        ends.append(rollout(policy, p, jax.random.PRNGKey(3)).metrics)
    assert ends[0] == ends[1]
    moved = rollout(WeightedGreedyPolicy(travel_weight=0.3), p, jax.random.PRNGKey(3)).metrics
    assert moved["energy_usage_ratio"] != ends[0]["energy_usage_ratio"]  # the term acts
