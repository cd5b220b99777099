"""Training on one real site (``chainsense train --map FILE``): every training world starts on
the site's map, and the CLI trains, checkpoints the site's world and evaluates on the site."""

import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from chainsense.marl import algos, checkpoint, train
from chainsense.marl.config import TrainConfig
from chainsense.sim.maps import map_arrays
from chainsense.sim.params import preset
from chainsense.sim.sites import load_site

SITE = Path(__file__).resolve().parents[1] / "examples" / "sites" / "industrial_yard.geojson"


def test_training_worlds_start_on_the_site() -> None:
    site = load_site(SITE, preset("small"))
    arrays = map_arrays(site.map)
    for algo in ("mappo", "maddpg"):
        cfg = TrainConfig(algo=algo, num_envs=4, chunk_iters=1)
        carry = algos.init_carry(jax.random.PRNGKey(0), cfg, site.params, arrays)
        for b in range(cfg.num_envs):
            np.testing.assert_array_equal(carry.env.poi_pos[b], arrays.poi_pos)
    random_maps, _ = train.reset_worlds(
        jax.random.split(jax.random.PRNGKey(0), 2), preset("small"), None
    )
    assert not np.array_equal(random_maps.poi_pos[0], random_maps.poi_pos[1])


@pytest.mark.slow  # a CLI training run, like the other train CLI tests
def test_train_cli_on_a_site(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("[train]\nnum_envs = 16\nchunk_iters = 2\nppo_steps = 8\n")
    res = subprocess.run(
        [
            sys.executable, "-m", "chainsense", "train", "--preset", "small", "--map", str(SITE),
            "--algo", "mappo", "--steps", "512", "--config", str(cfg), "--out", str(out),
            "--eval-episodes", "2", "--no-compare",
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "industrial_yard.geojson" in res.stdout
    ev = json.loads((out / "eval.json").read_text())["mappo"]
    assert ev  # evaluated on the site
    ck = checkpoint.load(out / "fleet.msgpack")
    assert ck.params == load_site(SITE, preset("small")).params
