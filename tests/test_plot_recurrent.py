"""benchmarks/plot_recurrent.py: arms are named by their config and grouped by preset; a report
without MAPPO runs is refused by name."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "plot_recurrent.py"


def _report(preset: str, recurrent: bool, eff: float) -> dict:
    curve = [{"env_steps": s, "energy_efficiency": eff * s / 4e6} for s in (1e6, 2e6, 4e6)]
    run = {"curve": curve, "mean": {"parked_slots": 80.0 - 10 * recurrent, "stuck_slots": 3.0}}
    return {
        "preset": preset,
        "config": {"mappo": {"recurrent": recurrent}},
        "runs": {"mappo": [run, run]},
        "rows": {
            "mappo": {"energy_efficiency": [eff, 0.1]},
            "greedy": {"energy_efficiency": [6, 0]},
        },
    }


def _plot(tmp_path: Path, reports: list[dict]) -> subprocess.CompletedProcess[str]:
    files = []
    for i, rep in enumerate(reports):
        p = tmp_path / f"r{i}.json"
        p.write_text(json.dumps(rep))
        files.append(str(p))
    cmd = [sys.executable, str(SCRIPT), *files, "--out", str(tmp_path / "r.png")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_two_presets_two_arms_are_plotted(tmp_path: Path) -> None:
    reps = [_report(p, r, 6.0) for p in ("paper", "energy") for r in (False, True)]
    res = _plot(tmp_path, reps)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "r.png").stat().st_size > 1000


def test_report_without_mappo_is_named(tmp_path: Path) -> None:
    bad = _report("paper", False, 6.0)
    bad["runs"] = {"maddpg": bad["runs"]["mappo"]}
    res = _plot(tmp_path, [bad])
    assert (
        res.returncode != 0 and "r0.json: not a bench_learning.py report with MAPPO" in res.stderr
    )
    assert not (tmp_path / "r.png").exists()
