"""MAPPO's small pool of fresh worlds: finished worlds take distinct entries in turn, the others
are untouched, and the pool is far smaller than the batch."""

import jax
import jax.numpy as jnp
import numpy as np

from chainsense.marl import train, world_pool
from chainsense.marl.config import TrainConfig
from chainsense.sim.params import preset

SMALL = preset("small")
CFG = TrainConfig(algo="mappo", num_envs=64, ppo_steps=16)


def test_pool_is_sized_by_expected_episode_ends() -> None:
    paper = preset("paper")
    expected = 256 * 16 / paper.num_slots  # desynchronised worlds: ~8 ends per iteration
    size = world_pool.pool_size(TrainConfig(algo="mappo", num_envs=256), paper)
    assert 4 * expected + 8 <= size < 64
    assert world_pool.pool_size(CFG, SMALL) == 64  # never more than the batch


def test_finished_worlds_take_the_next_entries_in_turn() -> None:
    pool = world_pool.draw(CFG, SMALL, jax.random.PRNGKey(0))
    size = pool[1].shape[0]
    keys = jax.random.split(jax.random.PRNGKey(1), 6)
    env, _ = train.reset_worlds(keys, SMALL, None, train.steers_by_rule(CFG))  # as the pool's
    obs = jnp.full((6, SMALL.num_mts, pool[1].shape[-1]), -1.0)
    memory = jnp.ones((6, SMALL.num_mts, 3))
    ret = jnp.arange(6, dtype=jnp.float32) + 1.0
    done = jnp.array([False, True, False, True, True, False])
    used = jnp.int32(size - 1)  # the second finished world wraps around to entry 0
    env2, obs2, mem2, ret2, used2 = world_pool.restart(done, pool, used, env, obs, memory, ret)
    assert int(used2) == size + 2
    for b, entry in ((1, size - 1), (3, 0), (4, 1)):
        np.testing.assert_array_equal(env2.poi_pos[b], pool[0].poi_pos[entry])
        np.testing.assert_array_equal(obs2[b], pool[1][entry])
        assert float(ret2[b]) == 0.0 and float(jnp.sum(mem2[b])) == 0.0
    for b in (0, 2, 5):
        np.testing.assert_array_equal(env2.poi_pos[b], env.poi_pos[b])
        assert float(obs2[b, 0, 0]) == -1.0 and float(ret2[b]) == b + 1.0
    none = jnp.zeros(6, bool)
    _, obs3, _, _, used3 = world_pool.restart(none, pool, used, env, obs, memory, ret)
    assert int(used3) == int(used) and float(jnp.max(obs3)) == -1.0
