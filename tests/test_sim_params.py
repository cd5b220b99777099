"""World parameters: presets, hashing for jit, and validation naming the bad field."""

import jax
import pytest

from chainsense.errors import ConfigError
from chainsense.sim.params import PRESETS, WorldParams, obs_dim, preset, state_dim


def test_paper_preset_matches_the_issue():
    p = preset("paper")
    assert (p.width, p.height, p.num_pois, p.num_obstacles, p.num_mts) == (16, 16, 256, 16, 2)
    assert (p.initial_energy, p.sensing_range, p.max_move, p.num_slots) == (500, 1.1, 1.0, 500)
    assert (p.collect_fraction, p.move_cost, p.sense_cost) == (0.2, 0.1, 1.0)
    assert p.start == (8.0, 8.0)


def test_params_hash_and_serve_as_static_jit_argument():
    assert hash(PRESETS["paper"]) == hash(WorldParams())
    f = jax.jit(lambda x, params: x * params.num_pois, static_argnames="params")
    assert int(f(2, params=preset("small"))) == 64


def test_dims():
    p = preset("paper")
    assert obs_dim(p) == 4 + 2 + 64 + 25
    assert obs_dim(p.replace(num_mts=3)) == 4 + 4 + 64 + 25
    assert obs_dim(p.replace(observation="paper")) == 3
    assert state_dim(p) == 5 * 256 + 4 * 16 + 3 * 2 + 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"num_pois": 0}, "num_pois"),
        ({"sensing_range": -1.0}, "sensing_range"),
        ({"sensing_range": float("nan")}, "sensing_range"),
        ({"num_mts": 300}, "num_mts"),
        ({"num_mts": 0}, "num_mts"),
        ({"width": 0.0}, "width"),
        ({"height": float("inf")}, "height"),
        ({"initial_energy": 0.0}, "initial_energy"),
        ({"max_move": 100.0}, "max_move"),
        ({"num_slots": 0}, "num_slots"),
        ({"collect_fraction": 1.5}, "collect_fraction"),
        ({"move_cost": -0.1}, "move_cost"),
        ({"sense_cost": 0.0}, "sense_cost"),
        ({"collision_penalty": -1.0}, "collision_penalty"),
        ({"observation": "pixels"}, "observation"),
        ({"local_grid": 4}, "local_grid"),
        ({"fine_factor": 0}, "fine_factor"),
        ({"obs_grid": 64, "fine_factor": 4}, "fine_factor"),
        ({"obstacle_max_size": 0.1}, "obstacle_max_size"),
        ({"num_obstacles": 500}, "num_obstacles"),
        ({"start_x": 20.0}, "start_x"),
        ({"map_seed": -1}, "map_seed"),
    ],
)
def test_invalid_values_name_the_field(changes, field):
    with pytest.raises(ConfigError) as err:
        WorldParams(**changes)
    assert err.value.field == field
    assert str(err.value).startswith(field)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="preset"):
        preset("huge")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"num_pois": 2.5}, "num_pois"),
        ({"num_mts": 1.5}, "num_mts"),
        ({"num_slots": 10.5}, "num_slots"),
        ({"num_obstacles": 2.0}, "num_obstacles"),
        ({"num_pois": True}, "num_pois"),
        ({"obs_grid": "8"}, "obs_grid"),
        ({"map_seed": 1.5}, "map_seed"),
        ({"width": "16"}, "width"),
        ({"height": None}, "height"),
        ({"initial_energy": "500"}, "initial_energy"),
        ({"sensing_range": True}, "sensing_range"),
        ({"collect_fraction": "0.2"}, "collect_fraction"),
        ({"move_cost": "0.1"}, "move_cost"),
        ({"start_x": "1"}, "start_x"),
        ({"width": 10**400}, "width"),
    ],
)
def test_wrong_types_are_rejected_naming_the_field(changes, field):
    # Issue 12, defect 14: fractional counts were accepted (then crashed inside JAX or were
    # truncated) and a string width failed later with a TypeError instead of a ConfigError.
    with pytest.raises(ConfigError) as err:
        WorldParams(**changes)
    assert err.value.field == field


def test_integral_numbers_are_normalised_so_equal_params_hash_alike():
    import numpy as np

    p = WorldParams(width=16, num_pois=np.int64(256), initial_energy=np.float32(500.0))
    assert p == WorldParams() and hash(p) == hash(WorldParams())
    assert type(p.width) is float and type(p.num_pois) is int


def test_obstacle_size_rule_applies_only_when_there_are_obstacles():
    p = WorldParams(width=3.0, height=3.0, num_pois=4, num_obstacles=0, num_mts=1)
    assert p.num_obstacles == 0
    with pytest.raises(ConfigError) as err:
        WorldParams(width=3.0, height=3.0, num_pois=4, num_obstacles=1, num_mts=1)
    assert err.value.field == "obstacle_max_size"
