"""benchmarks/plot_standing.py: ratios are taken to the better heuristic of the same report, the
target follows the scenario, and the plot is written."""

import json
import math
from pathlib import Path

from bench_scripts import load_script

plot_standing = load_script("plot_standing")


def _report(preset: str, world: list[str], rows: dict[str, float]) -> dict:
    cells = {
        n: {"energy_efficiency": [v, 0.1 if n != "planner" else math.nan]} for n, v in rows.items()
    }
    return {"preset": preset, "args": {"world": world}, "rows": cells}


def test_ratio_to_the_better_heuristic_and_labels() -> None:
    rep = _report(
        "dynamic", [], {"mappo": 0.5, "greedy": 0.96, "greedy-local": 1.0, "planner": 1.2}
    )
    s = plot_standing.standing(rep, "GRU")
    assert s["GRU"] == (0.5, 0.1) and "mappo" not in s
    assert s["greedy"] == (0.96, 0.1) and s["planner"] == (1.2, 0.0)  # NaN interval: none drawn
    tuned = _report("energy", [], {"mappo": 0.36, "greedy": 0.3, "greedy-fair": 0.35})
    s = plot_standing.standing(tuned, "targets")
    assert s["greedy-fair"] == (0.35 / 0.3, 0.1 / 0.3) and s["targets"] == (1.2, 0.1 / 0.3)
    only_greedy = _report("paper", [], {"mappo": 6.0, "greedy": 5.0})
    assert plot_standing.standing(only_greedy)["mappo"] == (1.2, 0.02)


def test_target_follows_the_scenario() -> None:
    assert plot_standing.target(_report("paper", [], {"greedy": 1.0})) == 1.03
    shared = _report("paper", ["observe_radius=3", "share_delay=1"], {"greedy": 1.0})
    assert plot_standing.target(shared) == 1.10
    assert plot_standing.scenario(shared) == "paper observe_radius=3 share_delay=1"
    assert plot_standing.target(_report("energy", [], {"greedy": 1.0})) == 1.10


def test_plot_is_written(tmp_path: Path, monkeypatch) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_report("paper", [], {"mappo": 5.9, "greedy": 6.0})))
    b.write_text(json.dumps(_report("energy", [], {"mappo": 0.27, "greedy": 0.29})))
    out = tmp_path / "s.png"
    monkeypatch.setattr("sys.argv", ["plot_standing.py", str(a), f"{b}=GRU", "--out", str(out)])
    plot_standing.main()
    assert out.stat().st_size > 1000
