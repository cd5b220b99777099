"""benchmarks/plot_heldout.py: reports of one scenario are merged only when scored on the same
maps of the same world, ratios are to that group's greedy, and the plot is written."""

import importlib
import json
import math
from pathlib import Path
from types import ModuleType

import pytest

from bench_scripts import BENCHMARKS


@pytest.fixture
def plot_heldout(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as a module (it imports its sibling plot_standing, as when run)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("plot_heldout")


def _write(path: Path, rows: dict[str, float], episodes=(10000, 10001), energy=38.0) -> Path:
    cells = {
        n: {"energy_efficiency": [v, 0.01 if n == "fleet" else math.nan]} for n, v in rows.items()
    }
    path.write_text(
        json.dumps(
            {"episodes": list(episodes), "params": {"initial_energy": energy}, "rows": cells}
        )
    )
    return path


def test_rows_of_the_same_maps_merge_and_ratios_are_to_greedy(
    plot_heldout: ModuleType, tmp_path: Path
) -> None:
    a = _write(tmp_path / "a.json", {"fleet": 0.36, "greedy": 0.3})
    b = _write(tmp_path / "b.json", {"coverage": 0.39})
    r = plot_heldout.ratios(plot_heldout.merged_rows([a, b]))
    assert list(r) == ["fleet", "greedy", "coverage"]
    assert r["fleet"] == pytest.approx((1.2, 0.01 / 0.3)) and r["coverage"] == pytest.approx(
        (1.3, 0.0)
    )


@pytest.mark.parametrize("other", [{"episodes": (10000, 10002)}, {"energy": 500.0}])
def test_reports_of_other_maps_or_worlds_are_refused_by_name(
    plot_heldout: ModuleType, tmp_path: Path, other
) -> None:
    a = _write(tmp_path / "a.json", {"greedy": 0.3})
    b = _write(tmp_path / "b.json", {"coverage": 0.39}, **other)
    with pytest.raises(SystemExit, match=r"b\.json"):
        plot_heldout.merged_rows([a, b])


def test_a_policy_scored_differently_in_two_reports_is_refused(
    plot_heldout: ModuleType, tmp_path: Path
) -> None:
    a = _write(tmp_path / "a.json", {"fleet": 0.36, "greedy": 0.3})
    b = _write(tmp_path / "b.json", {"greedy": 0.31, "coverage": 0.39})  # greedy changed since
    with pytest.raises(SystemExit, match=r"b\.json: its greedy row"):
        plot_heldout.merged_rows([a, b])
    same = _write(tmp_path / "c.json", {"greedy": 0.3, "coverage": 0.39})
    assert plot_heldout.merged_rows([a, same])["greedy"]["energy_efficiency"][0] == 0.3


def test_a_group_without_greedy_and_a_malformed_argument_are_refused(
    plot_heldout: ModuleType, tmp_path: Path
) -> None:
    b = _write(tmp_path / "b.json", {"coverage": 0.39})
    with pytest.raises(SystemExit, match="greedy"):
        plot_heldout.merged_rows([b])
    for bad in ("energy", "=a.json", "energy="):
        with pytest.raises(SystemExit, match="LABEL=REPORT"):
            plot_heldout.parse_group(bad)


def test_plot_is_written(plot_heldout: ModuleType, tmp_path: Path, monkeypatch) -> None:
    a = _write(tmp_path / "a.json", {"fleet": 0.36, "greedy": 0.3})
    b = _write(tmp_path / "b.json", {"coverage": 0.39})
    c = _write(tmp_path / "c.json", {"greedy": 6.0, "coverage": 4.5}, energy=500.0)
    out = tmp_path / "h.png"
    argv = ["plot_heldout.py", f"energy={a},{b}", f"paper={c}", "--out", str(out)]
    monkeypatch.setattr("sys.argv", argv)
    plot_heldout.main()
    assert out.stat().st_size > 1000
