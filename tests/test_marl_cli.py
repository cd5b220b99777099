"""train, evaluate --checkpoint and reproduce from the CLI: outputs, exit 2 on mistakes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chainsense.cli import main
from chainsense.errors import ConfigError
from chainsense.experiments import sweeps
from chainsense.marl import checkpoint


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chainsense", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_train_then_evaluate_checkpoint(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("[train]\nnum_envs = 16\nwarmup_steps = 500\nchunk_iters = 10\n")
    out = tmp_path / "run"
    res = run_cli(
        "train", "--preset", "small", "--steps", "3200", "--config", str(cfg),
        "--out", str(out), "--eval-episodes", "3", "--no-compare", "--algo", "iddpg",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    for name in ("fleet.msgpack", "train_log.csv", "curves.png", "eval.json"):
        assert (out / name).is_file(), name
    assert "iddpg" in json.loads((out / "eval.json").read_text())
    ev = run_cli(
        "evaluate", "--policy", "iddpg", "--policy", "random", "--preset", "small", "-n", "2",
        "--checkpoint", str(out / "fleet.msgpack"), "--out", str(tmp_path / "ev"),
    )  # fmt: skip
    assert ev.returncode == 0, ev.stderr
    assert set(json.loads((tmp_path / "ev" / "eval.json").read_text())) == {"iddpg", "random"}
    noisy = {}
    for noise in ("0", "2"):
        res = run_cli(
            "evaluate", "--policy", "iddpg", "--preset", "small", "-n", "2", "--eval-noise", noise,
            "--checkpoint", str(out / "fleet.msgpack"), "--out", str(tmp_path / f"n{noise}"),
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        noisy[noise] = json.loads((tmp_path / f"n{noise}" / "eval.json").read_text())["iddpg"]
    assert noisy["0"] != noisy["2"]  # the override reaches the fleet's actions
    wrong = run_cli(
        "evaluate", "--policy", "maddpg", "--preset", "small", "-n", "2",
        "--checkpoint", str(out / "fleet.msgpack"), "--out", str(tmp_path / "ev2"),
    )  # fmt: skip
    assert wrong.returncode == 2 and "iddpg fleet, not maddpg" in wrong.stderr
    other_world = run_cli(
        "evaluate", "--policy", "iddpg", "--preset", "paper", "-n", "1",
        "--checkpoint", str(out / "fleet.msgpack"), "--out", str(tmp_path / "ev3"),
    )  # fmt: skip
    assert other_world.returncode == 2 and "Traceback" not in other_world.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "--algo", "ppo", "--steps", "10"], "algo"),
        (["train", "--steps", "0", "--preset", "small"], "steps"),
        (["train", "--minutes", "-1", "--preset", "small"], "minutes"),
        (["train", "--preset", "huge", "--steps", "10"], "preset"),
        (["train", "--preset", "small", "--steps", "10", "--eval-episodes", "-1"], "eval_episodes"),
        (["train", "--preset", "small", "--steps", "10", "--devices", "0"], "devices"),
        (["train", "--algo", "maddpg", "--steps", "10", "--devices", "64"], "buffer_size"),
        (["train", "--preset", "small", "--steps", "10", "--resume", "nope.msgpack"], "not found"),
        (["train", "--algo", "maddpg", "--recurrent", "--steps", "10"], "recurrent"),
        (["train", "--preset", "small", "--steps", "10", "--select-every", "-5"], "select_every"),
        (["train", "--preset", "small", "--steps", "10", "--shaping", "bonus"], "shaping"),
        (["train", "--algo", "maddpg", "--steps", "10", "--shaping", "efficiency"], "energy_price"),
        (["train", "--algo", "maddpg", "--steps", "10", "--recharge-reflex"], "recharge_reflex"),
        (
            ["train", "--algo", "mappo", "--preset", "small", "--steps", "10", "--recharge-reflex"],
            "recharge_reflex",
        ),
        (["train", "--algo", "maddpg", "--steps", "1", "--action-space", "targets"], "action"),
        (["train", "--algo", "mappo", "--steps", "1", "--action-space", "fly"], "action_space"),
        (
            [
                *("train", "--algo", "mappo", "--preset", "charging", "--steps", "10"),
                *("--action-space", "targets", "--recharge-reflex"),
            ],
            "recharge_reflex",
        ),
        (
            [
                *("train", "--algo", "mappo", "--steps", "10", "--action-space", "targets"),
                *("--max-distance-power", "50"),
            ],
            "max_distance_power",
        ),
        (
            [
                *("train", "--algo", "mappo", "--steps", "10", "--action-space", "targets"),
                *("--backlog-weight", "-1"),
            ],
            "backlog_weight",
        ),
        (["train", "--algo", "mappo", "--steps", "10", "--backlog-weight", "2"], "backlog_weight"),
        (
            [
                *("train", "--algo", "mappo", "--steps", "10", "--action-space", "targets"),
                *("--jain-weight", "-1"),
            ],
            "jain_weight",
        ),
        (["train", "--algo", "mappo", "--steps", "10", "--jain-weight", "0.003"], "jain_weight"),
        (["train", "--algo", "mappo", "--steps", "10", "--target-grid", "0.5"], "target_grid"),
        (
            [
                *("train", "--algo", "mappo", "--steps", "10", "--action-space", "targets"),
                *("--target-grid", "0.01"),
            ],
            "target_grid",
        ),
        (
            [
                *("train", "--algo", "mappo", "--steps", "10", "--action-space", "targets"),
                *("--isolation-weight", "nan"),
            ],
            "isolation_weight",
        ),
        (
            [
                *("train", "--algo", "mappo", "--steps", "10", "--action-space", "targets"),
                *("--territory-weight", "0"),
            ],
            "territory_weight",
        ),
        (
            ["train", "--algo", "mappo", "--steps", "10", "--territory-weight", "0.01"],
            "territory_weight",
        ),
        (
            [
                *("train", "--algo", "mappo", "--steps", "10", "--action-space", "targets"),
                *("--travel-weight", "-0.3"),
            ],
            "travel_weight",
        ),
        (
            ["train", "--algo", "mappo", "--steps", "10", "--charge-per-slot-left", "0.4"],
            "charge_per_slot_left",
        ),
        (
            [
                *("train", "--algo", "mappo", "--steps", "10", "--action-space", "targets"),
                *("--charge-full", "nan"),
            ],
            "charge_full",
        ),
        (["train", "--algo", "mappo", "--steps", "10", "--charge-below", "0.4"], "charge_below"),
        (
            [
                *("train", "--algo", "mappo", "--steps", "10", "--action-space", "targets"),
                *("--charge-below", "1.5"),
            ],
            "charge_below",
        ),
        (
            [
                *("train", "--algo", "mappo", "--preset", "small", "--steps", "10"),
                *("--action-space", "targets", "--charge-per-slot-left", "0.4"),
            ],
            "charge_per_slot_left",
        ),
        (["evaluate", "--policy", "maddpg", "--preset", "small"], "--checkpoint"),
        (["evaluate", "--policy", "mappo", "--preset", "small"], "--checkpoint"),
        (["evaluate", "--preset", "small", "--eval-noise", "-0.5"], "eval_noise"),
        (["reproduce", "--preset", "medium"], "preset"),
        (["reproduce", "--seeds", "0"], "seeds"),
    ],
)
def test_mistakes_exit_2_with_one_line(args: list[str], needle: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)  # in-process: the same main() as the console script, without the start-up
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert needle in err and "Traceback" not in err


def test_bad_train_section_names_field(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[train]\ngamma = 1.5\n")
    res = run_cli("train", "--preset", "small", "--steps", "10", "--config", str(cfg))
    assert res.returncode == 2 and "train.gamma" in res.stderr
    assert len(res.stderr.strip().splitlines()) <= 2 and "Traceback" not in res.stderr


@pytest.mark.slow
def test_reproduce_spec_and_tiny_run(tmp_path: Path) -> None:
    quick = sweeps.spec("quick")
    assert quick.mts == (1, 2, 3, 4, 5) and quick.world.num_pois == 32
    full = sweeps.spec("full", seeds=3)
    assert full.seeds == 3 and full.world.num_pois == 256
    with pytest.raises(ConfigError):
        sweeps.spec("quick", episodes=0)
    tiny = sweeps.Spec(
        name="tiny",
        world=quick.world,
        mts=(1, 2),
        ranges=(1.1,),
        seeds=1,
        episodes=2,
        train_steps=640,
        train=quick.train.__class__(num_envs=16, warmup_steps=100, chunk_iters=10),
    )
    files = sweeps.run(tiny, tmp_path)
    names = {f.name for f in files}
    assert names == {
        "reproduce.csv", "reproduce_summary.csv", "metrics_vs_mts.png", "metrics_vs_range.png"
    }  # fmt: skip
    rows = (tmp_path / "reproduce.csv").read_text().splitlines()
    # 3 points x 4 policies x 2 episodes (+ header)
    assert len(rows) == 1 + 3 * 4 * 2


def test_targets_flags_reach_the_saved_fleet(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as info:  # typer exits 0 when the command has run
        main(
            [
                *("train", "--algo", "mappo", "--preset", "small", "--steps", "1000"),
                *("--action-space", "targets", "--max-distance-power", "6", "--square-weights"),
                *("--backlog-weight", "2", "--jain-weight", "0.003"),
                *("--isolation-weight", "6", "--territory-weight", "0.01"),
                *("--target-grid", "0.5", "--shaping", "collection", "--travel-weight", "0.3"),
                *("--eval-episodes", "0", "--no-compare", "--out", str(out)),
            ]
        )
    assert info.value.code in (0, None)
    cfg = checkpoint.load(out / "fleet.msgpack").cfg
    assert (cfg.action_space, cfg.max_distance_power, cfg.square_weights) == ("targets", 6.0, True)
    assert (cfg.backlog_weight, cfg.jain_weight) == (2.0, 0.003)
    assert (cfg.isolation_weight, cfg.territory_weight) == (6.0, 0.01)
    assert (cfg.target_grid, cfg.shaping, cfg.travel_weight) == (0.5, "collection", 0.3)
