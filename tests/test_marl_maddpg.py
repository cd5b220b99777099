"""MADDPG update arithmetic: TD target with terminal masking, soft updates, one real step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chainsense.errors import ConfigError
from chainsense.marl import buffer, maddpg
from chainsense.marl.config import TrainConfig
from marl_batches import OD, SD, M, N, random_batch


def test_td_target_hand_example() -> None:
    r = jnp.array([[1.0, 0.5], [2.0, -1.0]])  # [M=2, N=2]
    done = jnp.array([[0.0, 1.0]])  # second transition ends the episode
    q_next = jnp.array([[10.0, 10.0], [4.0, 100.0]])
    y = maddpg.td_target(r, done, q_next, 0.9)
    np.testing.assert_allclose(y, [[1.0 + 9.0, 0.5], [2.0 + 3.6, -1.0]], rtol=1e-6)


def test_soft_update_arithmetic() -> None:
    target = {"w": jnp.array([0.0, 10.0]), "b": jnp.array(4.0)}
    online = {"w": jnp.array([1.0, 0.0]), "b": jnp.array(0.0)}
    out = maddpg.soft_update(target, online, 0.25)
    np.testing.assert_allclose(out["w"], [0.25, 7.5])
    np.testing.assert_allclose(out["b"], 3.0)
    same = maddpg.soft_update(target, online, 1.0)
    np.testing.assert_allclose(same["w"], online["w"])


@pytest.mark.parametrize("algo", ["maddpg", "iddpg"])
def test_update_moves_critic_towards_target_and_targets_by_tau(algo) -> None:
    cfg = TrainConfig(algo=algo, actor_hidden=(16,), critic_hidden=(32,), tau=0.1, critic_lr=1e-2)
    learner = maddpg.init(jax.random.PRNGKey(0), cfg, M, OD, SD)
    batch = random_batch(jax.random.PRNGKey(1))._replace(done=jnp.ones((N,)))  # y = r exactly
    step = jax.jit(lambda lrn: maddpg.update(cfg, lrn, batch))
    x, a = maddpg.critic_inputs(cfg, batch.obs, batch.cstate, batch.action)

    def loss(lrn):
        return float(jnp.mean((maddpg.q_values(cfg, lrn.critic, x, a) - batch.reward.T) ** 2))

    new, logs = step(learner)
    assert int(new.updates) == 1
    np.testing.assert_allclose(float(logs["critic_loss"]) * M, loss(learner) * M, rtol=1e-4)
    # targets moved exactly tau of the way to the new online parameters
    expect = jax.tree_util.tree_map(
        lambda t, o: 0.9 * t + 0.1 * o, learner.critic_target, new.critic
    )
    for got, want in zip(
        jax.tree_util.tree_leaves(new.critic_target), jax.tree_util.tree_leaves(expect), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    lrn = new
    for _ in range(30):
        lrn, _ = step(lrn)
    assert loss(lrn) < 0.5 * loss(learner)


def test_actor_uses_other_agents_batch_actions() -> None:
    """Agent m's actor gradient flows only through critic m; others' actions come from the batch."""
    cfg = TrainConfig(actor_hidden=(8,), critic_hidden=(8,))
    learner = maddpg.init(jax.random.PRNGKey(0), cfg, M, OD, SD)
    batch = random_batch(jax.random.PRNGKey(2))
    new, _ = maddpg.update(cfg, learner, batch)
    # changing agent 1's batch action changes agent 0's actor update (it is critic 0's input)
    act2 = batch.action.at[:, 1].set(-batch.action[:, 1])
    new2, _ = maddpg.update(cfg, learner, batch._replace(action=act2))
    k0 = lambda lr: lr.actor["params"]["MLP_0"]["Dense_0"]["kernel"][0]  # noqa: E731
    assert not np.allclose(k0(new), k0(new2))


def test_buffer_wraparound_and_sampling() -> None:
    ex = {"x": jnp.zeros((2,)), "i": jnp.zeros((), jnp.int32)}
    buf = buffer.init(ex, 5)
    assert buf.capacity == 5 and int(buf.size) == 0
    for start in (0, 3, 6):
        batch = {
            "x": jnp.ones((3, 2)) * jnp.arange(start, start + 3)[:, None],
            "i": jnp.arange(start, start + 3, dtype=jnp.int32),
        }
        buf = buffer.add(buf, batch)
    # 9 items into 5 slots: items 4..8 remain, ptr = 9 % 5
    assert int(buf.size) == 5 and int(buf.ptr) == 4
    assert sorted(np.asarray(buf.data["i"]).tolist()) == [4, 5, 6, 7, 8]
    np.testing.assert_array_equal(buf.data["x"][:, 0], buf.data["i"])
    s = buffer.sample(buf, jax.random.PRNGKey(0), 200)
    assert set(np.asarray(s["i"]).tolist()) == {4, 5, 6, 7, 8}
    # a partly filled buffer never samples empty slots
    part = buffer.add(buffer.init(ex, 10), {"x": jnp.ones((2, 2)), "i": jnp.array([7, 9])})
    assert set(np.asarray(buffer.sample(part, jax.random.PRNGKey(1), 100)["i"]).tolist()) == {7, 9}
    with pytest.raises(ConfigError):
        buffer.add(buffer.init(ex, 2), {"x": jnp.ones((3, 2)), "i": jnp.zeros(3, jnp.int32)})
    with pytest.raises(ConfigError):
        buffer.init(ex, 0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gamma", 1.0),
        ("tau", 0.0),
        ("num_envs", 0),
        ("batch_size", -1),
        ("actor_hidden", ()),
        ("critic_hidden", (64, 0)),
        ("actor_lr", 0.0),
        ("noise_start", -0.1),
        ("buffer_size", 4),
    ],
)
def test_config_rejects_bad_values(field, value) -> None:
    with pytest.raises(ConfigError) as info:
        TrainConfig(**{field: value, "num_envs": 8} if field != "num_envs" else {field: value})
    assert info.value.field == field


def test_config_from_mapping_names_field() -> None:
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({"algo": "ppo"})
    assert info.value.field == "train.algo"
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({"bogus": 1})
    assert info.value.field == "train.bogus"
    cfg = TrainConfig.from_dict({"actor_hidden": [32, 32], "gamma": 0.9})
    assert cfg.actor_hidden == (32, 32) and TrainConfig.from_dict(cfg.to_dict()) == cfg
