"""Physics of one slot: collisions over the whole segment, area bounds, energy, sensing, sharing."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chainsense.sim.geometry import segment_hits_boxes
from chainsense.sim.maps import WorldMap
from chainsense.sim.metrics import jain_fairness
from chainsense.sim.params import WorldParams
from chainsense.sim.world import reset_with_map, step

KEY = jax.random.PRNGKey(0)
# 10 x 10 area, MTs start at (5, 5); one PoI and one thin wall, placed per test.
P = WorldParams(
    width=10.0,
    height=10.0,
    num_pois=2,
    num_obstacles=1,
    num_mts=2,
    initial_energy=10.0,
    sensing_range=0.5,
    max_move=2.0,
    num_slots=20,
    collision_penalty=0.5,
    observation="rich",
    obs_grid=2,
    local_grid=3,
    obstacle_min_size=0.01,
    obstacle_max_size=1.0,
)
FAR = [[9.5, 9.5], [9.5, 0.5]]
NO_WALL = [[0.0, 0.0, 0.1, 0.1]]


def world(pois=FAR, data=(1.0, 1.0), walls=NO_WALL, params=P, **state_changes):
    m = WorldMap(
        np.array(pois, np.float32), np.array(data, np.float32), np.array(walls, np.float32)
    )
    state, _ = reset_with_map(m, params)
    return state.replace(**{k: jnp.asarray(v) for k, v in state_changes.items()})


def act(*pairs):
    return jnp.array(pairs, jnp.float32)


def test_free_move_goes_where_asked_and_costs_move_energy():
    s = world()
    s2, obs, _r, done, info = step(KEY, s, act((0.0, 1.5), (math.pi / 2, 2.0)), P)
    np.testing.assert_allclose(s2.mt_pos, [[6.5, 5.0], [5.0, 7.0]], atol=1e-5)
    np.testing.assert_allclose(info.moved, [1.5, 2.0], atol=1e-6)
    np.testing.assert_allclose(s2.energy, [10 - 0.15, 10 - 0.2], atol=1e-5)
    assert not bool(done) and not np.any(info.collision)
    assert obs.shape == (2, 4 + 2 + 4 + 9)


def test_move_into_wall_is_refused_flagged_free_and_penalised():
    s = world(walls=[[5.8, 4.0, 6.2, 6.0]])
    s2, _, r, _, info = step(KEY, s, act((0.0, 1.0), (math.pi, 1.0)), P)
    np.testing.assert_allclose(s2.mt_pos[0], [5.0, 5.0])
    assert bool(info.collision[0]) and not bool(info.collision[1])
    assert float(info.energy_used[0]) == 0.0
    assert float(r[0]) == pytest.approx(-0.5)
    assert int(s2.collisions[0]) == 1


def test_segment_jumping_over_thin_wall_is_a_collision():
    # end point (6.5, 5) is free, but the path crosses a 0.01-wide wall at x = 5.9
    s = world(walls=[[5.9, 4.0, 5.91, 6.0]])
    s2, _, _, _, info = step(KEY, s, act((0.0, 1.5), (0.0, 0.5)), P)
    assert bool(info.collision[0])
    np.testing.assert_allclose(s2.mt_pos[0], [5.0, 5.0])
    assert not bool(info.collision[1])  # stops short of the wall
    np.testing.assert_allclose(s2.mt_pos[1], [5.5, 5.0], atol=1e-6)


def test_diagonal_and_grazing_segments():
    boxes = jnp.array([[1.0, 1.0, 2.0, 2.0]])
    starts = jnp.array([[0.0, 0.0], [0.0, 0.0], [0.0, 3.0], [0.0, 1.0], [3.0, 3.0]])
    deltas = jnp.array([[3.0, 3.0], [0.9, 0.9], [3.0, 0.0], [3.0, 0.0], [0.0, 0.0]])
    hit = segment_hits_boxes(starts, deltas, boxes)
    # through, stops short, passes above, slides along the edge (closed box), no move
    assert hit.tolist() == [True, False, False, True, False]


def test_leaving_the_area_is_refused():
    s = world(mt_pos=[[9.5, 5.0], [0.2, 5.0]])
    s2, _, _, _, info = step(KEY, s, act((0.0, 1.0), (math.pi, 0.2)), P)
    assert bool(info.collision[0])
    np.testing.assert_allclose(s2.mt_pos[0], [9.5, 5.0])
    assert not bool(info.collision[1])  # exactly onto the boundary is allowed
    np.testing.assert_allclose(s2.mt_pos[1], [0.0, 5.0], atol=1e-6)


def test_out_of_range_and_nan_actions_are_wrapped_or_clipped():
    s = world()
    s2, _, _, _, info = step(KEY, s, act((2 * math.pi + 0.0, 50.0), (float("nan"), -3.0)), P)
    np.testing.assert_allclose(s2.mt_pos[0], [7.0, 5.0], atol=1e-5)  # l clipped to max_move
    np.testing.assert_allclose(s2.mt_pos[1], [5.0, 5.0])
    assert float(info.moved[1]) == 0.0


def test_sensing_after_move_collects_fraction_and_counts_visit():
    s = world(pois=[[7.0, 5.0], [1.0, 1.0]], data=(0.8, 1.0))
    s2, _, r, _, info = step(KEY, s, act((0.0, 1.8), (math.pi, 0.1)), P)
    take = 0.2 * 0.8
    np.testing.assert_allclose(info.collected_per_poi, [[take, 0.0], [0.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(s2.poi_data, [0.8 - take, 1.0], atol=1e-6)
    assert s2.visits.tolist() == [1, 0]
    used = 0.1 * 1.8 + 1.0 * take
    np.testing.assert_allclose(info.energy_used[0], used, atol=1e-6)
    # reward = Jain(h = [1, 0]) * b / phi
    assert float(r[0]) == pytest.approx(0.5 * take / used, rel=1e-5)
    assert float(r[1]) == 0.0


def test_two_mts_on_one_poi_share_equally_and_data_never_negative():
    s = world(pois=[[5.0, 5.0], [1.0, 1.0]], data=(0.5, 1.0))
    stay = act((0.0, 0.0), (0.0, 0.0))
    amounts = []
    for _ in range(8):
        s, _, _, _, info = step(KEY, s, stay, P)
        per = np.asarray(info.collected_per_poi)
        np.testing.assert_allclose(per[0, 0], per[1, 0], atol=1e-7)
        amounts.append(per[:, 0].sum())
        assert float(s.poi_data[0]) >= 0.0
    np.testing.assert_allclose(amounts[:5], [0.1] * 5, atol=1e-6)
    assert amounts[5:] == [0.0, 0.0, 0.0]
    assert float(s.poi_data[0]) == 0.0
    assert int(s.visits[0]) == 5  # later slots gave nothing, so they are not visits


def test_energy_truncates_move_and_sense_and_never_goes_negative():
    s = world(pois=[[6.0, 5.0], [1.0, 1.0]], data=(1.0, 1.0), energy=[0.15, 0.05])
    s2, _, _, _, info = step(KEY, s, act((0.0, 1.0), (0.0, 2.0)), P)
    # MT0: move 1.0 costs 0.1, then 0.05 left buys 0.05 of the 0.2 quota
    np.testing.assert_allclose(info.moved, [1.0, 0.5], atol=1e-6)
    np.testing.assert_allclose(info.collected_per_poi[0, 0], 0.05, atol=1e-6)
    assert float(info.collected[1]) == 0.0
    np.testing.assert_allclose(s2.energy, [0.0, 0.0], atol=1e-7)
    assert bool(s2.done)  # every MT is out of energy
    s3, _, r, _, info = step(KEY, s2, act((0.0, 1.0), (0.0, 1.0)), P)
    np.testing.assert_allclose(s3.mt_pos, s2.mt_pos)
    assert np.all(np.asarray(r) == 0) and int(s3.t) == int(s2.t)


def test_done_after_num_slots_and_frozen_afterwards():
    s = world()
    for _ in range(P.num_slots):
        s, _, _, done, _ = step(KEY, s, act((0.0, 0.0), (0.0, 0.0)), P)
    assert bool(done) and int(s.t) == P.num_slots
    s2, _, r, _, _ = step(KEY, s, act((0.0, 1.0), (1.0, 1.0)), P)
    np.testing.assert_allclose(s2.mt_pos, s.mt_pos)
    assert int(s2.t) == P.num_slots and np.all(np.asarray(r) == 0)


def test_reward_uses_jain_of_visits_after_the_slot():
    s = world(pois=[[5.0, 5.0], [1.0, 1.0]], data=(1.0, 1.0), visits=[0, 3])
    _s2, _, r, _, info = step(KEY, s, act((0.0, 0.0), (0.0, 0.0)), P)
    omega = float(jain_fairness(jnp.array([1, 3])))
    assert float(info.fairness) == pytest.approx(omega)
    assert omega == pytest.approx(16 / (2 * 10))
    # no move: phi = b, so b / phi = 1 for each MT serving the PoI
    np.testing.assert_allclose(r, [omega, omega], rtol=1e-5)


def test_rich_observation_layout_and_content():
    s = world(mt_pos=[[5.0, 5.0], [2.0, 8.0]])
    _, obs, _, _, _ = step(KEY, s, act((0.0, 0.0), (0.0, 0.0)), P)
    o = np.asarray(obs)
    np.testing.assert_allclose(o[0, :4], [0.5, 0.5, 1.0, 1 - 1 / P.num_slots], atol=1e-6)
    np.testing.assert_allclose(o[0, 4:6], [-0.3, 0.3], atol=1e-6)  # offset to the other MT
    np.testing.assert_allclose(o[1, 4:6], [0.3, -0.3], atol=1e-6)
    # coarse 2x2 map (5-unit cells), normalised so an untouched average cell reads 1
    np.testing.assert_allclose(o[0, 6:10], [0.0, 2.0, 0.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(o[1, 6:10], o[0, 6:10])
    # 3x3 window of the 4x4 fine map (2.5-unit cells) around MT 0's cell (2, 2):
    # the PoI at (9.5, 9.5) lies in fine cell (3, 3), the window's last entry
    local = o[0, 10:].reshape(3, 3)
    expected = np.zeros((3, 3))
    expected[2, 2] = 1.0 / (2.0 / 16)
    np.testing.assert_allclose(local, expected, atol=1e-5)
    # MT 1 sits in fine cell (0, 3): its window reaches past the map edge (zero padding)
    np.testing.assert_allclose(o[1, 10:], 0.0)


def test_reward_never_exceeds_one_when_energy_is_large():
    # Issue 12, defect 9: energy used was state.energy - new energy, a float32 difference of two
    # numbers near 440 (ulp 3.05e-5). Collecting b = 1.4 ulp then showed phi = 1 ulp, b/phi = 1.4.
    p = P.replace(initial_energy=500.0)
    ulp = float(np.spacing(np.float32(440.0)))
    data = 1.4 * ulp / p.collect_fraction  # each MT takes half the quota of both PoIs
    s = world(pois=[[5.0, 5.0], [5.0, 5.0]], data=(data, data), params=p, energy=[440.0, 440.0])
    _s2, _, r, _, info = step(KEY, s, act((0.0, 0.0), (0.0, 0.0)), p)
    assert float(info.fairness) == 1.0
    np.testing.assert_allclose(info.collected, [1.4 * ulp, 1.4 * ulp], rtol=1e-6)
    np.testing.assert_allclose(info.energy_used, info.collected, rtol=1e-6)
    assert np.all(np.asarray(r) <= 1.0), r


def test_an_accepted_move_never_lands_on_an_obstacle_edge():
    # Issue 12, defect 10: the segment test said the move stops short of the wall at x = 5.8, but
    # the float32 sum 5 + l rounds onto x = 5.8 exactly; on the (closed) box every later move,
    # even straight away from it, was refused for the rest of the episode.
    wall = np.float32(5.8)
    l_short = (wall - np.float32(5.0)) - 2 * np.spacing(np.float32(0.8))
    assert np.float32(5.0) + l_short == wall  # the rounding that put the MT on the edge
    s = world(walls=[[float(wall), 4.0, 6.2, 6.0]])
    s2, _, _, _, info = step(KEY, s, act((0.0, float(l_short)), (0.0, 0.0)), P)
    pos = np.asarray(s2.mt_pos[0])
    on_box = (5.8 <= pos[0] <= 6.2) and (4.0 <= pos[1] <= 6.0)
    assert bool(info.collision[0]) or not on_box
    # whatever happened, the MT can still move away from the wall
    s3, _, _, _, info3 = step(KEY, s2, act((math.pi, 0.5), (0.0, 0.0)), P)
    assert not bool(info3.collision[0])
    assert float(s3.mt_pos[0, 0]) < float(pos[0])


def test_moves_along_the_near_and_far_boundaries_are_treated_alike():
    # Issue 12, defect 11: float32 cos(pi / 2) = -4.4e-8, so a move straight up along x = 0 ended
    # at x = -4.4e-8 and was refused, while the same move along x = width was allowed.
    up, down, right, left = math.pi / 2, 3 * math.pi / 2, 0.0, math.pi
    cases = [
        ([[0.0, 5.0], [10.0, 5.0]], [up, up]),
        ([[0.0, 5.0], [10.0, 5.0]], [down, down]),
        ([[5.0, 0.0], [5.0, 10.0]], [right, right]),
        ([[5.0, 0.0], [5.0, 10.0]], [left, left]),
    ]
    for start, headings in cases:
        s = world(mt_pos=start)
        s2, _, _, _, info = step(KEY, s, act((headings[0], 1.0), (headings[1], 1.0)), P)
        assert not np.any(np.asarray(info.collision)), (start, headings)
        pos = np.asarray(s2.mt_pos)
        assert np.all((pos >= 0) & (pos <= 10.0)), pos
        np.testing.assert_allclose(info.moved, [1.0, 1.0], atol=1e-6)


def test_an_mt_with_only_dust_energy_left_serves_nothing():
    # Issue 12, defect 12: after this move the MT has 7.5e-9 energy left (below the 1e-6 x
    # initial_energy dust threshold). It used to "serve" the PoI: h(k) + 1 and a 7.5e-9 record,
    # while the PoI's data (1.0) did not change at all in float32.
    e0 = np.nextafter(np.float32(0.1), np.float32(1.0))
    s = world(pois=[[6.0, 5.0], [1.0, 1.0]], data=(1.0, 1.0), energy=[e0, 10.0])
    s2, _, r, _, info = step(KEY, s, act((0.0, 1.0), (0.0, 0.0)), P)
    assert not bool(info.collision[0]) and float(info.moved[0]) == pytest.approx(1.0)
    assert float(s2.poi_data[0]) == 1.0
    assert s2.visits.tolist() == [0, 0]
    assert float(info.collected[0]) == 0.0
    assert not np.any(np.asarray(info.collected_per_poi))
    assert float(s2.energy[0]) == 0.0 and float(r[0]) == 0.0


def test_visits_rise_only_when_data_actually_leaves_the_poi():
    # a full-energy MT whose share is below the PoI's float32 resolution collects nothing
    p = P.replace(collect_fraction=1.0e-9)
    s = world(pois=[[5.0, 5.0], [1.0, 1.0]], data=(1.0, 1.0), params=p)
    s2, _, _, _, info = step(KEY, s, act((0.0, 0.0), (0.0, 0.0)), p)
    data_moved = np.asarray(s.poi_data) - np.asarray(s2.poi_data)
    visited = np.asarray(s2.visits) - np.asarray(s.visits)
    assert visited.tolist() == (data_moved > 0).astype(int).tolist()
    np.testing.assert_array_equal(np.asarray(info.collected_per_poi).sum(0) > 0, data_moved > 0)


def test_a_subnormal_amount_nobody_senses_is_kept():
    # found by tests/test_sim_properties.py: data - 0 flushed a subnormal amount to 0 (XLA's CPU
    # backend flushes subnormals), so a PoI nobody covered lost its data without a visit
    tiny = float(np.float32(1.4e-45))
    s = world(pois=[[1.0, 1.0], [9.0, 9.0]], data=(tiny, 1.0))
    s2, _, _, _, _ = step(KEY, s, act((0.0, 0.0), (0.0, 0.0)), P)
    assert s2.visits.tolist() == [0, 0]
    assert np.asarray(s2.poi_data)[0] == np.asarray(s.poi_data)[0]
