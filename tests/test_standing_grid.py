"""Standing points within one move (``marl.standing_grid``): greedy's rule with a lattice stands
where one disk senses what no PoI's disk does, never inside an obstacle or outside the area, and
a bad spacing is refused by name before anything runs."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsense.errors import ConfigError
from chainsense.marl import session
from chainsense.marl.config import TrainConfig
from chainsense.marl.poi_clusters import sums_at
from chainsense.marl.policies import GreedyPolicy, WeightedGreedyPolicy
from chainsense.marl.registry import GRID_SPACING, baseline
from chainsense.marl.standing_grid import (
    MAX_GRID_POINTS,
    grid_problem,
    offsets,
    standing_points,
)
from chainsense.sim.maps import WorldMap
from chainsense.sim.params import WorldParams, preset
from chainsense.sim.world import reset, reset_with_map, step

# two PoIs 0.8 apart under a sensing range of 0.5: no PoI's disk holds both, the lattice point
# midway between them (5.25, 5.25; a cell centre at spacing 0.5) does
PAIR = np.array([[4.85, 5.25], [5.65, 5.25]], np.float32)
MIDPOINT = np.array([5.25, 5.25], np.float32)


def _pair_world(obstacles: np.ndarray | None = None) -> tuple[WorldParams, WorldMap]:
    boxes = np.zeros((0, 4), np.float32) if obstacles is None else obstacles
    p = WorldParams(
        width=10.0,
        height=10.0,
        num_pois=2,
        num_obstacles=boxes.shape[0],
        num_mts=1,
        sensing_range=0.5,
        num_slots=20,
        observation="paper",
        start_x=5.25,
        start_y=4.5,
    )
    return p, WorldMap(PAIR, np.array([1.0, 1.0], np.float32), boxes)


def _heading(policy, p: WorldParams, m: WorldMap) -> float:
    s, obs = reset_with_map(m, p)
    return float(np.asarray(policy.act(None, obs, s, p))[0, 0])


def test_the_grid_stands_between_two_pois_and_senses_both_at_once() -> None:
    """From 0.75 south of the pair greedy heads for a PoI (north by west); with the lattice the MT
    steps due north onto the point between them, and there one slot senses both."""
    p, m = _pair_world()
    assert abs(_heading(GreedyPolicy(), p, m) - math.pi / 2) > 0.05
    assert abs(_heading(WeightedGreedyPolicy(grid=0.5), p, m) - math.pi / 2) < 1e-4

    policy = WeightedGreedyPolicy(grid=0.5)
    s, obs = reset_with_map(m, p)
    both = False
    for _ in range(6):
        s, obs, _, _, info = step(None, s, policy.act(None, obs, s, p), p)
        both |= bool(np.all(np.asarray(info.collected_per_poi)[0] > 0))
    assert both
    np.testing.assert_allclose(np.asarray(s.mt_pos)[0], MIDPOINT, atol=1e-5)


def test_a_lattice_point_inside_an_obstacle_is_never_offered() -> None:
    """With a box over the midpoint the lattice's best point is walled in: the MT heads for
    another place, not into the box."""
    box = np.array([[5.1, 5.1, 5.4, 5.4]], np.float32)
    p, m = _pair_world(box)
    theta = _heading(WeightedGreedyPolicy(grid=0.5), p, m)
    assert abs(theta - math.pi / 2) > 1e-3


@settings(max_examples=40, deadline=None)
@given(
    x=st.floats(0.0, 10.0),
    y=st.floats(0.0, 10.0),
    spacing=st.sampled_from([0.05, 0.125, 0.3, 0.5, 1.0]),
)
def test_the_lattice_covers_one_move_round_the_mt_and_offers_no_bad_place(
    x: float, y: float, spacing: float
) -> None:
    """Every place within one move of the MT is within half a cell's diagonal of a lattice point;
    the points lie on the area's own lattice; a point outside the area or in a box is closed."""
    p, _ = _pair_world()
    box = jnp.array([[2.0, 2.0, 4.0, 3.0]], jnp.float32)
    mt = jnp.array([[x, y]], jnp.float32)
    points, open_ = (np.asarray(a) for a in standing_points(mt, box, p, spacing))
    assert len(points) == len(offsets(p, spacing))
    cells = points / spacing - 0.5
    np.testing.assert_allclose(cells, np.round(cells), atol=2e-3)
    angle = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    for r in (0.0, 0.5 * p.max_move, p.max_move):
        probe = np.stack([x + r * np.cos(angle), y + r * np.sin(angle)], axis=1)
        nearest = np.min(np.linalg.norm(probe[:, None] - points[None], axis=2), axis=1)
        assert np.all(nearest <= spacing / math.sqrt(2) + 1e-4)
    in_area = (points >= 0).all(axis=1) & (points[:, 0] <= p.width) & (points[:, 1] <= p.height)
    in_box = (points[:, 0] >= 2) & (points[:, 0] <= 4) & (points[:, 1] >= 2) & (points[:, 1] <= 3)
    np.testing.assert_array_equal(open_, in_area & ~in_box)


