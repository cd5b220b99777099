"""The recharge reflex (``TrainConfig.recharge_reflex``): greedy's recharge rule on top of a
learned fleet, in evaluation and in MAPPO's training rollout; refused where it cannot apply."""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chainsense.errors import ConfigError
from chainsense.marl import mappo_rollout, mappo_train, networks, session
from chainsense.marl.config import TrainConfig
from chainsense.marl.evaluate import evaluate
from chainsense.marl.learned import LearnedPolicy
from chainsense.marl.recharge import recharge_reflex
from chainsense.sim import world
from chainsense.sim.params import preset

CHARGING = preset("charging")
REFLEX = TrainConfig(algo="mappo", recharge_reflex=True, num_envs=16, chunk_iters=2)


def _world(energy: list[float], at_station: list[bool]):
    state, _ = world.reset(jax.random.PRNGKey(2), CHARGING)
    station = state.stations[0]
    away = station + jnp.array([4.0, 0.0]) if station[0] < 8 else station - jnp.array([4.0, 0.0])
    pos = jnp.stack([station if s else away for s in at_station])
    return state.replace(mt_pos=pos, energy=jnp.array(energy, jnp.float32))


def test_low_mts_head_for_a_station_charging_ones_stay_the_rest_keep_their_action() -> None:
    own = jnp.array([[1.0, 0.7], [2.0, 0.9]])
    full = _world([25.0, 24.0], [False, True])  # not low, and at a station but nearly full
    np.testing.assert_array_equal(recharge_reflex(full, CHARGING, own), own)
    low = _world([1.0, 5.0], [False, True])
    act = recharge_reflex(low, CHARGING, own)
    assert float(act[1, 1]) == 0.0  # charging: stays put
    after, _, _, _, _ = world.step(jax.random.PRNGKey(0), low, act, CHARGING)
    before_d = jnp.linalg.norm(low.mt_pos[0] - low.stations, axis=1).min()
    after_d = jnp.linalg.norm(after.mt_pos[0] - low.stations, axis=1).min()
    assert float(after_d) < float(before_d)  # low: on its way to the nearest station
    assert float(after.charged[1]) > 0


def test_an_untrained_fleet_with_the_reflex_recharges_and_one_without_does_not() -> None:
    small_battery = dataclasses.replace(CHARGING, initial_energy=8.0)  # an untrained fleet dawdles
    learner = mappo_train.init_carry(jax.random.PRNGKey(0), REFLEX, small_battery).learner
    seeds = range(10000, 10004)
    with_reflex = evaluate(LearnedPolicy(learner.actor, REFLEX), small_battery, seeds).mean
    plain_cfg = TrainConfig(algo="mappo", num_envs=16)
    plain = evaluate(LearnedPolicy(learner.actor, plain_cfg), small_battery, seeds).mean
    assert with_reflex["energy_charged"] > 20.0 * max(plain["energy_charged"], 0.5)
    assert with_reflex["data_collection_ratio"] > plain["data_collection_ratio"]


def test_training_rollout_applies_the_reflex_and_remembers_what_was_done() -> None:
    carry = mappo_train.init_carry(jax.random.PRNGKey(1), REFLEX, CHARGING)
    low = carry.env.replace(energy=jnp.full_like(carry.env.energy, 2.0))  # all low: all forced
    pool = mappo_rollout.world_pool.draw(REFLEX, CHARGING, jax.random.PRNGKey(3))
    new, (traj, _) = mappo_rollout.collect_step(
        REFLEX, CHARGING, pool, carry.replace(env=low), None
    )
    forced = jax.vmap(lambda s: recharge_reflex(s, CHARGING, jnp.zeros((2, 2))))(low)
    executed = networks.from_physical(forced, CHARGING.max_move)
    going = ~np.asarray(traj.done, bool)  # a world that ended restarts with a fresh memory
    assert going.sum() >= 8
    np.testing.assert_allclose(new.memory[going][..., :2], executed[going], atol=1e-5)
    sampled = networks.squash_to_disk(traj.z)
    assert not np.allclose(sampled, executed, atol=1e-3)  # PPO keeps the actor's own sample


def test_the_reflex_is_refused_where_it_cannot_apply(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:  # the small world has no stations
        session.run(REFLEX, preset("small"), seed=0, steps=1_000, out_dir=tmp_path / "run")
    assert "recharge_reflex" in str(err.value)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="recharge_reflex"):
        TrainConfig(algo="maddpg", recharge_reflex=True)
