"""Sweep specs: every mistake is refused with its field named, before anything starts."""

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsense.cli import main
from chainsense.errors import ConfigError
from chainsense.experiments import sweep_engine, sweep_presets, sweep_spec

BASE: dict[str, Any] = {
    "sweep": {
        "scenarios": ["small"],
        "policies": ["maddpg", "greedy"],
        "grid": {"num_mts": [1, 2]},
        "budget": {"steps": 1000},
    }
}


def _with(**sweep: Any) -> dict[str, Any]:
    return {**BASE, "sweep": {**BASE["sweep"], **sweep}}


def test_runs_cover_the_grid_baselines_first_then_seed_by_seed() -> None:
    spec = sweep_spec.from_mapping(_with(seeds=2))
    ids = [r.run_id for r in spec.runs()]
    assert ids == [
        "small/num_mts=1/greedy/baseline",
        "small/num_mts=2/greedy/baseline",
        "small/num_mts=1/maddpg/seed0",
        "small/num_mts=2/maddpg/seed0",
        "small/num_mts=1/maddpg/seed1",
        "small/num_mts=2/maddpg/seed1",
    ]
    run = spec.runs()[-1]
    assert run.world.num_mts == 2 and run.train is not None and run.train.algo == "maddpg"
    assert run.steps == 1000 and run.eval_seeds == tuple(range(10_000, 10_010))


def test_product_grid_and_per_algorithm_budget() -> None:
    spec = sweep_spec.from_mapping(
        _with(
            grid={"num_mts": [1, 2], "sensing_range": [0.8, 1.2]},
            product=True,
            policies=["maddpg", "mappo"],
            budget={"steps": {"maddpg": 100, "mappo": 200}},
        )
    )
    runs = spec.runs()
    assert len(runs) == 4 * 2
    assert {r.value for r in runs} == {
        "num_mts=1,sensing_range=0.8",
        "num_mts=1,sensing_range=1.2",
        "num_mts=2,sensing_range=0.8",
        "num_mts=2,sensing_range=1.2",
    }
    assert {(r.policy, r.steps) for r in runs} == {("maddpg", 100), ("mappo", 200)}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({**BASE, "extra": {}}, "extra"),
        ({"world": {}}, "sweep"),
        (_with(colour="red"), "sweep.colour"),
        (_with(policies=["maddpg", "telepathy"]), "sweep.policies"),
        (_with(policies=[]), "sweep.policies"),
        (_with(policies=["greedy", "greedy"]), "sweep.policies"),
        (_with(scenarios=["mars"]), "sweep.scenarios"),
        (_with(grid={"warp_speed": [1]}), "sweep.grid.warp_speed"),
        (_with(grid={"num_mts": []}), "sweep.grid.num_mts"),
        (_with(grid={"num_mts": [1, 1]}), "sweep.grid.num_mts"),
        (_with(grid={"num_mts": [0]}), "sweep.grid.num_mts (0)"),
        (_with(grid={"sensing_range": [math.nan]}), "sweep.grid.sensing_range"),
        (_with(grid={"num_mts": [{"a": 1}]}), "sweep.grid.num_mts"),
        (_with(grid={"num_mts": list(range(1, 200))}), "sweep.grid.num_mts"),
        (_with(seeds=0), "sweep.seeds"),
        (_with(seeds=10**6), "sweep.seeds"),
        (_with(seeds=True), "sweep.seeds"),
        (_with(episodes=-1), "sweep.episodes"),
        (_with(budget={}), "sweep.budget"),
        (_with(budget={"steps": 0}), "sweep.budget.steps.maddpg"),
        (_with(budget={"minutes": -2}), "sweep.budget.minutes"),
        (_with(budget={"hours": 2}), "sweep.budget"),
        (_with(budget={"steps": {"mappo": 10}}), "sweep.budget.steps.mappo"),
        (_with(name="../../etc"), "sweep.name"),
        (_with(product="yes"), "sweep.product"),
        (
            _with(
                grid={"num_mts": list(range(1, 60)), "sensing_range": [0.5 + i for i in range(90)]},
                product=True,
            ),
            "sweep",
        ),
        (_with(maps=["nowhere.csv"]), "sweep.maps[0]"),
        (_with(maps=["spec.exe"]), "sweep.maps[0]"),
        ({**BASE, "world": {"num_mts": 0}}, "world"),
        ({**BASE, "world": {"gravity": 1}}, "world.gravity"),
        ({**BASE, "train": {"algo": "mappo"}}, "train.algo"),
        ({**BASE, "train": {"gamma": 1.5}}, "train.gamma"),
        ({**BASE, "train": {"learning_rate": 1}}, "train.learning_rate"),
        (
            _with(grid={"num_mts": list(range(1, 61)), "sensing_range": [0.5, 0.6]}, seeds=100),
            "sweep",
        ),
    ],
)
def test_bad_specs_are_refused_naming_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        sweep_spec.from_mapping(data)
    assert err.value.field == field


