"""Planner-guided MAPPO: label conversion, DAgger labels on visited states, cloning, PPO hook."""

import dataclasses
import json
import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsense.cli import main
from chainsense.errors import ConfigError
from chainsense.marl import (
    algos,
    checkpoint,
    demonstrations,
    features,
    imitation,
    mappo_train,
    networks,
)
from chainsense.marl import mappo_networks as mnet
from chainsense.marl.config import TrainConfig
from chainsense.marl.planner import PlannerPolicy
from chainsense.sim.params import preset
from chainsense.sim.world import reset

SMALL = preset("small")
CFG = TrainConfig(
    algo="mappo",
    imitate="planner",
    num_envs=8,
    demo_episodes=1,
    dagger_rounds=0,
    demo_time_limit_s=0.05,
    bc_epochs=40,
)
PLANNER = PlannerPolicy(time_limit_s=0.05)


def fresh_actor(seed: int = 0) -> dict:
    od = features.learner_obs_dim(CFG, SMALL)
    return mnet.init(jax.random.PRNGKey(seed), CFG, SMALL.num_mts, od)[0]


@settings(max_examples=60, deadline=None)
@given(
    st.floats(0.0, 2.0 * math.pi - 1e-3),
    st.floats(0.0, 1.0),
)
def test_labels_round_trip_physical_disk_z(theta: float, frac: float) -> None:
    physical = jnp.array([[theta, frac * SMALL.max_move]], jnp.float32)
    disk = networks.from_physical(physical, SMALL.max_move)
    np.testing.assert_allclose(networks.to_physical(disk, SMALL.max_move)[:, 1], physical[:, 1],
                               atol=1e-5)  # fmt: skip
    z = demonstrations.disk_to_z(disk)
    assert bool(jnp.all(jnp.isfinite(z)))
    back = networks.squash_to_disk(z)
    want = disk * min(1.0, demonstrations.DISK_CAP / max(frac, 1e-12))  # shrunk to the cap
    np.testing.assert_allclose(back, want, atol=2e-4)
    if frac > 0.05:  # the direction is kept exactly, zero-length moves have none
        got = networks.to_physical(back, SMALL.max_move)[0, 0]
        assert abs(math.remainder(float(got) - theta, 2.0 * math.pi)) < 1e-3


def test_disk_to_z_caps_full_moves_and_outside_points() -> None:
    d = jnp.array([[1.0, 0.0], [0.0, -3.0], [0.0, 0.0]], jnp.float32)
    radius = jnp.linalg.norm(networks.squash_to_disk(demonstrations.disk_to_z(d)), axis=-1)
    np.testing.assert_allclose(radius, [0.98, 0.98, 0.0], atol=1e-5)


def test_labels_are_the_followers_actions_on_states_the_learner_visits() -> None:
    """beta = 0: the fresh learner drives; every recorded label must be what the planner's
    follower answers in the state actually visited, and the recorded obs the actor's input."""
    state, obs = reset(jax.random.PRNGKey(3), SMALL)
    follower = PLANNER.plan(state, SMALL)
    od = features.learner_obs_dim(CFG, SMALL)
    actor = fresh_actor()
    carry = (state, obs, features.initial_memory(SMALL.num_mts))
    key = jax.random.PRNGKey(7)
    for _ in range(6):  # one slot per call, so each visited state is in hand
        s, o, mem = carry
        carry, steps, (lobs, expert, reward) = demonstrations._chunk(
            follower, actor, jnp.float32(0.0), carry, key, CFG, SMALL, 1
        )
        assert int(steps) == 1 and expert.shape == (1, SMALL.num_mts, 2)
        want = networks.from_physical(follower.act(key, o, s, SMALL), SMALL.max_move)
        np.testing.assert_allclose(expert[0], want, atol=1e-6)
        np.testing.assert_allclose(lobs[0], features.learner_obs(CFG, s, o, SMALL, mem))
        assert lobs.shape == (1, SMALL.num_mts, od) and reward.shape == (1, SMALL.num_mts)
    # the learner, not the expert, moved the fleet: its moves differ from the labels
    assert not np.allclose(np.asarray(carry[2][:, :2]), np.asarray(expert[0]), atol=1e-3)


def test_expert_episode_shapes_returns_and_cost() -> None:
    data, info = demonstrations.collect(
        PLANNER, fresh_actor(), 1.0, [jax.random.PRNGKey(5)], CFG, SMALL
    )
    n = int(info["env_steps"])
    assert 0 < n <= SMALL.num_slots and info["plans"] >= 1 and info["cpu_s"] > 0
    od = features.learner_obs_dim(CFG, SMALL)
    assert data.obs.shape == (n, SMALL.num_mts, od)
    assert data.z.shape == (n, SMALL.num_mts, 2) and data.ret.shape == (n, SMALL.num_mts)
    assert info["data_collection_ratio"] > 0.5  # the planner played it
    r = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    np.testing.assert_allclose(
        demonstrations.discounted_returns(r, 0.5), [[1.75, 1.0], [1.5, 2.0], [3.0, 0.0]]
    )


