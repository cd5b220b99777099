"""benchmarks/bench_learning.py: runs on the CPU device with world overrides, sweeps numbers of
worlds, and a missing device or a bad flag ends with one line naming the flag (the GPU path
needs the cuda extra)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench_scripts import run_script


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_script("bench_learning", *args)


def test_throughput_on_cpu_with_world_overrides(tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    res = _run(
        "--device", "cpu", "--preset", "small", "--world", "observe_radius=2",
        "--world", "share_delay=5", "--throughput", "--algos", "mappo", "--chunks", "1",
        "--set", "num_envs=16", "--set", "chunk_iters=1", "--json", str(out),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "device: cpu" in res.stdout and "'share_delay': 5" in res.stdout
    report = json.loads(out.read_text())
    assert report["throughput"]["mappo"]["env_steps_s"] > 0


def test_throughput_sweeps_numbers_of_worlds(tmp_path: Path) -> None:
    out = tmp_path / "sweep.json"
    res = _run(
        "--device", "cpu", "--preset", "small", "--throughput", "--algos", "mappo",
        "--num-envs", "8,16", "--chunks", "1", "--min-seconds", "0.2",
        "--set", "chunk_iters=2", "--json", str(out),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    report = json.loads(out.read_text())
    sweep = report["throughput"]
    assert set(sweep) == {"mappo/8", "mappo/16"}
    assert [sweep[k]["num_envs"] for k in ("mappo/8", "mappo/16")] == [8, 16]
    assert all(t["env_steps_s"] > 0 for t in sweep.values())
    # the CPU reports no allocator peak of its own: the process's peak stands for it
    assert report["device_peak_mb"] is None and report["peak_mb"] > 0


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--throughput", "--num-envs", "0,16"), "--num-envs"),
        (("--throughput", "--num-envs", "many"), "--num-envs"),
        (("--num-envs", "16"), "--num-envs"),  # a sweep without --throughput
        (("--throughput", "--chunks", "0"), "--chunks"),
        (("--throughput", "--min-seconds", "-1"), "--min-seconds"),
    ],
)
def test_bad_sweep_flags_are_named(args: tuple[str, ...], named: str) -> None:
    res = _run("--device", "cpu", "--algos", "mappo", *args)
    assert res.returncode != 0 and named in res.stderr


def test_missing_device_names_the_flag() -> None:
    res = _run("--device", "gpu", "--throughput", "--algos", "mappo")
    assert res.returncode != 0
    assert "--device gpu" in res.stderr and "cuda" in res.stderr


def test_bad_world_key_is_named() -> None:
    res = _run("--world", "share_dlay=1", "--throughput", "--algos", "mappo")
    assert res.returncode != 0 and "share_dlay" in res.stderr


def test_the_gpu_script_stops_where_jax_has_no_gpu(tmp_path: Path) -> None:
    """bench_gpu.sh measures nothing on a machine without a GPU: no CPU figures passed off as
    the GPU's."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu.sh"
    res = subprocess.run(
        ["bash", str(script), str(tmp_path / "gpu")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert res.returncode != 0
    assert not list((tmp_path / "gpu").glob("*.json"))
