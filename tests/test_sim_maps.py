"""Maps saved to and loaded from files, and hostile map files rejected with the field named."""

import json

import jax
import numpy as np
import pytest

from chainsense.errors import ConfigError
from chainsense.sim.maps import WorldMap, load_map, make_map, save_map, validate_map
from chainsense.sim.params import WorldParams, preset
from chainsense.sim.world import reset, reset_with_map

P = preset("small")


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_round_trip_and_reset_with_map_matches_seeded_reset(tmp_path, suffix):
    m = make_map(4, P)
    path = tmp_path / f"map{suffix}"
    save_map(m, path)
    back = load_map(path, P)
    np.testing.assert_allclose(back.poi_pos, m.poi_pos, rtol=1e-6)
    np.testing.assert_allclose(back.obstacles, m.obstacles, rtol=1e-6)
    a, obs_a = reset_with_map(back, P)
    b, obs_b = reset(jax.random.PRNGKey(4), P.replace(map_seed=4))
    np.testing.assert_allclose(a.poi_data, b.poi_data, rtol=1e-6)
    np.testing.assert_allclose(obs_a, obs_b, rtol=1e-5)


def _write(tmp_path, **fields):
    m = make_map(1, P)
    payload = {
        "poi_pos": m.poi_pos.tolist(),
        "poi_data": m.poi_data.tolist(),
        "obstacles": m.obstacles.tolist(),
    }
    payload.update(fields)
    path = tmp_path / "m.json"
    path.write_text(json.dumps(payload))
    return path, m


def test_wrong_poi_count_is_rejected(tmp_path):
    path, _m = _write(tmp_path, poi_pos=[[1.0, 1.0]] * 3)
    with pytest.raises(ConfigError, match=r"map\.poi_pos"):
        load_map(path, P)


def test_poi_inside_an_obstacle_is_rejected(tmp_path):
    m = make_map(1, P)
    x0, y0, x1, y1 = m.obstacles[0]
    pos = m.poi_pos.copy()
    pos[3] = [(x0 + x1) / 2, (y0 + y1) / 2]
    path, _ = _write(tmp_path, poi_pos=pos.tolist())
    with pytest.raises(ConfigError, match="PoI 3 lies inside an obstacle"):
        load_map(path, P)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"poi_data": [-1.0] * 32}, r"map\.poi_data"),
        ({"obstacles": [[5, 5, 4, 4], [0, 0, 0.1, 0.1]]}, r"map\.obstacles"),
        ({"obstacles": [[3.99, 3.99, 4.01, 4.01], [0, 0, 0.01, 0.01]]}, "start point"),
        ({"poi_pos": [[100.0, 1.0]] * 32}, "outside the area"),
        ({"poi_data": "lots"}, "map"),
    ],
)
def test_hostile_maps(tmp_path, fields, match):
    path, _ = _write(tmp_path, **fields)
    with pytest.raises(ConfigError, match=match):
        load_map(path, P)


def test_missing_file_garbage_and_unknown_suffix(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_map(tmp_path / "none.json", P)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read"):
        load_map(bad, P)
    other = tmp_path / "m.txt"
    other.write_text("x")
    with pytest.raises(ConfigError, match="unsupported"):
        load_map(other, P)
    nan = tmp_path / "nan.json"
    nan.write_text('{"poi_pos": [[NaN, 1]], "poi_data": [1], "obstacles": []}')
    with pytest.raises(ConfigError):
        load_map(nan, P)


RING = [[3.0, 3.0, 7.0, 3.5], [3.0, 6.5, 7.0, 7.0], [3.0, 3.0, 3.5, 7.0], [6.5, 3.0, 7.0, 7.0]]
RING_P = WorldParams(
    width=20.0,
    height=20.0,
    num_pois=1,
    num_obstacles=4,
    num_mts=1,
    obstacle_max_size=4.0,
    start_x=5.0,
    start_y=5.0,
)


def _ring_map(boxes):
    return WorldMap(
        np.array([[1.0, 1.0]], np.float32),
        np.array([1.0], np.float32),
        np.array(boxes, np.float32),
    )


@pytest.mark.parametrize(
    "boxes",
    [
        RING,  # four walls around the start (5, 5)
        [RING[0], RING[1], RING[2], [6.0, 3.0, 6.0, 7.0]],  # zero-width wall closes the ring
        [[3.0, 3.0, 7.0, 4.0], [3.0, 6.0, 7.0, 7.0], [3.0, 4.0, 4.0, 6.0], [6.0, 4.0, 7.0, 6.0]],
    ],
)
def test_obstacles_enclosing_the_start_are_rejected(boxes):
    # Issue 12, defect 14: only a box covering the start point itself was refused.
    with pytest.raises(ConfigError, match="enclose") as err:
        validate_map(_ring_map(boxes), RING_P)
    assert err.value.field == "map.obstacles"


@pytest.mark.parametrize(
    "gap",
    [
        [6.5, 3.0, 7.0, 4.9],  # a gap in the right wall between y = 4.9 and 7
        [6.5, 3.6, 7.0, 7.0],  # the right wall stops short of the bottom one (gap 0.1)
        [7.0, 3.6, 7.5, 7.0],  # moved out to x = 7: touches the top wall, 0.1 short of the bottom
    ],
)
def test_a_ring_with_a_gap_is_accepted(gap):
    m = validate_map(_ring_map([*RING[:3], gap]), RING_P)
    assert m.obstacles.shape == (4, 4)
