"""Sweeps on a real local Ray: the smoke sweep, a failing run, resume, reports of partial runs.

One Ray is started for the module (about 4 s) and used by every sweep here, as a user's
already-initialised Ray would be. The whole module is in the slow suite: the smoke sweep its
tests share (six runs in Ray workers, 130-200 s) is then built once per CI run, not once per
suite. test_sweep_spec.py tests the specs without Ray in the fast suite.
"""

import contextlib
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
import ray.util

from chainsense.devnet import free_ports
from chainsense.experiments import (
    sweep_engine,
    sweep_presets,
    sweep_report,
    sweep_run,
    sweep_spec,
    sweeps,
)
from chainsense.marl import checkpoint
from chainsense.sim.metrics import PAPER_METRICS
from chainsense.sim.params import preset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def smoke_dir(local_ray: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("smoke")
    seen: list[sweep_engine.Progress] = []
    outcome = sweep_engine.run_sweep(sweep_presets.preset("smoke"), out, on_progress=seen.append)
    assert outcome.failures == {} and outcome.ran == 6 and outcome.skipped == 0
    assert seen[-1].finished == 6 and seen[-1].total == 6 and seen[-1].running == []
    return out


def _mtimes(out: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file()}


def test_smoke_sweep_writes_every_run_and_a_report(smoke_dir: Path) -> None:
    results, skipped = sweep_report.load_results(smoke_dir)
    assert skipped == [] and len(results) == 6
    learned = [r for r in results if r["policy"] == "maddpg"]
    assert sorted((r["value"], r["seed"]) for r in learned) == [(1, 0), (1, 1), (2, 0), (2, 1)]
    for r in learned:
        assert r["training"]["env_steps"] >= 2_000 and r["cpu_seconds"] > 0
        ck = checkpoint.load(sweep_run.run_dir(smoke_dir, r["run_id"]) / sweep_run.FLEET)
        assert ck.params.num_mts == r["value"] and ck.progress["seed"] == r["seed"]
    # the two seeds trained different fleets
    by_seed = {r["seed"]: r["per_episode"] for r in learned if r["value"] == 2}
    assert by_seed[0] != by_seed[1]
    rep = sweep_report.write_report(smoke_dir)
    assert {p.name for p in rep.files} == {
        "sweep_summary.csv", "sweep_summary.md", "metrics_vs_num_mts_small.png"
    }  # fmt: skip
    maddpg = [p for p in rep.points if p.policy == "maddpg"]
    assert [(p.value, p.n, p.over) for p in maddpg] == [(1, 2, "seeds"), (2, 2, "seeds")]
    greedy = [p for p in rep.points if p.policy == "greedy"]
    assert [(p.n, p.over) for p in greedy] == [(4, "episodes")] * 2


def test_rerun_runs_nothing_already_finished(smoke_dir: Path) -> None:
    before = _mtimes(smoke_dir)
    outcome = sweep_engine.run_sweep(sweep_presets.preset("smoke"), smoke_dir)
    assert (outcome.ran, outcome.skipped, outcome.failures) == (0, 6, {})
    assert _mtimes(smoke_dir) == before


def test_another_spec_cannot_reuse_the_directory(smoke_dir: Path) -> None:
    with pytest.raises(sweep_engine.ConfigError) as err:
        sweep_engine.run_sweep(sweep_presets.preset("smoke", episodes=5), smoke_dir)
    assert err.value.field == "out"


def test_report_of_a_partial_directory(smoke_dir: Path, tmp_path: Path) -> None:
    part = tmp_path / "partial"
    shutil.copytree(smoke_dir / "runs", part / "runs")
    shutil.rmtree(part / "runs/small/num_mts=2/maddpg/seed1")  # not finished yet
    (part / "runs/small/num_mts=1/maddpg/seed1/result.json").write_text('{"half": ')  # torn
    (part / "runs/stray").mkdir()
    (part / "runs/stray/result.json").write_text(json.dumps({"format": "else"}))
    rep = sweep_report.write_report(part)
    assert rep.runs == 4 and len(rep.skipped) == 2
    maddpg = [(p.value, p.n) for p in rep.points if p.policy == "maddpg"]
    assert maddpg == [(1, 1), (2, 1)]
    assert all(p.ci["fairness"] == 0.0 for p in rep.points if p.policy == "maddpg")
    assert (part / "metrics_vs_num_mts_small.png").is_file()
    empty = sweep_report.write_report(tmp_path / "nothing")
    assert empty.points == [] and empty.files == []


def test_a_failing_run_is_retried_reported_and_the_rest_completes(
    local_ray: None, tmp_path: Path
) -> None:
    (tmp_path / "pois.csv").write_text("x,y,data\n1,1,0.5\n6,6,0.5\n7,2,0.5\n")
    spec_file = tmp_path / "spec.toml"
    # the PoIs reach x = 7: on the 5-wide world of the second grid value they lie outside
    spec_file.write_text(
        '[sweep]\nmaps = ["pois.csv"]\nmap_preset = "small"\npolicies = ["greedy"]\n'
        "episodes = 2\n[sweep.grid]\nwidth = [8.0, 5.0]\n"
    )
    out = tmp_path / "out"
    outcome = sweep_engine.run_sweep(sweep_spec.load(spec_file), out)
    bad = "map:pois.csv/width=5/greedy/baseline"
    assert outcome.ran == 1 and list(outcome.failures) == [bad]
    assert "outside the area" in outcome.failures[bad]
    assert json.loads((out / sweep_engine.FAILURES_FILE).read_text()) == outcome.failures
    assert not (sweep_run.run_dir(out, bad) / sweep_run.RESULT).exists()
    ok = json.loads(
        (sweep_run.run_dir(out, "map:pois.csv/width=8/greedy/baseline") / "result.json").read_text()
    )
    assert ok["policy"] == "greedy" and len(ok["per_episode"]["fairness"]) == 2


def test_a_run_gives_the_same_numbers_as_the_sequential_reproduce(smoke_dir: Path) -> None:
    smoke = sweep_presets.preset("smoke")
    run = next(r for r in smoke.runs() if r.run_id == "small/num_mts=1/maddpg/seed0")
    assert run.train is not None and run.steps is not None
    tiny = sweeps.Spec(
        name="tiny",
        world=preset("small"),
        mts=(1,),
        ranges=(),
        seeds=1,
        episodes=smoke.episodes,
        train_steps=run.steps,
        train=run.train,
    )
    sweeps.run(tiny, smoke_dir / "sequential")
    with (smoke_dir / "sequential" / "reproduce.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["policy"] == "maddpg"]
    on_ray = json.loads((sweep_run.run_dir(smoke_dir, run.run_id) / "result.json").read_text())
    assert [int(r["episode_seed"]) for r in rows] == on_ray["eval_seeds"]
    for metric in PAPER_METRICS:
        # the sequential CSV holds repr-exact floats: the same fleet acted the same way
        assert [float(r[metric]) for r in rows] == on_ray["per_episode"][metric], metric


KILL_SPEC = """
[sweep]
scenarios = ["small"]
policies = ["greedy", "random"]
episodes = 3
[sweep.grid]
num_mts = [1, 2, 3, 4]
"""


def test_killed_sweep_resumes_without_repeating_a_finished_run(tmp_path: Path) -> None:
    spec, out = tmp_path / "spec.toml", tmp_path / "out"
    spec.write_text(KILL_SPEC)
    cmd = [sys.executable, "-m", "chainsense", "sweep", str(spec), "--out", str(out)]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while len(list(out.rglob("result.json"))) < 2:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started
    proc.wait()
    finished = {str(p): p.stat().st_mtime_ns for p in out.rglob("result.json")}
    assert 2 <= len(finished) < 8
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert f"{8 - len(finished)} runs done, {len(finished)} already there, 0 failed" in res.stdout
    after = {str(p): p.stat().st_mtime_ns for p in out.rglob("result.json")}
    assert len(after) == 8 and all(after[k] == v for k, v in finished.items())


def _kill_cluster(temp_dir: str) -> None:
    """Stop the Ray this test started, by the ids of its processes (``ray stop`` would stop
    every Ray on the machine)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if temp_dir in cmdline and int(proc.name) != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGKILL)


def test_sweep_joins_an_existing_cluster(tmp_path: Path) -> None:
    temp_dir = tempfile.mkdtemp(prefix="cs-ray-")  # short: Ray's socket paths must fit 107 bytes
    port = free_ports(1)[0]
    ray_cli = str(Path(sys.executable).with_name("ray"))
    head = [ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2"]
    head += ["--include-dashboard=false", f"--temp-dir={temp_dir}", "--disable-usage-stats"]
    # a throwaway cluster of this test only: no token to hand from the head to the driver
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    address = f"{ray.util.get_node_ip_address()}:{port}"
    try:
        subprocess.run(head, check=True, capture_output=True, timeout=120, env=env)
        spec, out = tmp_path / "spec.toml", tmp_path / "out"
        spec.write_text(KILL_SPEC.replace("[1, 2, 3, 4]", "[1]"))
        cmd = [sys.executable, "-m", "chainsense", "sweep", str(spec), "--out", str(out)]
        res = subprocess.run(
            [*cmd, "--address", address], capture_output=True, text=True, timeout=600, env=env
        )
        assert res.returncode == 0, res.stderr
        assert "2 runs done, 0 already there, 0 failed" in res.stdout
        # the runs' workers logged into the cluster's session, not into a Ray of their own
        assert list(Path(temp_dir).glob("session_*/logs/worker-*"))
        assert not (out / sweep_engine.CACHE_DIR).exists()  # a cluster gets no local cache
    finally:
        _kill_cluster(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