def test_without_a_grid_the_rule_is_greedys_bit_for_bit() -> None:
    """grid = 0 is the PoIs only: 40 slots of greedy-backlog's weights on a `dynamic` map go
    the same with the field at its default and set to 0, and differ with a grid."""
    p = preset("dynamic").replace(num_slots=40)

    def path(policy: WeightedGreedyPolicy) -> np.ndarray:
        s, obs = reset(jax.random.PRNGKey(3), p)
        for _ in range(p.num_slots):
            s, obs, *_ = step(None, s, policy.act(None, obs, s, p), p)
        return np.asarray(s.mt_pos)

    plain = path(WeightedGreedyPolicy(backlog_weight=2.0))
    np.testing.assert_array_equal(plain, path(WeightedGreedyPolicy(backlog_weight=2.0, grid=0.0)))
    assert not np.array_equal(plain, path(WeightedGreedyPolicy(backlog_weight=2.0, grid=0.5)))


def test_the_sums_at_grid_points_count_the_pois_within_reach() -> None:
    pois = jnp.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]], jnp.float32)
    values = jnp.array([[1.0], [2.0], [4.0]], jnp.float32)
    points = jnp.array([[0.5, 0.0], [3.0, 0.0], [9.0, 9.0]], jnp.float32)
    np.testing.assert_allclose(np.asarray(sums_at(points, pois, values, 0.6))[:, 0], [3, 4, 0])


@pytest.mark.parametrize("spacing", [0.005, -1.0, math.nan, math.inf])
def test_a_bad_spacing_is_refused_by_name(spacing: float) -> None:
    assert grid_problem(preset("dynamic"), spacing)
    with pytest.raises(ConfigError, match="target_grid"):
        TrainConfig(algo="mappo", action_space="targets", target_grid=spacing)


@pytest.mark.parametrize("bad", [True, "0.5"])
def test_a_spacing_that_is_no_number_is_refused_by_name(bad: object) -> None:
    with pytest.raises(ConfigError, match="target_grid"):
        TrainConfig(algo="mappo", action_space="targets", target_grid=bad)  # type: ignore[arg-type]


def test_the_grid_needs_the_targets_action_space() -> None:
    with pytest.raises(ConfigError, match=r"target_grid.*targets"):
        TrainConfig(algo="mappo", target_grid=0.5)


def test_a_lattice_with_too_many_points_is_refused_before_training(tmp_path) -> None:
    """Where one move spans 10 units a spacing of 0.125 is 26,244 points round an MT: refused
    naming the field, and nothing is written; on `dynamic` it is 400."""
    far = WorldParams(max_move=10.0)
    assert "over the" in (grid_problem(far, 0.125) or "")
    assert grid_problem(preset("dynamic"), GRID_SPACING) is None
    assert len(offsets(preset("dynamic"), GRID_SPACING)) == 400 <= MAX_GRID_POINTS
    cfg = TrainConfig(algo="mappo", action_space="targets", target_grid=0.125, num_envs=2)
    with pytest.raises(ConfigError, match="target_grid"):
        session.run(cfg, far, seed=0, steps=10, out_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    s, obs = reset(jax.random.PRNGKey(0), far)
    with pytest.raises(ConfigError, match="target_grid"):
        WeightedGreedyPolicy(grid=0.125).act(None, obs, s, far)


def test_greedy_grid_is_a_baseline_that_stands_where_it_senses_both() -> None:
    """The registry's greedy-grid (backlog 2, lattice 0.125): its first step ends where one
    disk holds both PoIs (the finer lattice has several such points; greedy has none)."""
    policy = baseline("greedy-grid")
    assert isinstance(policy, WeightedGreedyPolicy)
    assert (policy.grid, policy.backlog_weight) == (GRID_SPACING, 2.0)
    p, m = _pair_world()
    for rule, both in ((policy, True), (GreedyPolicy(), False)):
        s, obs = reset_with_map(m, p)
        s, *_, info = step(None, s, rule.act(None, obs, s, p), p)
        assert bool(np.all(np.asarray(info.collected_per_poi)[0] > 0)) is both
