"""The learner's proximity sensor flags exactly the straight moves the world would refuse."""

import jax
import jax.numpy as jnp
import numpy as np

from chainsense.marl import features, networks
from chainsense.marl.config import TrainConfig
from chainsense.sim import world
from chainsense.sim.params import obs_dim, preset

SMALL = preset("small")


def test_sensor_matches_world_collisions() -> None:
    cfg = TrainConfig(sensor_headings=8, memory=False)
    h = cfg.sensor_headings
    for seed in range(4):
        state, obs = world.reset(jax.random.PRNGKey(seed), SMALL)
        # put MT 0 next to the first obstacle's left edge, MT 1 at the area's corner
        box = state.obstacles[0]
        pos = jnp.array([[box[0] - 0.3, (box[1] + box[3]) / 2], [0.2, 0.2]])
        state = state.replace(mt_pos=pos)
        lo = features.learner_obs(cfg, state, obs, SMALL, features.initial_memory(2))
        assert lo.shape == (2, features.learner_obs_dim(cfg, SMALL))
        np.testing.assert_array_equal(lo[:, : obs_dim(SMALL)], obs)
        sensor = np.asarray(lo[:, obs_dim(SMALL) :]).reshape(2, 2, h)  # [M, length, heading]
        for j, frac in enumerate((0.5, 1.0)):
            for k in range(h):
                theta = 2 * np.pi * k / h
                acts = jnp.array([[theta, frac * SMALL.max_move]] * 2)
                _, _, _, _, info = world.step(jax.random.PRNGKey(0), state, acts, SMALL)
                np.testing.assert_array_equal(sensor[:, j, k], np.asarray(info.collision))
        assert sensor[0, 0, 0] == 1.0  # heading east from 0.3 left of the box, half step: hit
        assert sensor[1, 1, h // 2] == 1.0  # heading west from x = 0.2, full step: leaves area


def test_sensor_off_gives_world_observation() -> None:
    cfg = TrainConfig(sensor_headings=0, memory=False)
    state, obs = world.reset(jax.random.PRNGKey(0), SMALL)
    assert features.learner_obs_dim(cfg, SMALL) == obs_dim(SMALL)
    mem = features.initial_memory(2)
    np.testing.assert_array_equal(features.learner_obs(cfg, state, obs, SMALL, mem), obs)
    d = networks.from_physical(jnp.array([[0.0, SMALL.max_move]]), SMALL.max_move)
    np.testing.assert_allclose(d, [[1.0, 0.0]], atol=1e-6)
