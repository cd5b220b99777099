"""Shared parameters for MADDPG / IDDPG: one network set for the fleet, agents told apart by id,
every agent's gradient landing in the one set; and the memory features of the learner."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chainsense.marl import features, maddpg, session
from chainsense.marl.config import TrainConfig
from chainsense.marl.evaluate import evaluate
from chainsense.marl.learned import LearnedPolicy
from chainsense.marl.memory import MemoryPolicy
from chainsense.sim import world
from chainsense.sim.params import preset
from marl_batches import OD, SD, M, N, random_batch

SMALL = preset("small")


@pytest.mark.parametrize("algo", ["maddpg", "iddpg"])
def test_shared_has_one_set_and_learns_from_every_agent(algo) -> None:
    cfg = TrainConfig(algo=algo, shared=True, actor_hidden=(16,), critic_hidden=(32,))
    learner = maddpg.init(jax.random.PRNGKey(0), cfg, M, OD, SD)
    assert all(leaf.shape[0] == 1 for leaf in jax.tree_util.tree_leaves(learner.actor))
    kernel = learner.actor["params"]["MLP_0"]["Dense_0"]["kernel"]
    assert kernel.shape == (1, OD + M, 16)  # observation + agent id
    obs = jnp.broadcast_to(jax.random.normal(jax.random.PRNGKey(3), (OD,)) * 50.0, (N, M, OD))
    acts = maddpg.act(cfg, learner.actor, obs)
    assert acts.shape == (N, M, 2)
    assert not np.allclose(acts[0, 0], acts[0, 1])  # same input, other id, other action
    batch = random_batch(jax.random.PRNGKey(1))._replace(done=jnp.ones((N,)))
    x, a = maddpg.critic_inputs(cfg, batch.obs, batch.cstate, batch.action)
    assert maddpg.q_values(cfg, learner.critic, x, a).shape == (M, N)

    # the gradient of agent 2's loss alone reaches the shared set
    def one_agent(params):
        return jnp.sum(maddpg.q_values(cfg, params, x, a)[2] ** 2)

    grads = jax.grad(one_agent)(learner.critic)
    assert all(float(jnp.abs(g).sum()) > 0 for g in jax.tree_util.tree_leaves(grads))
    step = jax.jit(lambda lrn: maddpg.update(cfg, lrn, batch))
    lrn = learner
    for _ in range(30):
        lrn, logs = step(lrn)
    assert int(lrn.updates) == 30 and np.isfinite(float(logs["critic_loss"]))
    assert jax.tree_util.tree_structure(lrn) == jax.tree_util.tree_structure(learner)


def test_memory_observation_and_rollout() -> None:
    cfg = TrainConfig(memory=True, sensor_headings=0)
    state, obs = world.reset(jax.random.PRNGKey(0), SMALL)
    mem = features.remember(jnp.array([[0.5, 0.0], [0.0, -1.0]]), jnp.array([False, True]))
    lo = features.learner_obs(cfg, state, obs, SMALL, mem)
    assert lo.shape == (2, features.learner_obs_dim(cfg, SMALL))
    np.testing.assert_array_equal(lo[:, -3:], [[0.5, 0.0, 0.0], [0.0, -1.0, 1.0]])
    # a fleet with memory is played with its memory: the rollout carries the last actions
    learner = maddpg.init(jax.random.PRNGKey(1), cfg, 2, lo.shape[-1], 0)
    policy = LearnedPolicy(learner.actor, cfg)
    assert isinstance(policy, MemoryPolicy)
    table = evaluate(policy, SMALL, range(3))
    assert np.all(np.isfinite(table.per_episode["energy_efficiency"]))
    # without memory in the config, the same call ignores the memory argument
    plain = TrainConfig(sensor_headings=0, memory=False)
    np.testing.assert_array_equal(features.learner_obs(plain, state, obs, SMALL, mem), obs)


def test_shared_memory_training_runs() -> None:
    cfg = TrainConfig(
        shared=True, memory=True, num_envs=16, buffer_size=5_000, warmup_steps=200, chunk_iters=20
    )
    res = session.run(cfg, SMALL, seed=0, steps=1_280)
    assert res.updates > 0 and np.isfinite(res.rows[-1]["critic_loss"])
    evaluate(LearnedPolicy(res.learner.actor, cfg), SMALL, range(2))
