"""The coverage baseline: its tour covers the area, its MTs walk it (round obstacles, to the
stations and back) and serve every PoI on the way, and bad settings are refused by name."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsense.errors import ConfigError
from chainsense.marl import memory
from chainsense.marl.coverage import CoveragePolicy, near_boxes, point_on_tour, tour
from chainsense.marl.evaluate import evaluate, rollout
from chainsense.marl.registry import baseline
from chainsense.sim.maps import WorldMap
from chainsense.sim.params import preset
from chainsense.sim.world import reset_with_map, step


def _distance_to_tour(points: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """[N] each point's distance to the polyline ``vertices``."""
    a, b = vertices[:-1][None], vertices[1:][None]  # [1,S,2]
    q = points[:, None, :]
    ab = b - a
    f = np.clip(np.sum((q - a) * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-12), 0.0, 1.0)
    nearest = a + f[..., None] * ab
    return np.min(np.linalg.norm(q - nearest, axis=-1), axis=1)


@settings(max_examples=40, deadline=None)
@given(
    width=st.floats(1.0, 60.0),
    height=st.floats(1.0, 60.0),
    sensing=st.floats(0.3, 5.0),
)
def test_the_tour_is_closed_and_every_point_of_the_area_is_within_sensing_range(
    width, height, sensing
):
    vertices, length = tour(width, height, sensing)
    assert np.allclose(vertices[0], vertices[-1])
    assert (len(vertices) - 1) % 4 == 0  # an even number of lanes, two vertices each
    assert np.all(np.diff(length) >= 0) and math.isclose(
        float(length[-1]),
        float(np.sum(np.linalg.norm(np.diff(vertices, axis=0), axis=1))),
        rel_tol=1e-5,
    )
    assert np.all((vertices >= 0) & (vertices <= np.array([width, height]) + 1e-5))
    xs, ys = np.meshgrid(np.linspace(0, width, 41), np.linspace(0, height, 41))
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
    assert np.max(_distance_to_tour(grid, vertices)) <= sensing * (1 + 1e-5)


def test_a_point_on_the_tour_wraps_round_and_lies_on_it():
    vertices, length = tour(16.0, 16.0, 1.1)
    pts, lng = jnp.asarray(vertices), jnp.asarray(length)
    s = jnp.array([0.0, 7.0, float(length[-1]), float(length[-1]) + 7.0], jnp.float32)
    at = np.asarray(point_on_tour(s, pts, lng))
    assert np.allclose(at[0], vertices[0]) and np.allclose(at[2], vertices[0], atol=1e-4)
    assert np.allclose(at[1], at[3], atol=1e-4)
    assert np.allclose(at[1], vertices[0] + np.array([7.0, 0.0]), atol=1e-4)  # along lane 1


def test_near_boxes_marks_goals_in_or_beside_an_obstacle_only():
    boxes = jnp.array([[4.0, 4.0, 6.0, 6.0]], jnp.float32)
    goals = jnp.array([[5.0, 5.0], [6.2, 5.0], [7.0, 5.0], [5.0, 3.6]], jnp.float32)
    assert np.asarray(near_boxes(goals, boxes, 0.3)).tolist() == [True, True, False, False]


def test_every_poi_is_served_on_an_open_site_and_nothing_collides():
    p = dataclasses.replace(preset("small"), num_obstacles=0, num_slots=200)
    result = rollout(CoveragePolicy(), p, jax.random.PRNGKey(3))
    assert np.all(np.asarray(result.final_state.visits) > 0)
    assert result.metrics["collisions"] == 0


def test_the_mts_walk_the_tour_round_obstacles_without_sticking():
    p = preset("paper")
    table = evaluate(CoveragePolicy(), p, [20000, 20001])
    assert np.all(table.per_episode["data_collection_ratio"] > 0.95)
    assert np.all(table.per_episode["collisions"] == 0)
    assert np.all(table.per_episode["parked_slots"] == 0)


