"""benchmarks/bench_learning.py: runs on the CPU device with world overrides, and a missing
device ends with one line naming the flag (the GPU path needs the cuda extra)."""

import json
import subprocess
from pathlib import Path

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


def test_missing_device_names_the_flag() -> None:
    res = _run("--device", "gpu", "--throughput", "--algos", "mappo")
    assert res.returncode != 0
    assert "--device gpu" in res.stderr and "cuda" in res.stderr


def test_bad_world_key_is_named() -> None:
    res = _run("--world", "share_dlay=1", "--throughput", "--algos", "mappo")
    assert res.returncode != 0 and "share_dlay" in res.stderr
