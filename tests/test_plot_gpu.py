"""benchmarks/plot_gpu.py: draws the committed GPU measurement (throughput sweeps beside the
validation curves), and refuses a report of the wrong kind, naming the file."""

import json
from pathlib import Path

import pytest

from bench_scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
GPU = ROOT / "docs" / "figures" / "learning" / "gpu"


def _module():
    return load_script("plot_gpu")


def _main(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    monkeypatch.setattr("sys.argv", ["plot_gpu.py", *args])
    _module().main()


def test_figure_from_the_committed_reports(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "gpu.png"
    _main(
        monkeypatch,
        "--throughput", str(GPU / "gpu_mappo_paper.json"), str(GPU / "cpu_paper.json"),
        "--training", f"{GPU / 'gpu_energy_3min.json'}=GPU",
        "--target", "250000", "--out", str(out),
    )  # fmt: skip
    assert out.stat().st_size > 1000


def test_sweep_series_group_by_device_preset_and_algorithm() -> None:
    report = json.loads((GPU / "gpu_mappo_paper.json").read_text())
    series = _module().sweep_series(report)
    assert list(series) == ["gpu paper mappo"]
    worlds = [w for w, _ in series["gpu paper mappo"]]
    assert worlds == sorted(worlds) and worlds[0] == 256


@pytest.mark.parametrize("flag", ["--throughput", "--training"])
def test_a_report_of_the_wrong_kind_is_named(tmp_path: Path, monkeypatch, flag: str) -> None:
    bad = tmp_path / "wrong.json"
    bad.write_text(json.dumps({"preset": "paper"}))
    out = tmp_path / "gpu.png"
    sweep = str(GPU / "gpu_mappo_paper.json")
    args = ["--throughput", str(bad)] if flag == "--throughput" else [
        "--throughput", sweep, "--training", str(bad)
    ]  # fmt: skip
    with pytest.raises(SystemExit, match=r"wrong\.json: not a"):
        _main(monkeypatch, *args, "--out", str(out))
    assert not out.exists()
