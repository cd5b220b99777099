"""Real site maps: the example yard round trip, the box decomposition, and every bad file refused
with a one-line ConfigError naming the feature (or row)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import shapely
from shapely.geometry import Point, Polygon, box

from chainsense.errors import ConfigError
from chainsense.marl.evaluate import evaluate, rollout
from chainsense.marl.policies import GreedyPolicy, RandomPolicy
from chainsense.sim import boxes as boxes_mod
from chainsense.sim import site_geojson
from chainsense.sim.boxes import cover_with_boxes, points_in_boxes
from chainsense.sim.params import preset
from chainsense.sim.render import plot_map
from chainsense.sim.sites import load_site

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "sites" / "industrial_yard.geojson"
PAPER = preset("paper")


@pytest.fixture(scope="module")
def yard():
    return load_site(EXAMPLE, PAPER)


def _union(b):
    return shapely.union_all(shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]))


def test_example_site_loads_scaled_with_its_aspect(yard):
    p = yard.params
    assert (p.width, p.height) == (
        16.0,
        10.0,
    )  # 240 m x 150 m, the paper world's 16 on the long side
    assert yard.scale == pytest.approx(16 / 240)
    assert p.num_pois == 140 == len(yard.map.poi_pos)
    assert p.num_obstacles == len(yard.map.obstacles) == len(yard.box_owner)
    assert p.start == pytest.approx((8 / 15, 75 / 15), abs=1e-6)  # the gate
    assert yard.stations.shape == (2, 2)
    assert (p.num_mts, p.num_slots, p.sensing_range) == (2, 500, 1.1)  # the rest is the base's
    assert len(yard.polygons) == len(yard.names) == 8
    assert yard.names[0] == 'features[1] (obstacle "hall A")'


def test_example_boxes_cover_every_obstacle_within_the_tolerance(yard):
    boxes = yard.map.obstacles.astype(np.float64)
    for i, poly in enumerate(yard.polygons):
        union = _union(boxes[yard.box_owner == i])
        assert poly.difference(union).area < 1e-4, yard.names[i]  # covered (float32 rounding)
        assert union.difference(poly.buffer(yard.tolerance + 1e-4)).area < 1e-6, yard.names[i]
    for name in ("hall A", "hall B", "hall C", "workshop", "storage yard"):  # axis-aligned: exact
        i = next(n for n, label in enumerate(yard.names) if f'"{name}"' in label)
        union = _union(boxes[yard.box_owner == i])
        assert union.area == pytest.approx(yard.polygons[i].area, rel=1e-5), name
    assert yard.added_area > 0  # the tanks and the conveyor
    assert not points_in_boxes(yard.map.poi_pos, yard.map.obstacles).any()
    assert not points_in_boxes(yard.stations, yard.map.obstacles).any()
    assert not points_in_boxes(np.array([yard.start]), yard.map.obstacles).any()


def test_an_episode_runs_on_the_example_site(yard):
    params = yard.params.replace(num_slots=40)
    result = rollout(GreedyPolicy(), params, jax.random.PRNGKey(0), world_map=yard.map)
    np.testing.assert_array_equal(result.final_state.obstacles, yard.map.obstacles)
    np.testing.assert_array_equal(result.final_state.poi_pos, yard.map.poi_pos)
    assert result.metrics["collisions"] == 0
    assert 0 < result.metrics["data_collection_ratio"] < 1
    table = evaluate(RandomPolicy(), params, [0, 1], "random", world_map=yard.map)
    assert table.per_episode["data_collection_ratio"].shape == (2,)


def test_render_draws_the_site(yard, tmp_path):
    state, _ = yard.reset()
    out = plot_map(state, yard.params, tmp_path / "site.png", site=yard)
    assert out.stat().st_size > 5000


def test_the_generator_writes_the_committed_example(tmp_path):
    out = tmp_path / "yard.geojson"
    script = REPO / "scripts" / "make_example_site.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--out", str(out)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == EXAMPLE.read_bytes()


@pytest.mark.parametrize("tol", [0.05, 0.25, 1.0])
def test_curved_and_slanted_shapes_are_covered_within_the_tolerance(tol):
    shapes = [
        Point(5, 5).buffer(2.0, quad_segs=16),
        shapely.affinity.rotate(box(1, 1, 7, 1.6), 33),
        box(0, 0, 6, 6).difference(Point(3, 3).buffer(1.5)),  # a hole
    ]
    for shape in shapes:
        b = cover_with_boxes(shape, tol, "x")
        union = _union(b)
        assert shape.difference(union).area < 1e-9
        assert union.difference(shape.buffer(tol + 1e-9)).area < 1e-9


def test_rectilinear_shapes_are_covered_exactly_with_few_boxes():
    ell = Polygon([(0, 0), (4, 0), (4, 1), (1, 1), (1, 3), (0, 3)])
    b = cover_with_boxes(ell, 0.1, "x")
    assert len(b) == 2 and _union(b).area == pytest.approx(ell.area)
    court = box(0, 0, 3, 3).difference(box(1, 1, 2, 2))
    b = cover_with_boxes(court, 0.1, "x")
    assert len(b) == 4 and _union(b).area == pytest.approx(court.area)


# ------------------------------------------------------------------ bad files


def _feature(kind, geometry, **props):
    return {"type": "Feature", "properties": {"kind": kind, **props}, "geometry": geometry}


def _poly(*rings):
    return {"type": "Polygon", "coordinates": [[*map(list, r), list(r[0])] for r in rings]}


def _rect(x0, y0, x1, y1):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _pt(x, y):
    return {"type": "Point", "coordinates": [x, y]}


def _site(*extra, pois=((10, 10), (90, 40))):
    feats = [
        _feature("area", _poly(_rect(0, 0, 100, 50)), name="site"),
        _feature("obstacle", _poly(_rect(20, 20, 40, 30)), name="hall"),
        *(_feature("poi", _pt(x, y), name=f"p{i}") for i, (x, y) in enumerate(pois)),
        *extra,
    ]
    return {"type": "FeatureCollection", "features": feats}


def _load(tmp_path, doc, name="site.geojson", **kw):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return load_site(path, PAPER, **kw)


def _refused(tmp_path, doc, pattern, *, in_file=True, **kw):
    """The refusal names the file (in front of the feature) and matches ``pattern`` after it."""
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, doc, **kw)
    message = str(info.value)
    assert "\n" not in message
    assert ("site.geojson" in message) == in_file, message
    assert re.search(pattern, message.removeprefix("site.geojson: ")), message
    return message


def test_a_small_site_loads(tmp_path):
    site = _load(tmp_path, _site(_feature("station", _pt(80, 10))))
    assert (site.params.width, site.params.height) == (16.0, 8.0)
    np.testing.assert_allclose(site.map.obstacles, [[3.2, 3.2, 6.4, 4.8]], rtol=1e-6)
    np.testing.assert_allclose(site.stations, [[12.8, 1.6]], rtol=1e-6)
    assert site.params.start == pytest.approx((8.0, 4.0))  # the centre when no start is given


AREA = {"type": "Feature", "properties": {"kind": "area"}, "geometry": _poly(_rect(0, 0, 9, 9))}
BOWTIE = _poly([(0, 0), (10, 10), (10, 0), (0, 10)])
ROTATED = _poly([(50, 0), (100, 50), (50, 100), (0, 50)])


@pytest.mark.parametrize(
    ("doc", "pattern"),
    [
        ("not json {", r"^map: site\.geojson is not GeoJSON"),
        ({"type": "Feature", "geometry": None}, r"^map: .*FeatureCollection"),
        ({"type": "FeatureCollection", "features": {}}, r"^map\.features: must be a list"),
        (_site()["features"][1:], r"^map: .*FeatureCollection"),
        ({"type": "FeatureCollection", "features": []}, r"exactly one area Polygon, found 0"),
        (_site(AREA), r"exactly one area Polygon, found 2"),
        (
            {"type": "FeatureCollection", "features": [_feature("area", ROTATED)]},
            r"^features\[0\] \(area\): the area must be an axis-aligned rectangle",
        ),
        (_site(_feature("pond", _pt(1, 1))), r"^features\[4\]: properties\.kind must be one of"),
        (
            _site(_feature("obstacle", BOWTIE, name="bow")),
            r'^features\[4\] \(obstacle "bow"\): is not a valid polygon: Self-intersection',
        ),
        (
            _site(pois=[(30, 25)]),
            r'^features\[2\] \(poi "p0"\): lies inside obstacle features\[1\]',
        ),
        (
            _site(pois=[(40, 25)]),
            r'^features\[2\] \(poi "p0"\): lies inside obstacle',
        ),  # on an edge
        (
            _site(pois=[(101, 25)]),
            r'^features\[2\] \(poi "p0"\): \(101, 25\) lies outside the area',
        ),
        (_site(pois=[]), r"the site has no PoI"),
        (
            _site(_feature("obstacle", _poly(_rect(200, 0, 210, 10)), name="far")),
            r'^features\[4\] \(obstacle "far"\): lies outside the area',
        ),
        (
            _site(_feature("start", _pt(25, 25), name="gate")),
            r'^features\[4\] \(start "gate"\): lies inside obstacle',
        ),
        (
            _site(_feature("start", _pt(1, 1)), _feature("start", _pt(2, 2))),
            r"^features\[5\] \(start\): a second start point \(the first is features\[4\]",
        ),
        (
            _site(
                _feature(
                    "obstacle",
                    {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]},
                )
            ),
            r"^features\[4\] \(obstacle\): ring 0 is not closed",
        ),
        (
            _site(_feature("poi", {"type": "Point", "coordinates": [True, 3]})),
            r"^features\[4\] \(poi\): x must be a number",
        ),
        (
            _site(_feature("poi", _pt(3, 3), data=-1)),
            r"^features\[4\] \(poi\): data must be >= 0",
        ),
        (
            _site(_feature("poi", _pt(3, 1e12))),
            r"^features\[4\] \(poi\): y must be finite and within",
        ),
        (
            _site(_feature("station", {"type": "Polygon", "coordinates": []})),
            r"^features\[4\] \(station\): geometry must be Point, got 'Polygon'",
        ),
    ],
)
def test_bad_files_are_refused_naming_the_feature(tmp_path, doc, pattern):
    _refused(tmp_path, doc, pattern)


def test_nan_coordinates_are_refused(tmp_path):
    text = json.dumps(_site()).replace("[90, 40]", "[NaN, 40]")
    _refused(tmp_path, text, r'^features\[3\] \(poi "p1"\): x must be finite')


def test_deep_nesting_is_refused_before_parsing(tmp_path):
    deep = "[" * 10_000 + "]" * 10_000
    text = json.dumps(_site()).replace("[90, 40]", deep)
    _refused(tmp_path, text, r"^map: site\.geojson is not GeoJSON: .*nested deeper than 12")


def test_oversized_files_and_too_many_features_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(site_geojson, "MAX_FILE_BYTES", 100)
    _refused(tmp_path, _site(), r"^map: site\.geojson is not GeoJSON: .*larger than 100 bytes")
    monkeypatch.setattr(site_geojson, "MAX_FILE_BYTES", 1 << 20)
    monkeypatch.setattr(site_geojson, "MAX_FEATURES", 3)
    _refused(tmp_path, _site(), r"^map\.features: 4 features \(at most 3\)")


def test_too_many_boxes_names_the_obstacle_that_overflows(tmp_path):
    tank = {
        "type": "Polygon",
        "coordinates": [shapely.geometry.mapping(Point(20, 30).buffer(8))["coordinates"][0]],
    }
    doc = _site(_feature("obstacle", tank, name="tank"))
    _refused(
        tmp_path,
        doc,
        r'^features\[4\] \(obstacle "tank"\): its \d+ boxes bring .*max_boxes=3',
        max_boxes=3,
    )
    assert _load(tmp_path, doc, max_boxes=256).params.num_obstacles > 3


def test_a_poi_in_a_decomposed_box_but_outside_the_real_obstacle_is_refused(tmp_path):
    tank = shapely.geometry.mapping(Point(20, 30).buffer(8, quad_segs=4))
    doc = _site(_feature("obstacle", tank, name="tank"), pois=[(20 + 5.9, 30 + 5.9)])
    assert not Point(25.9, 35.9).within(Point(20, 30).buffer(8, quad_segs=4))
    msg = _refused(
        tmp_path, doc, r'^features\[2\] \(poi "p0"\): lies in a box of obstacle', tolerance=2.0
    )
    assert 'features[3] (obstacle "tank")' in msg and "tolerance 2" in msg


def test_a_tolerance_far_too_fine_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(boxes_mod, "MAX_CELLS", 100)
    tank = shapely.geometry.mapping(Point(20, 30).buffer(8))
    doc = _site(_feature("obstacle", tank, name="tank"))
    _refused(
        tmp_path,
        doc,
        r'^features\[4\] \(obstacle "tank"\): decomposing it at tolerance 0.01',
        tolerance=0.01,
    )


def test_bad_arguments_are_refused(tmp_path):
    _refused(
        tmp_path,
        _site(),
        r"^tolerance: must be a finite number > 0",
        in_file=False,
        tolerance=float("nan"),
    )
    _refused(tmp_path, _site(), r"^max_boxes: must be in", in_file=False, max_boxes=0)
    with pytest.raises(ConfigError, match=r"^map: unsupported site file type '\.txt'"):
        _load(tmp_path, _site(), name="site.txt")
    with pytest.raises(ConfigError, match=r"^map: file not found"):
        load_site(tmp_path / "missing.geojson", PAPER)


# ------------------------------------------------------------------ CSV


def test_csv_of_pois_is_a_whole_map_in_world_units(tmp_path):
    path = tmp_path / "pois.csv"
    path.write_text("\ufeffname,x,y,data\ns1,1.0,2.0,0.5\n\ns2,15,15,\n")
    site = load_site(path, PAPER)
    assert (site.params.width, site.params.height, site.params.num_obstacles) == (16, 16, 0)
    np.testing.assert_allclose(site.map.poi_pos, [[1, 2], [15, 15]])
    np.testing.assert_allclose(site.map.poi_data, [0.5, 1.0])


def test_csv_replaces_the_pois_of_a_site(tmp_path):
    (tmp_path / "site.geojson").write_text(json.dumps(_site()))
    csv_path = tmp_path / "pois.csv"
    csv_path.write_text("x,y\n5,5\n95,45\n70,10\n")
    site = load_site(tmp_path / "site.geojson", PAPER, pois_csv=csv_path)
    assert site.params.num_pois == 3
    np.testing.assert_allclose(site.map.poi_pos[0], [0.8, 0.8], rtol=1e-6)
    csv_path.write_text("x,y,name\n5,5,ok\n30,25,in-hall\n")
    with pytest.raises(
        ConfigError, match=r'^pois\.csv: rows\[1\] \(line 3, PoI "in-hall"\): lies inside obstacle'
    ):
        load_site(tmp_path / "site.geojson", PAPER, pois_csv=csv_path)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", r"^map: pois\.csv is empty"),
        ("x,y\n", r"^map: pois\.csv holds no PoI rows"),
        ("x,z\n1,2\n", r"^pois\.csv: map\.header: columns must be x, y"),
        ("x,y,x\n1,2,3\n", r"^pois\.csv: map\.header"),
        ("x,y\n1,2\n3\n", r"^pois\.csv: rows\[1\] \(line 3\): has 1 fields, the header 2"),
        ("x,y\n1,two\n", r"^pois\.csv: rows\[0\] \(line 2\): y must be a number"),
        ("x,y\nnan,2\n", r"^pois\.csv: rows\[0\] \(line 2\): x must be finite"),
        ("x,y,data\n1,2,-3\n", r"^pois\.csv: rows\[0\] \(line 2\): data must be >= 0"),
        (
            "x,y,name\n1,2,a\n17,2,b\n",
            r'^pois\.csv: rows\[1\] \(line 3, PoI "b"\): PoI \(17, 2\) lies outside',
        ),
        ("x,y\n" + "1" * 80 + ",2\n", r"^pois\.csv: rows\[0\] \(line 2\): x must be a number"),
    ],
)
def test_bad_csv_is_refused_naming_the_row(tmp_path, text, pattern):
    path = tmp_path / "pois.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=pattern) as info:
        load_site(path, PAPER)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------ CLI


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "chainsense", *args], capture_output=True, text=True, timeout=300
    )


def test_cli_evaluates_on_the_example_site(tmp_path):
    out = _cli(
        "evaluate", "--preset", "small", "--map", str(EXAMPLE), "-n", "2", "--out", str(tmp_path)
    )
    assert out.returncode == 0, out.stderr
    assert "industrial_yard.geojson" in out.stdout and "boxes" in out.stdout
    summary = json.loads((tmp_path / "eval.json").read_text())
    assert set(summary) == {"random", "greedy"}


def test_cli_refuses_a_bad_site_in_one_line(tmp_path):
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps(_site(pois=[(30, 25)])))
    out = _cli("render", "--map", str(path), "--out", str(tmp_path))
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and 'features[2] (poi "p0")' in lines[0], out.stderr
