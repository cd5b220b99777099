"""Training rewards (``marl.rewards``): the efficiency shaping sums to the judged metric's
Dinkelbach form, its energy price follows the fleet, and bad settings are refused."""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chainsense.errors import ConfigError
from chainsense.marl import checkpoint, mappo_train, rewards, session, train
from chainsense.marl.config import TrainConfig
from chainsense.marl.policies import GreedyPolicy, RandomPolicy
from chainsense.sim import metrics, world
from chainsense.sim.params import preset

EFFICIENCY = TrainConfig(algo="mappo", shaping="efficiency")


def _episode_rewards(params, policy, price: float, seed: int) -> tuple[np.ndarray, dict]:
    """Every MT's summed efficiency reward over one whole episode, and the final metrics."""
    state, obs = world.reset(jax.random.PRNGKey(seed), params)
    key = jax.random.PRNGKey(seed + 100)
    total = np.zeros(params.num_mts)
    while not bool(state.done):
        key, k_act, k_step = jax.random.split(key, 3)
        action = policy.act(k_act, obs, state, params)
        after, obs, reward, _, info = world.step(k_step, state, action, params)
        shaped = rewards.shape_reward(EFFICIENCY, reward, info, params, state, after, price)
        total += np.asarray(shaped)
        state = after
    return total, metrics.episode_metrics(state, params)


@pytest.mark.parametrize("name", ["small", "energy", "charging", "dynamic"])
@pytest.mark.parametrize("price", [0.0, 0.2])
def test_episode_sum_is_the_metrics_numerator_less_priced_energy(name: str, price: float) -> None:
    params = preset(name)
    if name in ("charging", "dynamic"):  # keep the episode short: the sum is what is tested
        params = dataclasses.replace(params, num_slots=60)
    for policy, seed in ((GreedyPolicy(), 3), (RandomPolicy(), 4)):
        total, m = _episode_rewards(params, policy, price, seed)
        phi = m["fairness"] * m["data_collection_ratio"] - price * m["energy_usage_ratio"]
        assert float(m["data_collected"]) > 0
        np.testing.assert_allclose(total, float(phi), atol=2e-4)  # every MT: the whole gain


def test_price_zero_rewards_collection_and_a_price_makes_wandering_cost() -> None:
    params = preset("small")
    state, _ = world.reset(jax.random.PRNGKey(0), params)
    stay = jnp.zeros((params.num_mts, 2))
    far = jnp.tile(jnp.array([[0.5, params.max_move]]), (params.num_mts, 1))
    key = jax.random.PRNGKey(1)
    after, _, reward, _, info = world.step(key, state, far, params)
    moved = rewards.shape_reward(EFFICIENCY, reward, info, params, state, after, 100.0)
    assert float(jnp.sum(info.energy_used)) > 0
    assert np.all(np.asarray(moved) < 0)  # a dear price: spending outweighs what was sensed
    after, _, reward, _, info = world.step(key, state, stay, params)
    kept = rewards.shape_reward(EFFICIENCY, reward, info, params, state, after, 0.0)
    assert np.all(np.asarray(kept) >= 0)  # free energy: only the collection counts


def test_next_price_follows_the_fleets_efficiency() -> None:
    stats = {"energy_efficiency": jnp.array([0.0, 0.6, 0.0]), "episodes": jnp.array([0, 2, 0.0])}
    price = rewards.next_price(EFFICIENCY, jnp.float32(0.1), stats)
    np.testing.assert_allclose(float(price), 0.1 + rewards.PRICE_UPDATE * (0.3 - 0.1), rtol=1e-6)
    none_ended = {k: jnp.zeros(3) for k in stats}
    assert float(rewards.next_price(EFFICIENCY, jnp.float32(0.1), none_ended)) == pytest.approx(0.1)
    fixed = TrainConfig(algo="mappo", shaping="efficiency", energy_price=0.25)
    assert float(rewards.initial_price(fixed)) == pytest.approx(0.25)
    assert float(rewards.next_price(fixed, jnp.float32(0.25), stats)) == pytest.approx(0.25)
    assert float(rewards.initial_price(EFFICIENCY)) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"energy_price": -0.5}, "energy_price"),
        ({"energy_price": 1e6}, "energy_price"),
        ({"energy_price": float("nan")}, "energy_price"),
        ({"algo": "maddpg", "shaping": "efficiency"}, "energy_price"),
        ({"algo": "iddpg", "shaping": "efficiency"}, "energy_price"),
    ],
)
def test_bad_prices_are_refused_naming_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig(**kwargs)
    assert field in str(err.value)


def test_maddpg_trains_with_a_fixed_price() -> None:
    cfg = TrainConfig(algo="maddpg", shaping="efficiency", energy_price=0.5, num_envs=16)
    carry = train.init_carry(jax.random.PRNGKey(0), cfg, preset("small"))
    carry, stats = train.make_chunk(cfg, preset("small"))(carry)
    assert np.isfinite(float(stats["critic_loss"]))


def test_mappo_run_logs_the_price_and_resumes_with_it(tmp_path: Path) -> None:
    cfg = TrainConfig(algo="mappo", shaping="efficiency", num_envs=64, chunk_iters=10)
    params = preset("small")
    first = session.run(cfg, params, seed=0, steps=40_000, out_dir=tmp_path / "a")
    prices = [r["energy_price"] for r in first.rows]
    assert all(np.isfinite(prices)) and prices[-1] > 0.0  # episodes ended: lambda moved off 0
    saved = checkpoint.load(first.files["checkpoint"]).progress["energy_price"]
    assert saved == pytest.approx(prices[-1])
    more = session.run(
        cfg, params, seed=0, steps=10_240, out_dir=tmp_path / "b", resume=first.files["checkpoint"]
    )
    # from 0, ten iterations would leave lambda 0.9^10 = 35% short of the fleet's efficiency
    assert abs(more.rows[0]["energy_price"] - saved) < 0.2 * saved
    carry = mappo_train.init_carry(jax.random.PRNGKey(0), cfg, params)
    assert float(carry.price) == 0.0


@pytest.mark.parametrize("name", ["small", "dynamic"])
def test_the_collection_reward_sums_to_the_data_the_fleet_collected(name: str) -> None:
    """Every MT is paid the fleet's data of the slot: over an episode each MT's sum is the
    fleet's whole collection (collected / generated times what was generated, on `dynamic`)."""
    cfg = TrainConfig(algo="mappo", shaping="collection")
    params = dataclasses.replace(preset(name), num_slots=60)
    state, obs = world.reset(jax.random.PRNGKey(5), params)
    total = np.zeros(params.num_mts)
    while not bool(state.done):
        action = GreedyPolicy().act(None, obs, state, params)
        after, obs, reward, _, info = world.step(None, state, action, params)
        total += np.asarray(rewards.shape_reward(cfg, reward, info, params, state, after))
        state = after
    collected = float(metrics.episode_metrics(state, params)["data_collected"])
    assert collected > 0
    np.testing.assert_allclose(total, collected, rtol=1e-4)
