"""MAPPO: network shapes, GAE against a hand computation, the PPO update, training on the
real small world, checkpoints through the same loader and evaluation path as MADDPG."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chainsense.errors import ChainsenseError, ConfigError
from chainsense.marl import algos, checkpoint, mappo_rollout, mappo_update, session
from chainsense.marl import mappo_networks as mnet
from chainsense.marl.config import TrainConfig
from chainsense.marl.evaluate import evaluate
from chainsense.marl.learned import LearnedPolicy, load_policy
from chainsense.marl.registry import make_policy
from chainsense.sim import world
from chainsense.sim.params import obs_dim, preset

SMALL = preset("small")
FAST = TrainConfig(algo="mappo", num_envs=64, chunk_iters=10)
EVAL_SEEDS = range(100, 110)
M, D, N = 3, 7, 12


def test_shapes_and_agent_ids() -> None:
    cfg = TrainConfig(algo="mappo", actor_hidden=(16,), critic_hidden=(32,))
    learner = mappo_update.init(jax.random.PRNGKey(0), cfg, M, D)
    obs = jax.random.normal(jax.random.PRNGKey(1), (N, M, D))
    mean, log_std = mnet.policy(cfg, learner.actor, obs)
    assert mean.shape == log_std.shape == (N, M, 2)
    assert mnet.value(cfg, learner.critic, obs).shape == (N, M)
    disk = mnet.act(cfg, learner.actor, obs)
    assert disk.shape == (N, M, 2) and bool(jnp.all(jnp.linalg.norm(disk, axis=-1) < 1.0))
    ids = mnet.with_agent_id(obs)[..., D:]
    np.testing.assert_array_equal(ids[0], np.eye(M))
    # one shared actor: the same observation with another id gives another action
    same = jnp.broadcast_to(obs[:1, :1], (1, M, D)) * 100.0
    acts = mnet.act(cfg, learner.actor, same)[0]
    assert not np.allclose(acts[0], acts[1])
    assert mnet.central_input(obs).shape == (N, M * D)


def test_gaussian_log_prob_and_entropy() -> None:
    z, mean, log_std = jnp.array([0.5, -1.0]), jnp.array([0.0, 0.0]), jnp.log(jnp.array([1.0, 2.0]))
    expected = -0.5 * (0.25 + 0.25) - np.log(2.0) - np.log(2 * np.pi)
    np.testing.assert_allclose(mnet.log_prob(z, mean, log_std), expected, rtol=1e-6)
    np.testing.assert_allclose(mnet.entropy(log_std), np.log(2.0) + 1.0 + np.log(2 * np.pi))


def test_gae_hand_computed() -> None:
    # 3 slots, one world; the episode ends after slot 1 (index 1), so slot 1 does not bootstrap
    r = jnp.array([1.0, 2.0, 3.0])
    v = jnp.array([0.5, 1.0, 1.5])
    done = jnp.array([0.0, 1.0, 0.0])
    last = jnp.array(2.0)
    gamma, lam = 0.9, 0.8
    d2 = 3.0 + gamma * 2.0 - 1.5  # 3.3
    a2 = d2
    d1 = 2.0 - 1.0  # no bootstrap across the end
    a1 = d1
    d0 = 1.0 + gamma * 1.0 - 0.5  # 1.4
    a0 = d0 + gamma * lam * a1  # 1.4 + 0.72
    adv, target = mappo_rollout.gae(r, v, done, last, gamma, lam)
    np.testing.assert_allclose(adv, [a0, a1, a2], rtol=1e-6)
    np.testing.assert_allclose(target, np.array([a0, a1, a2]) + np.asarray(v), rtol=1e-6)
    # per-MT rewards [T, M] with a per-world done [T, 1] broadcast over MTs
    adv2, _ = mappo_rollout.gae(
        jnp.stack([r, r], 1), jnp.stack([v, v], 1), done[:, None], jnp.stack([last, last]), 0.9, 0.8
    )
    np.testing.assert_allclose(adv2[:, 1], adv, rtol=1e-6)


def test_update_raises_likelihood_of_advantaged_actions() -> None:
    cfg = TrainConfig(algo="mappo", ppo_epochs=4, ppo_minibatches=2, ent_coef=0.0)
    learner = mappo_update.init(jax.random.PRNGKey(0), cfg, M, D)
    k = jax.random.split(jax.random.PRNGKey(2), 3)
    obs = jax.random.normal(k[0], (64, M, D))
    mean, log_std = mnet.policy(cfg, learner.actor, obs)
    z = mean + jnp.exp(log_std) * jax.random.normal(k[1], mean.shape)
    logp = mnet.log_prob(z, mean, log_std)
    adv = jnp.sign(z[..., 0])  # actions with z_x > 0 were good
    batch = mappo_update.Batch(obs, z, logp, jnp.zeros_like(adv), adv, jnp.ones_like(adv))
    new, logs = mappo_update.update(cfg, learner, batch, k[2])
    assert int(new.updates) == 8
    assert all(np.isfinite(float(v)) for v in logs.values())
    m2, _ = mnet.policy(cfg, new.actor, obs)
    assert float(jnp.mean(m2[..., 0])) > float(jnp.mean(mean[..., 0]))
    v2 = mnet.value(cfg, new.critic, obs)
    assert float(jnp.mean((v2 - 1.0) ** 2)) < float(jnp.mean((batch.value - 1.0) ** 2))


def _advantaged_batch(cfg: TrainConfig, learner: mappo_update.Learner) -> mappo_update.Batch:
    """64 slots where actions with z_x > 0 were good."""
    k = jax.random.split(jax.random.PRNGKey(2), 2)
    obs = jax.random.normal(k[0], (64, M, D))
    mean, log_std = mnet.policy(cfg, learner.actor, obs)
    z = mean + jnp.exp(log_std) * jax.random.normal(k[1], mean.shape)
    adv = jnp.sign(z[..., 0])
    logp = mnet.log_prob(z, mean, log_std)
    return mappo_update.Batch(obs, z, logp, jnp.zeros_like(adv), adv, jnp.ones_like(adv))


@pytest.mark.parametrize("anneal", [0, 128])
def test_an_annealed_rate_stops_updating_after_its_env_steps(anneal: int) -> None:
    """``ppo_anneal_steps`` = 2 iterations of 64 env steps (one gradient step each): the first
    two updates move the networks, the third (rate 0) leaves them as they are; without it
    every update moves them."""
    cfg = TrainConfig(
        algo="mappo", num_envs=32, ppo_steps=2, ppo_epochs=1, ppo_minibatches=1,
        ppo_anneal_steps=anneal,
    )  # fmt: skip
    learner = mappo_update.init(jax.random.PRNGKey(0), cfg, M, D)
    batch = _advantaged_batch(cfg, learner)
    moved = []
    for i in range(3):
        new, _ = mappo_update.update(cfg, learner, batch, jax.random.PRNGKey(10 + i))
        before = jax.tree.leaves((learner.actor, learner.critic))
        after = jax.tree.leaves((new.actor, new.critic))
        moved.append(any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True)))
        learner = new
    assert moved == [True, True, anneal == 0]


@pytest.mark.parametrize("bad", [-1, 1.5e6, True, "2e6", 10**13])
def test_config_refuses_a_bad_anneal_horizon(bad: object) -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig(algo="mappo", ppo_anneal_steps=bad)  # type: ignore[arg-type]
    assert err.value.field == "ppo_anneal_steps"


def test_config_checks_minibatches() -> None:
    with pytest.raises(ConfigError, match="ppo_minibatches"):
        TrainConfig(algo="mappo", num_envs=10, ppo_steps=3, ppo_minibatches=4)
    with pytest.raises(ConfigError, match="clip_eps"):
        TrainConfig(algo="mappo", clip_eps=1.5)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> session.TrainResult:
    out = tmp_path_factory.mktemp("mappo")
    return session.run(FAST, SMALL, seed=0, steps=200_000, out_dir=out)


def test_short_training_improves_over_initial_policy(trained) -> None:
    initial = algos.init_learner(jax.random.PRNGKey(0), FAST, SMALL)
    before = evaluate(LearnedPolicy(initial.actor, FAST), SMALL, EVAL_SEEDS, "initial")
    after = evaluate(LearnedPolicy(trained.learner.actor, FAST), SMALL, EVAL_SEEDS, "trained")
    assert trained.updates == 16 * (trained.env_steps // (FAST.num_envs * FAST.ppo_steps))
    assert after.mean["data_collection_ratio"] > before.mean["data_collection_ratio"] + 0.2
    assert after.mean["energy_efficiency"] > 2.0 * before.mean["energy_efficiency"]
    rows = [r for r in trained.rows if r["episodes"] > 0]
    assert rows[-1]["return"] > rows[0]["return"]


def test_checkpoint_round_trip_and_registry(trained, tmp_path: Path) -> None:
    ck_path = trained.files["checkpoint"]
    policy, params = load_policy("mappo", ck_path, SMALL)
    assert params == SMALL
    original = LearnedPolicy(trained.learner.actor, FAST)
    state, _ = world.reset(jax.random.PRNGKey(4), SMALL)
    obs = jax.random.normal(jax.random.PRNGKey(5), (2, obs_dim(SMALL)))
    key = jax.random.PRNGKey(9)
    np.testing.assert_array_equal(
        np.asarray(policy.act(key, obs, state, SMALL)),
        np.asarray(original.act(key, obs, state, SMALL)),
    )
    a = evaluate(make_policy("mappo", ck_path, SMALL), SMALL, range(3)).per_episode
    b = evaluate(original, SMALL, range(3)).per_episode
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    ck = checkpoint.load(ck_path)
    assert ck.cfg == FAST
    for x, y in zip(
        jax.tree_util.tree_leaves(ck.learner),
        jax.tree_util.tree_leaves(trained.learner),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    with pytest.raises(ChainsenseError, match="mappo fleet, not maddpg"):
        load_policy("maddpg", ck_path)
    # resume keeps counting from the checkpoint
    res = session.run(FAST, SMALL, seed=0, steps=10_240, out_dir=tmp_path, resume=ck_path)
    assert res.env_steps == trained.env_steps + 10_240
    assert res.updates == trained.updates + 160
