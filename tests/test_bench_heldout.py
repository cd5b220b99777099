"""benchmarks/bench_heldout.py: saved fleets re-scored on many held-out maps beside the
baselines; the 20-map figures of a run are the first 20 maps of these."""

import json
import subprocess
from pathlib import Path

import jax
import pytest

from bench_scripts import run_script
from chainsense.marl import algos, checkpoint, session
from chainsense.marl.config import TrainConfig
from chainsense.marl.evaluate import evaluate
from chainsense.marl.learned import LearnedPolicy
from chainsense.marl.registry import baseline
from chainsense.sim.params import preset


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return run_script("bench_heldout", *args)


@pytest.fixture(scope="module")
def fleets(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("fleets")
    cfg = TrainConfig(algo="mappo", num_envs=16, chunk_iters=2)
    for seed in (0, 1):
        session.run(cfg, preset("small"), seed=seed, steps=1, out_dir=out / f"mappo_{seed}")
    return [out / f"mappo_{s}" / "fleet.msgpack" for s in (0, 1)]


def test_scores_each_seed_and_the_baselines_on_the_same_maps(
    fleets: list[Path], tmp_path: Path
) -> None:
    res = _bench(*map(str, fleets), "--episodes", "5", "--first-map", "300", "--json",
                 str(tmp_path / "h.json"))  # fmt: skip
    assert res.returncode == 0, res.stderr
    rep = json.loads((tmp_path / "h.json").read_text())
    assert rep["episodes"] == [300, 301, 302, 303, 304]
    ck = checkpoint.load(fleets[1])
    want = evaluate(LearnedPolicy(ck.learner.actor, ck.cfg), ck.params, range(300, 305)).mean
    assert rep["runs"][1]["mean"]["energy_efficiency"] == pytest.approx(want["energy_efficiency"])
    effs = [r["mean"]["energy_efficiency"] for r in rep["runs"]]
    assert rep["rows"]["fleet"]["energy_efficiency"][0] == pytest.approx(sum(effs) / 2)
    greedy = rep["rows"]["greedy"]["energy_efficiency"][0]
    assert rep["per_seed_x_greedy"] == pytest.approx([e / greedy for e in effs])
    assert "greedy-local" in rep["rows"] and "x greedy" in res.stdout


def test_fleets_of_different_worlds_and_bad_counts_are_refused(
    fleets: list[Path], tmp_path: Path
) -> None:
    cfg = TrainConfig(algo="mappo", num_envs=16, chunk_iters=2)
    paper = checkpoint.Checkpoint(  # an untrained fleet of another world is enough to refuse
        cfg, preset("paper"), algos.init_learner(jax.random.PRNGKey(0), cfg, preset("paper")), {}
    )
    checkpoint.save(tmp_path / "paper.msgpack", paper)
    mixed = _bench(str(fleets[0]), str(tmp_path / "paper.msgpack"), "--episodes", "2")
    assert mixed.returncode != 0 and "another world" in mixed.stderr
    bad = _bench(str(fleets[0]), "--episodes", "0")
    assert bad.returncode != 0 and "--episodes" in bad.stderr
    alone = _bench("--episodes", "2")
    assert alone.returncode != 0 and "--preset" in alone.stderr
    both = _bench(str(fleets[0]), "--preset", "small", "--episodes", "2")
    assert both.returncode != 0 and "one or the other" in both.stderr


def test_without_checkpoints_it_scores_the_baselines_of_a_preset(tmp_path: Path) -> None:
    res = _bench("--preset", "small", "--world", "num_mts=3", "--episodes", "3", "--first-map",
                 "300", "--baselines", "greedy,greedy-jain",
                 "--json", str(tmp_path / "b.json"))  # fmt: skip
    assert res.returncode == 0, res.stderr
    rep = json.loads((tmp_path / "b.json").read_text())
    assert set(rep["rows"]) == {"greedy", "greedy-jain"} and rep["runs"] == []
    small = preset("small").replace(num_mts=3)
    want = evaluate(baseline("greedy-jain"), small, range(300, 303)).mean
    assert rep["rows"]["greedy-jain"]["energy_efficiency"][0] == pytest.approx(
        want["energy_efficiency"]
    )
    assert rep["params"]["num_mts"] == 3 and "x greedy" in res.stdout
