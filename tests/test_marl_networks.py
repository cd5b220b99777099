"""Networks: shapes, finite nonzero gradients for every parameter, action squashing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chainsense.marl import maddpg, networks
from chainsense.marl.config import TrainConfig
from marl_batches import OD, SD, M, N, random_batch


def _all_finite_nonzero(tree) -> None:
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        arr = np.asarray(leaf)
        assert np.all(np.isfinite(arr)), path
        # every agent's slice of every parameter gets a gradient
        per_agent = np.abs(arr).reshape(arr.shape[0], -1).sum(axis=1)
        assert np.all(per_agent > 0), path


@pytest.mark.parametrize(
    ("algo", "critic_input", "x_dim", "a_shape"),
    [
        ("maddpg", "joint_obs", M * OD, (M, 2)),
        ("maddpg", "global", SD, (M, 2)),
        ("iddpg", "joint_obs", OD, (1, 2)),
    ],
)
def test_shapes_and_gradients(algo, critic_input, x_dim, a_shape) -> None:
    cfg = TrainConfig(
        algo=algo, critic_input=critic_input, actor_hidden=(16,), critic_hidden=(32, 16)
    )
    learner = maddpg.init(jax.random.PRNGKey(0), cfg, M, OD, SD)
    # stacked: leading agent axis on every leaf; critic first layer sees x + actions
    assert all(leaf.shape[0] == M for leaf in jax.tree_util.tree_leaves(learner.actor))
    kernel = learner.critic["params"]["MLP_0"]["Dense_0"]["kernel"]
    assert kernel.shape == (M, x_dim + a_shape[0] * a_shape[1], 32)
    batch = random_batch(jax.random.PRNGKey(1))
    acts = maddpg.act(cfg, learner.actor, batch.obs)
    assert acts.shape == (N, M, 2)
    assert bool(jnp.all(jnp.linalg.norm(acts, axis=-1) < 1.0))
    x, a = maddpg.critic_inputs(cfg, batch.obs, batch.cstate, batch.action)
    assert x.shape == (M, N, x_dim) and a.shape == (M, N, *a_shape)
    q = maddpg.q_values(cfg, learner.critic, x, a)
    assert q.shape == (M, N)

    def critic_loss(params):
        return jnp.sum(maddpg.q_values(cfg, params, x, a) ** 2)

    def actor_loss(params):
        x2, a2 = maddpg.critic_inputs(
            cfg, batch.obs, batch.cstate, maddpg.act(cfg, params, batch.obs)
        )
        return -jnp.sum(maddpg.q_values(cfg, learner.critic, x2, a2))

    _all_finite_nonzero(jax.grad(critic_loss)(learner.critic))
    _all_finite_nonzero(jax.grad(actor_loss)(learner.actor))


def test_agents_have_independent_parameters() -> None:
    cfg = TrainConfig(actor_hidden=(8,), critic_hidden=(8,))
    learner = maddpg.init(jax.random.PRNGKey(0), cfg, M, OD, SD)
    k = learner.actor["params"]["MLP_0"]["Dense_0"]["kernel"]
    assert not np.allclose(k[0], k[1])
    obs = jnp.broadcast_to(jax.random.normal(jax.random.PRNGKey(3), (OD,)), (M, OD))
    acts = maddpg.act(cfg, learner.actor, obs)
    assert not np.allclose(acts[0], acts[1])  # same input, different agents, different actions


def test_action_mapping_round_trip() -> None:
    d = networks.clip_to_disk(jax.random.normal(jax.random.PRNGKey(0), (100, 2)) * 2.0)
    assert bool(jnp.all(jnp.linalg.norm(d, axis=-1) <= 1.0 + 1e-6))
    phys = networks.to_physical(d, 1.5)
    assert bool(jnp.all((phys[:, 0] >= 0) & (phys[:, 0] < 2 * np.pi)))
    assert bool(jnp.all((phys[:, 1] >= 0) & (phys[:, 1] <= 1.5)))
    np.testing.assert_allclose(networks.from_physical(phys, 1.5), d, atol=1e-5)
    # squashing never leaves the open disk, even for huge logits
    z = jnp.array([[1e6, -1e6], [0.0, 0.0], [-3.0, 4.0]])
    r = jnp.linalg.norm(networks.squash_to_disk(z), axis=-1)
    assert bool(jnp.all(r <= 1.0)) and float(r[1]) == 0.0
    np.testing.assert_allclose(float(r[2]), 5.0 / np.sqrt(26.0), rtol=1e-6)
