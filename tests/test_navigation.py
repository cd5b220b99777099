"""The roadmap round the obstacles (``sim.roadmap``) and the heuristics' navigation on it
(``marl.navigation``): shortest paths between corners, and an MT that gets out of a pocket
between overlapping boxes instead of pacing in it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsense.marl.navigation import head_for, waypoints
from chainsense.sim.geometry import segment_hits_boxes
from chainsense.sim.maps import WorldMap
from chainsense.sim.params import WorldParams, preset
from chainsense.sim.roadmap import corner_distances, corners, usable
from chainsense.sim.world import reset, reset_with_map, step

#: three boxes of a held-out `dynamic` map (seed 10066) that form a pocket open to the south:
#: two side walls 0.36 apart and a roof across them. The goal lies north of the roof.
POCKET = np.array(
    [
        [12.52, 7.53, 13.83, 9.08],  # west wall
        [14.19, 7.59, 15.99, 9.10],  # east wall
        [12.71, 8.70, 14.64, 10.47],  # roof
    ],
    np.float32,
)
GOAL = np.array([14.13, 11.43], np.float32)


def _pocket_world() -> tuple[WorldParams, object]:
    p = WorldParams(
        num_pois=1, num_obstacles=3, num_mts=1, start_x=14.11, start_y=7.47, observation="paper"
    )
    m = WorldMap(GOAL[None], np.array([1.0], np.float32), POCKET)
    return p, reset_with_map(m, p)[0]


def test_an_mt_under_the_roof_of_a_pocket_goes_round_it_instead_of_pacing() -> None:
    """The rule that looked only at the first box in the way sent this MT up into the pocket
    and back out, slot after slot, for the rest of the episode (docs/learning.md, fourteenth
    part). On the roadmap it walks round the east wall and reaches the goal."""
    p, s = _pocket_world()
    goal = jnp.asarray(GOAL)[None]
    seen = []
    for _ in range(20):
        a = head_for(s, goal, jnp.zeros((1,), bool), p)
        s = step(None, s, a, p)[0]
        seen.append(float(jnp.linalg.norm(s.mt_pos[0] - goal[0])))
    assert min(seen) < 0.05
    assert int(s.collisions[0]) == 0


def test_the_waypoint_is_the_goal_in_sight_else_a_corner_it_sees() -> None:
    p, s = _pocket_world()
    goal = jnp.asarray(GOAL)[None]
    way = np.asarray(waypoints(s.mt_pos, goal, s.obstacles, s.roadmap, p))[0]
    assert not np.allclose(way, GOAL)  # the roof is in the way
    seg = jnp.asarray(way - np.asarray(s.mt_pos[0]))[None]
    assert not bool(segment_hits_boxes(s.mt_pos, seg, s.obstacles)[0])
    near = jnp.asarray(GOAL - [0.0, 0.5])[None]  # north of the roof, in sight of the goal
    assert np.allclose(np.asarray(waypoints(near, goal, s.obstacles, s.roadmap, p))[0], GOAL)


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_roadmap_distances_are_shortest_paths_on_any_map(seed: int) -> None:
    """On generated maps: symmetric, 0 on the diagonal of usable corners, the straight length
    between corners that see each other, never shorter than it, the triangle inequality."""
    p = preset("paper")
    s = reset(jax.random.PRNGKey(seed), p)[0]
    d = np.asarray(s.roadmap, np.float64)
    c = np.asarray(corners(s.obstacles), np.float64)
    ok = np.asarray(usable(corners(s.obstacles), s.obstacles, p))
    assert d.shape == (4 * p.num_obstacles,) * 2
    assert np.all(np.isinf(d[~ok])) and np.all(np.isinf(d[:, ~ok]))
    u = np.where(ok)[0]
    du = d[np.ix_(u, u)]
    np.testing.assert_allclose(du, du.T, rtol=1e-5)
    assert np.all(np.diag(du) == 0.0)
    straight = np.linalg.norm(c[u][:, None] - c[u][None], axis=-1)
    assert np.all(du >= straight - 1e-4)
    finite = np.where(np.isfinite(du), du, 1e9)
    assert np.all(finite[:, None, :] <= finite[:, :, None] + finite[None, :, :] + 1e-3)
    start = jnp.asarray(np.repeat(c[u], len(u), axis=0), jnp.float32)
    end = jnp.asarray(np.tile(c[u], (len(u), 1)), jnp.float32)
    sees = ~np.asarray(segment_hits_boxes(start, end - start, s.obstacles)).reshape(len(u), -1)
    np.testing.assert_allclose(du[sees], straight[sees], rtol=1e-4, atol=1e-4)


def test_a_world_without_obstacles_has_an_empty_roadmap() -> None:
    p = preset("small").replace(num_obstacles=0)
    s = reset(jax.random.PRNGKey(0), p)[0]
    assert s.roadmap.shape == (0, 0)
    assert corner_distances(jnp.zeros((0, 4), jnp.float32), p).shape == (0, 0)


@pytest.mark.parametrize("name", ["paper", "dynamic"])
def test_greedy_no_longer_paces_in_place_on_held_out_maps(name: str) -> None:
    """Greedy on the first 20 held-out maps: no MT goes back to where it stood two slots
    before for 5% of the episode while moving a full step each time (the pacing of the first-
    obstacle rule: 7 of 100 `dynamic` maps, 12 of 100 `paper` maps)."""
    from chainsense.marl.evaluate import _episode
    from chainsense.marl.policies import GreedyPolicy

    p = preset(name)
    keys = jnp.stack([jax.random.PRNGKey(10000 + i) for i in range(20)])
    run = jax.jit(jax.vmap(lambda k: _episode(GreedyPolicy(), k, p, True)[2][0]))
    pos = np.asarray(run(keys))  # [N,T+1,M,2]
    out = np.linalg.norm(pos[:, 1:-1] - pos[:, :-2], axis=-1)
    back_step = np.linalg.norm(pos[:, 2:] - pos[:, 1:-1], axis=-1)
    home = np.linalg.norm(pos[:, 2:] - pos[:, :-2], axis=-1)
    paced = (out > 0.9 * p.max_move) & (back_step > 0.9 * p.max_move) & (home < 0.1)
    assert paced.sum(axis=1).max() < 0.05 * p.num_slots


def test_a_world_reset_without_its_roadmap_is_steered_alike() -> None:
    """A learner's training worlds skip the roadmap unless the fleet steers by rule; navigation
    then computes it per slot and takes the same waypoints."""
    p = preset("paper")
    key = jax.random.PRNGKey(3)
    with_map = reset(key, p)[0]
    without = reset(key, p, roadmap=False)[0]
    assert without.roadmap.shape == (0, 0)
    goals = jnp.asarray([[1.0, 15.0], [15.0, 1.0]], jnp.float32)
    idle = jnp.zeros((p.num_mts,), bool)
    np.testing.assert_array_equal(
        np.asarray(head_for(with_map, goals, idle, p)),
        np.asarray(head_for(without, goals, idle, p)),
    )


def test_training_worlds_carry_a_roadmap_only_where_the_fleet_steers_by_rule() -> None:
    from chainsense.marl import train
    from chainsense.marl.config import TrainConfig

    p = preset("small")
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    move = TrainConfig(algo="mappo")
    targets = TrainConfig(algo="mappo", action_space="targets")
    assert not train.steers_by_rule(move) and train.steers_by_rule(targets)
    assert train.steers_by_rule(TrainConfig(algo="mappo", recharge_reflex=True))
    for cfg, shape in ((move, (0, 0)), (targets, (4 * p.num_obstacles,) * 2)):
        worlds, _ = train.reset_worlds(keys, p, None, train.steers_by_rule(cfg))
        assert worlds.roadmap.shape[1:] == shape
