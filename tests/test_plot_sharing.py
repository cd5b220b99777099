"""benchmarks/plot_sharing.py: reports are put in delay order with "never" (-1) last and the
plot is written."""

import json
from pathlib import Path

from bench_scripts import load_script

plot_sharing = load_script("plot_sharing")


def _report(delay: int | None, eff: float) -> dict:
    world = ["observe_radius=3"] + ([f"share_delay={delay}"] if delay is not None else [])
    rows = {
        "mappo": {"energy_efficiency": [eff, 0.1]},
        "greedy-local": {"energy_efficiency": [eff - 1, 0.2]},
    }
    return {"preset": "paper", "args": {"world": world}, "rows": rows}


def test_series_orders_delays_with_never_last() -> None:
    reps = [_report(-1, 4.0), _report(20, 5.0), _report(None, 6.0), _report(5, 5.5)]
    data = plot_sharing.series(reps)
    assert [d for d, _, _ in data["mappo"]] == [0, 5, 20, -1]
    assert data["greedy-local"][0] == (0, 5.0, 0.2)


def test_heldout_reports_take_the_delay_from_the_fleets_world() -> None:
    rows = {"fleet": {"energy_efficiency": [6.0, 0.1]}}
    reps = [
        {"rows": rows, "params": {"share_delay": d, "observe_radius": 3.0}} for d in (-1, 20, 1)
    ]
    assert [d for d, _, _ in plot_sharing.series(reps)["fleet"]] == [1, 20, -1]


def test_plot_is_written(tmp_path: Path, monkeypatch) -> None:
    files = []
    for i, d in enumerate((0, 1, -1)):
        p = tmp_path / f"r{i}.json"
        p.write_text(json.dumps(_report(d, 5.0 + i)))
        files.append(str(p))
    out = tmp_path / "s.png"
    monkeypatch.setattr("sys.argv", ["plot_sharing.py", *files, "--out", str(out)])
    plot_sharing.main()
    assert out.stat().st_size > 1000
