"""benchmarks/plot_throughput.py and plot_imitation.py: each draws its figure from the reports
committed under docs/figures/learning, and plot_throughput refuses a report that is not a
--throughput one, naming the file."""

import json
from pathlib import Path

import pytest

from bench_scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures" / "learning"


def _script(name: str):
    return load_script(name)


def test_throughput_plot_from_the_quiet_reports(tmp_path: Path, monkeypatch) -> None:
    reports = [str(FIGURES / "sharding" / "quiet" / f"{n}.json") for n in ("default", "e2m2")]
    out = tmp_path / "t.png"
    monkeypatch.setattr("sys.argv", ["plot_throughput.py", *reports, "--out", str(out)])
    _script("plot_throughput").main()
    assert out.stat().st_size > 1000


def test_throughput_plot_refuses_a_comparison_report(tmp_path: Path, monkeypatch) -> None:
    bad = tmp_path / "comparison.json"
    bad.write_text(json.dumps({"preset": "paper", "rows": {}}))
    out = tmp_path / "t.png"
    monkeypatch.setattr("sys.argv", ["plot_throughput.py", str(bad), "--out", str(out)])
    with pytest.raises(SystemExit, match=r"comparison\.json: not a --throughput report"):
        _script("plot_throughput").main()
    assert not out.exists()


def test_imitation_plot_from_the_committed_report(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "i.png"
    report = str(FIGURES / "imitation" / "paper.json")
    monkeypatch.setattr("sys.argv", ["plot_imitation.py", report, "--out", str(out)])
    _script("plot_imitation").main()
    assert out.stat().st_size > 1000
