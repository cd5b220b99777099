"""benchmarks/plot_grid.py: draws the committed lattice sweep, orders it by spacing, and refuses
a report of the wrong kind or of other maps, naming it."""

import json
from pathlib import Path

import pytest

from bench_scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "docs" / "figures" / "learning" / "grid"
SPACINGS = ("0", "0.5", "0.25", "0.125", "0.0625")


def _module():
    return load_script("plot_grid")


def _reports() -> list[Path]:
    return [GRID / f"weights_grid_{g}.json" for g in SPACINGS]


def test_figure_from_the_committed_reports(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "grid.png"
    monkeypatch.setattr("sys.argv", ["plot_grid.py", *map(str, _reports()), "--out", str(out)])
    _module().main()
    assert out.stat().st_size > 1000


def test_series_run_from_the_finest_lattice_to_the_pois_only() -> None:
    module = _module()
    lines = module.series([module.load(p) for p in _reports()])
    assert set(lines) == {"1, 1, 2", "1, 1, 2, Jain 0.3"}
    spacings = [s for s, _ in lines["1, 1, 2"]]
    assert spacings == [0.0625, 0.125, 0.25, 0.5, 0.0]
    # the committed sweep: the finer the lattice, the more collected (the PoIs only the least)
    ratios = [x["data_collection_ratio"] for _, x in lines["1, 1, 2"]]
    assert ratios[-1] == min(ratios) and ratios[1] > 1.10 > ratios[3]


def test_a_report_of_the_wrong_kind_or_other_maps_is_refused(tmp_path: Path, monkeypatch) -> None:
    bad = tmp_path / "wrong.json"
    bad.write_text(json.dumps({"preset": "dynamic", "points": []}))
    out = tmp_path / "grid.png"
    monkeypatch.setattr("sys.argv", ["plot_grid.py", str(bad), "--out", str(out)])
    with pytest.raises(SystemExit, match=r"wrong\.json: not a"):
        _module().main()
    other = json.loads(_reports()[1].read_text())
    other["maps"] = [1, 2, 3]
    moved = tmp_path / "other.json"
    moved.write_text(json.dumps(other))
    argv = ["plot_grid.py", str(_reports()[0]), str(moved), "--out", str(out)]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit, match="other maps"):
        _module().main()
    assert not out.exists()