def test_spec_file_is_read_with_maps_beside_it(tmp_path: Path) -> None:
    (tmp_path / "site.csv").write_text("x,y\n1,1\n2,3\n")
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(
        '[sweep]\nmaps = ["site.csv"]\nmap_preset = "small"\npolicies = ["greedy"]\n'
        "[sweep.grid]\nsensing_range = [0.8, 1.2]\n"
    )
    spec = sweep_spec.load(spec_file)
    assert [r.run_id for r in spec.runs()] == [
        "map:site.csv/sensing_range=0.8/greedy/baseline",
        "map:site.csv/sensing_range=1.2/greedy/baseline",
    ]
    assert spec.runs()[0].site == ("site.csv", b"x,y\n1,1\n2,3\n")
    huge = tmp_path / "huge.toml"
    huge.write_bytes(b"#" * (sweep_spec.MAX_SPEC_BYTES + 1))
    with pytest.raises(ConfigError, match="larger than"):
        sweep_spec.load(huge)


def test_presets_are_valid_specs() -> None:
    counts = {name: len(sweep_presets.preset(name).runs()) for name in sweep_presets.PRESETS}
    # smoke: 2 points x (1 baseline + 2 seeds); paper: 10 points x (4 baselines + 3 algos x 2)
    assert counts["smoke"] == 6 and counts["paper"] == 100
    assert sweep_presets.preset("paper", seeds=3).seeds == 3
    with pytest.raises(ConfigError) as err:
        sweep_presets.preset("huge")
    assert err.value.field == "preset"


_values = st.one_of(
    st.integers(-5, 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.booleans(),
    st.none(),
    st.lists(st.integers(-3, 300), max_size=5),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
)


@settings(max_examples=150, deadline=None)
@given(
    key=st.sampled_from(
        ["name", "scenarios", "policies", "seeds", "episodes", "budget", "grid", "product", "maps"]
    ),
    value=_values,
)
def test_hostile_values_give_config_errors_only(key: str, value: Any) -> None:
    try:
        spec = sweep_spec.from_mapping(_with(**{key: value}))
    except ConfigError:
        return
    assert len(spec.runs()) <= sweep_spec.MAX_RUNS


@pytest.mark.parametrize("name", ["paper_mts.toml", "yard_range.yaml"])
def test_example_specs_load(name: str) -> None:
    spec = sweep_spec.load(Path(__file__).parent.parent / "examples" / "sweeps" / name)
    assert spec.runs()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["sweep", "nowhere.toml"], "file not found"),
        (["sweep", "report"], "DIR"),
        (["reproduce", "--preset", "paper", "--episodes", "0"], "sweep.episodes"),
        (["tune", "--algo", "mappo", "--trials", "0", "--preset", "small"], "trials"),
    ],
)
def test_cli_mistakes_exit_2_before_anything_starts(
    args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main([*args, "--out", str(out)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and needle in err and "Traceback" not in err
    assert not out.exists()  # nothing was written


def test_bad_spec_file_names_the_field_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("sweep:\n  policies: [greedy]\n  grid:\n    num_mts: [1, -3]\n")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(["sweep", str(spec), "--out", str(out)])
    assert info.value.code == 2 and "sweep.grid.num_mts (-3)" in capsys.readouterr().err
    assert not out.exists()


def test_workers_get_the_driver_s_xla_flags_then_their_thread_limits(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=0")
    env = sweep_engine.worker_env(1, tmp_path)
    flags = env["XLA_FLAGS"].split()
    assert flags[0] == "--xla_backend_optimization_level=0"
    assert "intra_op_parallelism_threads=1" in flags and env["OMP_NUM_THREADS"] == "1"
    assert env["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path.resolve())
    monkeypatch.delenv("XLA_FLAGS")
    assert sweep_engine.worker_env(2, None)["XLA_FLAGS"].startswith("--xla_cpu_multi_thread")
