"""benchmarks/plot_selection.py: reads every scoring of a run, marks the kept fleet, refuses a
report trained without selection."""

import json
from pathlib import Path

import pytest

from bench_scripts import BENCHMARKS, load_script

plot_selection = load_script("plot_selection")


def _run(seed: int, history: list[list[float]], best: int, test: float) -> dict:
    sel = {"history": history, "best_env_steps": history[best][0], "best_score": history[best][1]}
    return {"seed": seed, "selection": sel, "mean": {"energy_efficiency": test}}


REPORT = {
    "preset": "paper",
    "runs": {"mappo": [_run(0, [[2e6, 5.9], [4e6, 6.3], [6e6, 4.1]], 1, 6.2)]},
    "rows": {
        "greedy": {"energy_efficiency": [6.02, 0.1]},
        "mappo": {"energy_efficiency": [6.2, 0]},
    },
}


def test_scored_and_kept_come_from_the_selection_report() -> None:
    run = REPORT["runs"]["mappo"][0]
    assert plot_selection.scored(run) == ([2e6, 4e6, 6e6], [5.9, 6.3, 4.1])
    assert plot_selection.kept(run) == (4e6, 6.3, 6.2)


def test_the_target_line_is_the_preset_s_own() -> None:
    assert plot_selection.target(REPORT) == (pytest.approx(1.03 * 6.02), "1.03 x greedy")
    rows = {"greedy": {"energy_efficiency": [0.28, 0.01]},
            "greedy-local": {"energy_efficiency": [0.30, 0.01]}}  # fmt: skip
    charging = {**REPORT, "preset": "charging", "rows": rows}
    assert plot_selection.target(charging) == (pytest.approx(0.33), "1.10 x greedy-local")
    assert plot_selection.target({**REPORT, "preset": "large", "rows": {}}) is None
    # paper with partial observation is judged as the scenarios are, by the better heuristic
    partial = {**REPORT, "args": {"world": ["observe_radius=3", "share_delay=1"]}}
    assert plot_selection.target(partial) == (pytest.approx(1.10 * 6.02), "1.10 x greedy")
    tuned = {**rows, "greedy-fair": {"energy_efficiency": [0.40, 0.01]}}  # drawn, not the target
    assert plot_selection.target({**charging, "rows": tuned}) == (
        pytest.approx(0.33),
        "1.10 x greedy-local",
    )
    assert (
        plot_selection.heuristics({"rows": tuned}, tuple(plot_selection.STYLES))["greedy-fair"]
        == 0.40
    )


def test_plot_is_written_and_a_report_without_selection_is_refused(tmp_path: Path) -> None:
    out = plot_selection.plot(REPORT, tmp_path / "sel.png")
    assert out.stat().st_size > 10_000
    bare = {**REPORT, "runs": {"mappo": [{"seed": 0, "selection": {}, "mean": {}}]}}
    with pytest.raises(SystemExit, match="select_every"):
        plot_selection.plot(bare, tmp_path / "none.png")


def test_runs_chosen_by_the_collection_ratio_are_drawn_in_that_metric() -> None:
    """A report whose runs were chosen by the data collection ratio (``select_metric``) draws
    the kept fleet's held-out collection and the heuristics' collection, not their efficiency;
    the target is 1.10x the better heuristic in that metric (the committed `dynamic` run)."""
    path = BENCHMARKS.parent / "docs" / "figures" / "learning" / "grid"
    report = json.loads((path / "dynamic_targets_grid_t05_3s.json").read_text())
    assert plot_selection.metric(report) == "data_collection_ratio"
    assert plot_selection.metric(REPORT) == "energy_efficiency"  # reports from before
    run = report["runs"]["mappo"][0]
    assert plot_selection.kept(run)[2] == run["mean"]["data_collection_ratio"]
    greedy = report["rows"]["greedy"]["data_collection_ratio"][0]
    assert plot_selection.heuristics(report)["greedy"] == greedy
    assert plot_selection.target(report) == (pytest.approx(1.10 * greedy), "1.10 x greedy")