def test_a_wall_across_the_tour_is_passed_round():
    p = dataclasses.replace(preset("small"), num_pois=2, num_obstacles=1, num_mts=1, num_slots=120)
    vertices, _ = tour(p.width, p.height, p.sensing_range)
    y = float(vertices[0, 1])
    m = WorldMap(
        np.array([[1.0, y], [7.5, y]], np.float32),  # one PoI each side of the wall
        np.array([1.0, 1.0], np.float32),
        np.array([[3.5, 0.0, 4.5, y + 1.0]], np.float32),  # across the first lane
    )
    s, obs = reset_with_map(m, p)
    policy, mem = CoveragePolicy(), CoveragePolicy().initial_memory(p)
    act = jax.jit(lambda st, o, mm: policy.act_recurrent(None, o, st, p, mm))
    for _ in range(p.num_slots):
        a, mem = act(s, obs, mem)
        s, obs, _, _, info = step(jax.random.PRNGKey(0), s, a, p)
        assert not bool(info.collision[0])
    assert np.all(np.asarray(s.visits) > 0)  # the PoI beyond the wall too


def test_with_a_dwell_an_mt_stays_while_staying_senses_that_much():
    p = dataclasses.replace(preset("small"), num_pois=1, num_obstacles=0, num_mts=1)
    vertices, _ = tour(p.width, p.height, p.sensing_range)
    start = vertices[0]
    m = WorldMap(np.array([start], np.float32), np.array([1.0], np.float32), np.zeros((0, 4)))
    s, obs = reset_with_map(m, p)
    s = s.replace(mt_pos=jnp.asarray(start[None], jnp.float32))
    mem = CoveragePolicy().initial_memory(p)
    stays, _ = CoveragePolicy(dwell=0.1).act_recurrent(None, obs, s, p, mem)
    moves, moved_mem = CoveragePolicy().act_recurrent(None, obs, s, p, mem)
    assert float(stays[0, 1]) == 0.0 and float(moves[0, 1]) > 0.5
    assert float(moved_mem[0, 0]) > float(mem[0, 0])
    drained = s.replace(poi_data=jnp.zeros_like(s.poi_data))
    leaves, _ = CoveragePolicy(dwell=0.1).act_recurrent(None, obs, drained, p, mem)
    assert float(leaves[0, 1]) > 0.5  # nothing left to sense: on along the tour


def test_the_tour_waits_while_an_mt_recharges():
    p = preset("charging")
    s, obs = reset_with_map(
        WorldMap(
            np.array([[8.0, 8.0]], np.float32),
            np.array([1.0], np.float32),
            np.zeros((0, 4), np.float32),
            stations=np.array([[2.0, 2.0]], np.float32),
        ),
        dataclasses.replace(p, num_pois=1, num_obstacles=0, num_stations=1),
    )
    q = dataclasses.replace(p, num_pois=1, num_obstacles=0, num_stations=1)
    s = s.replace(energy=jnp.full_like(s.energy, 0.5))  # must go back now
    mem = CoveragePolicy().initial_memory(q)
    actions, after = CoveragePolicy().act_recurrent(None, obs, s, q, mem)
    assert np.allclose(np.asarray(after[:, 0]), np.asarray(mem[:, 0]))  # the goals wait
    theta = np.asarray(actions[:, 0])
    to_station = np.arctan2(2.0 - np.asarray(s.mt_pos[:, 1]), 2.0 - np.asarray(s.mt_pos[:, 0]))
    assert np.allclose(np.cos(theta - to_station), 1.0, atol=1e-3)  # heading for the station


def test_the_registry_builds_it_and_a_rollout_threads_its_memory():
    policy = baseline("coverage")
    assert isinstance(policy, CoveragePolicy) and isinstance(policy, memory.RecurrentPolicy)
    p = preset("small")
    first = evaluate(policy, p, [0, 1]).mean
    again = evaluate(policy, p, [0, 1]).mean
    assert first == again and first["data_collection_ratio"] > 0


@pytest.mark.parametrize("dwell", [0.0, -1.0, math.nan, True, "1"])
def test_a_bad_dwell_is_refused_by_name(dwell):
    with pytest.raises(ConfigError, match="dwell"):
        CoveragePolicy(dwell=dwell)


def test_a_strip_narrower_than_the_disk_is_walked_up_its_middle():
    vertices, length = tour(0.1, 30.0, 2.0)
    assert float(length[-1]) > 0 and np.allclose(vertices[:, 0], 0.05)
