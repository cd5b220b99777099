"""The world CLI: evaluate / render outputs, and user mistakes ending in exit 2 naming the field."""

import json
import subprocess
import sys

import pytest

from chainsense.cli import main


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "chainsense", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def test_evaluate_writes_table_files(tmp_path):
    out = run_cli(
        "evaluate", "--preset", "small", "--episodes", "3", "--seed", "2", "--out", str(tmp_path)
    )
    assert out.returncode == 0, out.stderr
    assert "data_collection_ratio" in out.stdout and "greedy" in out.stdout
    summary = json.loads((tmp_path / "eval.json").read_text())
    assert summary["greedy"]["seeds"] == [2, 3, 4]
    assert 0 < summary["random"]["mean"]["data_collection_ratio"] < 1
    rows = (tmp_path / "eval.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 3
    assert (tmp_path / "eval.png").stat().st_size > 1000


def test_render_writes_map_gif_and_events(tmp_path):
    cfg = tmp_path / "w.yaml"
    cfg.write_text("world:\n  num_slots: 12\n  num_pois: 20\n")
    out = run_cli(
        "render", "--preset", "small", "--config", str(cfg), "--frames", "5", "--out", str(tmp_path)
    )
    assert out.returncode == 0, out.stderr
    for name in ("map.png", "heat.png", "episode.gif"):
        assert (tmp_path / name).stat().st_size > 1000
    assert (tmp_path / "episode.gif").read_bytes()[:6] == b"GIF89a"
    events = (tmp_path / "events.csv").read_text().splitlines()
    assert events[0] == "slot,mt,poi,amount,x,y" and len(events) > 1


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ("[world]\nnum_pois = 0\n", "world.num_pois"),
        ("[world]\nsensing_range = -1.0\n", "world.sensing_range"),
        ("[world]\nnum_mts = 100\n", "world.num_mts"),
        ("[world]\nteleport = true\n", "world.teleport"),
        ("[world]\nnum_pois = 'many'\n", "world.num_pois"),
        ("[world]\nobservation = 'pixels'\n", "world.observation"),
        ("[world\n", "config"),
    ],
)
def test_bad_config_exits_2_naming_the_field(tmp_path, capsys, toml, field):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    with pytest.raises(SystemExit) as done:
        main(["evaluate", "--preset", "small", "--config", str(cfg), "--out", str(tmp_path)])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and field in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "eval.json").exists()


def test_user_error_in_a_real_process_is_one_line_without_traceback(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("world:\n  sensing_range: -2\n")
    out = run_cli("render", "--config", str(cfg), "--out", str(tmp_path / "o"))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip() == "error: world.sensing_range: must be a finite number > 0, got -2.0"
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["evaluate", "--preset", "huge"], "preset"),
        (["evaluate", "--policy", "oracle"], "policy"),
        (["evaluate", "--episodes", "0"], "episodes"),
        (["evaluate", "--seed", "-3"], "seed"),
        (["render", "--fps", "0"], "fps"),
        (["render", "--config", "missing.toml"], "config"),
    ],
)
def test_bad_arguments_exit_2_naming_the_field(tmp_path, capsys, monkeypatch, args, field):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main([*args, "--out", str(tmp_path / "o")])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and field in err
    assert not (tmp_path / "o").exists()
