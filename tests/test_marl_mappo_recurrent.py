"""MAPPO's recurrent (GRU) actor: resets, the sequence re-run, checkpoints and evaluation."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from chainsense.errors import ConfigError
from chainsense.marl import (
    algos,
    checkpoint,
    mappo_sequence,
    mappo_train,
    mappo_update,
    memory,
    session,
    world_pool,
)
from chainsense.marl import mappo_networks as mnet
from chainsense.marl import mappo_rollout as rollout
from chainsense.marl.config import TrainConfig
from chainsense.marl.evaluate import evaluate
from chainsense.marl.learned import LearnedPolicy, load_policy
from chainsense.sim import world
from chainsense.sim.params import obs_dim, preset

SMALL = preset("small")
GRU = TrainConfig(
    algo="mappo",
    recurrent=True,
    gru_hidden=16,
    num_envs=16,
    ppo_steps=16,
    ppo_epochs=2,
    ppo_minibatches=2,
    chunk_iters=2,
)


def _collect(
    cfg: TrainConfig, seed: int = 0
) -> tuple[rollout.Carry, jax.Array, rollout.Trajectory]:
    """One iteration's collection from fresh worlds: the carry after it, the hidden state
    before it and the trajectory."""
    carry = mappo_train.init_carry(jax.random.PRNGKey(seed), cfg, SMALL)
    pool = world_pool.draw(cfg, SMALL, jax.random.PRNGKey(seed + 1))
    step = jax.jit(partial(rollout.collect_step, cfg, SMALL, pool))
    hidden0 = carry.hidden
    carry, (traj, _) = jax.lax.scan(step, carry, None, length=cfg.ppo_steps)
    return carry, hidden0, traj


def test_start_flag_zeroes_the_hidden_state() -> None:
    learner = mappo_update.init(jax.random.PRNGKey(0), GRU, 2, 5)
    obs = jax.random.normal(jax.random.PRNGKey(1), (3, 2, 5))
    h = jax.random.normal(jax.random.PRNGKey(2), (3, 2, GRU.gru_hidden))
    start = jnp.array([True, False, True])
    h1, mean1, _ = mnet.recurrent_policy(GRU, learner.actor, h, obs, start)
    h0, mean0, _ = mnet.recurrent_policy(GRU, learner.actor, jnp.zeros_like(h), obs, start)
    # worlds 0 and 2 start an episode: whatever hidden state they carried is forgotten
    np.testing.assert_array_equal(h1[jnp.array([0, 2])], h0[jnp.array([0, 2])])
    np.testing.assert_array_equal(mean1[jnp.array([0, 2])], mean0[jnp.array([0, 2])])
    # world 1 continues: its memory changes what it does
    assert not np.allclose(mean1[1], mean0[1])


def test_rollout_flags_restarts_and_carries_the_hidden_state() -> None:
    carry, hidden0, traj = _collect(GRU)
    assert hidden0.shape == (GRU.num_envs, SMALL.num_mts, GRU.gru_hidden)
    assert not bool(jnp.any(hidden0))
    assert bool(jnp.all(traj.start[0]))  # fresh worlds start their episodes at slot 0
    # an episode starts at slot t + 1 exactly where one ended at slot t
    np.testing.assert_array_equal(traj.start[1:], traj.done[:-1] > 0)
    np.testing.assert_array_equal(carry.start, traj.done[-1] > 0)
    assert bool(jnp.any(traj.done)), "the test needs restarts inside the sequence"
    assert bool(jnp.any(carry.hidden != 0.0))


def test_sequence_rerun_reproduces_the_rollout_log_probs() -> None:
    carry, hidden0, traj = _collect(GRU)
    zeros = jnp.zeros_like(traj.logp)
    batch = mappo_sequence.SequenceBatch(
        hidden0, traj.start, traj.obs, traj.z, traj.logp, traj.value, zeros, zeros
    )
    actor = carry.learner.actor  # the update has not run: the acting parameters
    # all worlds: each slot is the rollout's computation on the same shapes, float for float
    mean, log_std = mnet.sequence_policy(GRU, actor, hidden0, traj.obs, traj.start)
    np.testing.assert_array_equal(mnet.log_prob(traj.z, mean, log_std), traj.logp)
    # a minibatch of worlds in another order (other matrix shapes: allow rounding)
    mb = mappo_sequence.take_worlds(batch, jnp.array([5, 0, 11, 3]))
    mean, log_std = mnet.sequence_policy(GRU, actor, mb.hidden, mb.obs, mb.start)
    ratio = jnp.exp(mnet.log_prob(mb.z, mean, log_std) - mb.logp)
    np.testing.assert_allclose(ratio, 1.0, rtol=0, atol=1e-6)
    # without the resets the re-run differs where episodes restarted: the flags matter
    mean, log_std = mnet.sequence_policy(
        GRU, actor, hidden0, traj.obs, jnp.zeros_like(traj.start).at[0].set(True)
    )
    assert not np.allclose(mnet.log_prob(traj.z, mean, log_std), traj.logp, atol=1e-4)


def test_sequence_update_takes_whole_worlds() -> None:
    _, hidden0, traj = _collect(GRU)
    learner = mappo_update.init(jax.random.PRNGKey(0), GRU, SMALL.num_mts, traj.obs.shape[-1])
    adv = jnp.sign(traj.z[..., 0])  # actions with z_x > 0 were good
    batch = mappo_sequence.SequenceBatch(
        hidden0, traj.start, traj.obs, traj.z, traj.logp, traj.value, adv, jnp.ones_like(adv)
    )
    new, logs = mappo_sequence.update(GRU, learner, batch, jax.random.PRNGKey(3))
    assert int(new.updates) == GRU.ppo_epochs * GRU.ppo_minibatches
    assert all(np.isfinite(float(v)) for v in logs.values())
    before, _ = mnet.sequence_policy(GRU, learner.actor, hidden0, traj.obs, traj.start)
    after, _ = mnet.sequence_policy(GRU, new.actor, hidden0, traj.obs, traj.start)
    assert float(jnp.mean(after[..., 0])) > float(jnp.mean(before[..., 0]))


def test_config_refusals() -> None:
    with pytest.raises(ConfigError, match=r"recurrent.*only MAPPO"):
        TrainConfig(algo="maddpg", recurrent=True)
    with pytest.raises(ConfigError, match=r"recurrent.*iddpg"):
        TrainConfig(algo="iddpg", recurrent=True)
    with pytest.raises(ConfigError, match=r"ppo_minibatches.*num_envs \(10\)"):
        TrainConfig(algo="mappo", recurrent=True, num_envs=10, ppo_steps=4, ppo_minibatches=4)
    for bad in (0, -3, 4096):
        with pytest.raises(ConfigError, match="gru_hidden"):
            TrainConfig(algo="mappo", recurrent=True, gru_hidden=bad)
    # not combined with what only a feed-forward actor supports (sharded update, cloning)
    with pytest.raises(ConfigError, match=r"devices.*one device"):
        TrainConfig(algo="mappo", recurrent=True, devices=2)
    with pytest.raises(ConfigError, match=r"imitate.*feed-forward"):
        TrainConfig(algo="mappo", recurrent=True, imitate="planner")
    assert not TrainConfig().recurrent  # the default stays feed-forward
    assert TrainConfig.from_dict(GRU.to_dict()) == GRU


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> session.TrainResult:
    out = tmp_path_factory.mktemp("gru")
    return session.run(GRU, SMALL, seed=0, steps=2 * 16 * 16 * 2, out_dir=out)


def test_checkpoint_round_trip_and_recurrent_evaluation(
    trained: session.TrainResult, tmp_path: Path
) -> None:
    ck_path = trained.files["checkpoint"]
    ck = checkpoint.load(ck_path)
    assert ck.cfg == GRU
    for x, y in zip(
        jax.tree_util.tree_leaves(ck.learner),
        jax.tree_util.tree_leaves(trained.learner),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    policy, _ = load_policy("mappo", ck_path, SMALL)
    original = LearnedPolicy(trained.learner.actor, GRU)
    a = evaluate(policy, SMALL, range(3)).per_episode
    b = evaluate(original, SMALL, range(3)).per_episode
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert np.all(np.isfinite(a["energy_efficiency"]))
    # resume continues the recurrent learner from its checkpoint
    res = session.run(GRU, SMALL, seed=0, steps=512, out_dir=tmp_path, resume=ck_path)
    assert res.env_steps == trained.env_steps + 512  # one chunk


def test_fleet_carries_the_hidden_state_slot_to_slot(trained: session.TrainResult) -> None:
    policy = LearnedPolicy(trained.learner.actor, GRU)
    state, obs = world.reset(jax.random.PRNGKey(4), SMALL)
    key = jax.random.PRNGKey(9)
    mem0 = memory.initial(policy, SMALL)
    assert mem0.shape == (SMALL.num_mts, 3 + GRU.gru_hidden) and not bool(jnp.any(mem0))
    actions, mem1 = memory.act_and_carry(policy, key, obs, state, SMALL, mem0)
    assert bool(jnp.any(mem1[:, 3:] != 0.0))  # the GRU read the slot
    np.testing.assert_array_equal(actions, policy.act(key, obs, state, SMALL))
    state2, obs2, _, _, info = world.step(jax.random.PRNGKey(5), state, actions, SMALL)
    mem2 = memory.update(policy, mem1, actions, info, SMALL)
    np.testing.assert_array_equal(mem2[:, 3:], mem1[:, 3:])  # remember keeps the hidden state
    # the same present with another past gives another action: the fleet has memory
    with_past = memory.act_and_carry(policy, key, obs2, state2, SMALL, mem2)[0]
    fresh = memory.act_and_carry(policy, key, obs2, state2, SMALL, mem2.at[:, 3:].set(0.0))[0]
    assert not np.allclose(with_past, fresh)
    assert obs.shape[-1] == obs_dim(SMALL)


@pytest.mark.slow
def test_cli_trains_and_evaluates_a_recurrent_fleet(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("[train]\nnum_envs = 16\nchunk_iters = 2\nppo_minibatches = 2\ngru_hidden = 8\n")
    out = tmp_path / "run"
    res = subprocess.run(
        [sys.executable, "-m", "chainsense", "train", "--preset", "small", "--algo", "mappo",
         "--recurrent", "--steps", "512", "--config", str(cfg), "--out", str(out),
         "--eval-episodes", "2", "--no-compare"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    ck = checkpoint.load(out / "fleet.msgpack")
    assert ck.cfg.recurrent and ck.cfg.gru_hidden == 8
    ev = subprocess.run(
        [sys.executable, "-m", "chainsense", "evaluate", "--policy", "mappo", "--preset", "small",
         "-n", "2", "--checkpoint", str(out / "fleet.msgpack"), "--out", str(tmp_path / "ev")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ev.returncode == 0, ev.stderr
    table = json.loads((tmp_path / "ev" / "eval.json").read_text())["mappo"]
    assert table["episodes"] == 2 and table["mean"]["slots"] == SMALL.num_slots


def test_checkpoint_from_before_the_gru_loads_feed_forward(tmp_path: Path) -> None:
    cfg = TrainConfig(algo="mappo", num_envs=16)
    learner = algos.init_learner(jax.random.PRNGKey(0), cfg, SMALL)
    path = checkpoint.save(tmp_path / "old.msgpack", checkpoint.Checkpoint(cfg, SMALL, learner, {}))
    payload = serialization.msgpack_restore(path.read_bytes())
    train = json.loads(payload["train"])
    del train["recurrent"], train["gru_hidden"]  # what a checkpoint of the last round holds
    payload["train"] = json.dumps(train)
    path.write_bytes(serialization.msgpack_serialize(payload))
    ck = checkpoint.load(path)
    assert ck.cfg == cfg and not ck.cfg.recurrent
    policy, _ = load_policy("mappo", path, SMALL)
    assert memory.initial(policy, SMALL).shape == (SMALL.num_mts, 3)