def test_cloning_fit_lowers_both_losses_and_sets_log_std() -> None:
    learner, report = imitation.pretrain(CFG, SMALL, seed=0)
    (only,) = report["rounds"]
    assert only["beta"] == 1.0 and report["env_steps"] == only["env_steps"] > 0
    data, _ = demonstrations.collect(
        PLANNER, fresh_actor(), 1.0, [jax.random.PRNGKey(5)], CFG, SMALL
    )
    fresh = mnet.init(jax.random.PRNGKey(1), CFG, SMALL.num_mts, data.obs.shape[-1])
    arrays = jax.tree_util.tree_map(jnp.asarray, data)
    _, losses = imitation.fit(CFG, fresh, arrays, jax.random.PRNGKey(2), 300)  # one batch each
    assert float(losses["bc_loss"][-1]) < 0.3 * float(losses["bc_loss"][0])
    assert float(losses["value_loss"][-1]) < 0.3 * float(losses["value_loss"][0])
    _, log_std = mnet.policy(CFG, learner.actor, arrays.obs[:1])
    np.testing.assert_allclose(log_std, CFG.bc_log_std)
    assert int(learner.updates) == 0


def test_ppo_starts_from_a_given_learner_and_refuses_it_for_maddpg() -> None:
    learner, _ = imitation.pretrain(dataclasses.replace(CFG, bc_epochs=1), SMALL, seed=0)
    carry = mappo_train.init_carry(jax.random.PRNGKey(0), CFG, SMALL, learner=learner)
    same = jax.tree_util.tree_map(jnp.array_equal, carry.learner.actor, learner.actor)
    assert all(jax.tree_util.tree_leaves(same))
    fresh = mappo_train.init_carry(jax.random.PRNGKey(0), CFG, SMALL)
    differs = jax.tree_util.tree_map(jnp.array_equal, fresh.learner.actor, learner.actor)
    assert not all(jax.tree_util.tree_leaves(differs))
    maddpg = TrainConfig(algo="maddpg", num_envs=8, warmup_steps=8, batch_size=8)
    with pytest.raises(ConfigError, match="mappo"):
        algos.init_carry(jax.random.PRNGKey(0), maddpg, SMALL, learner=learner)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"algo": "maddpg"}, "imitate"),
        ({"demo_episodes": 0}, "demo_episodes"),
        ({"dagger_rounds": -1}, "dagger_rounds"),
        ({"demo_time_limit_s": float("nan")}, "demo_time_limit_s"),
        ({"demo_time_limit_s": 0.0}, "demo_time_limit_s"),
        ({"bc_epochs": 0}, "bc_epochs"),
        ({"bc_lr": -1.0}, "bc_lr"),
        ({"bc_log_std": 3.0}, "bc_log_std"),
    ],
)
def test_config_refuses_bad_imitation_values(changes: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        dataclasses.replace(CFG, **changes)


def test_old_configs_load_without_imitation() -> None:
    cfg = TrainConfig.from_dict({"algo": "maddpg"})
    assert cfg.imitate == "none"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--imitate", "teacher"], "imitate"),
        (["--imitate", "planner", "--algo", "maddpg"], "imitate"),
        (["--imitate", "planner", "--algo", "mappo", "--demo-episodes", "0"], "demo_episodes"),
        (["--imitate", "planner", "--algo", "mappo", "--dagger-rounds", "-2"], "dagger_rounds"),
    ],
)
def test_cli_refuses_bad_imitation_flags(args: list[str], needle: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["train", "--preset", "small", "--steps", "10", *args])
    err = capsys.readouterr().err
    assert info.value.code == 2 and needle in err and "Traceback" not in err


@pytest.mark.slow
def test_cli_trains_from_the_planner_clone_and_evaluates(tmp_path) -> None:
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(
        "[train]\nnum_envs = 8\nchunk_iters = 2\nbc_epochs = 2\ndemo_time_limit_s = 0.05\n"
    )
    out = tmp_path / "run"
    res = subprocess.run(
        [sys.executable, "-m", "chainsense", "train", "--preset", "small", "--algo", "mappo",
         "--imitate", "planner", "--demo-episodes", "1", "--dagger-rounds", "1",
         "--steps", "200", "--config", str(cfg), "--out", str(out), "--eval-episodes", "2",
         "--no-compare"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "cloned the planner first" in res.stdout
    ck = checkpoint.load(out / "fleet.msgpack")
    assert ck.cfg.imitate == "planner" and ck.cfg.dagger_rounds == 1
    assert "mappo" in json.loads((out / "eval.json").read_text())
