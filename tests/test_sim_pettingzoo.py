"""The PettingZoo face: the official parallel API test, and seeded determinism through it."""

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from chainsense.errors import ConfigError
from chainsense.sim.params import preset
from chainsense.sim.pettingzoo import CrowdsensingParallelEnv


@pytest.mark.parametrize("observation", ["rich", "paper"])
def test_parallel_api(observation):
    env = CrowdsensingParallelEnv(preset("small").replace(observation=observation), seed=0)
    parallel_api_test(env, num_cycles=120)


def _play(env, seed):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(0)
    trace = []
    while env.agents:
        acts = {
            a: env.action_space(a).sample() * 0 + rng.uniform([0, 0], [6.28, 1.0])
            for a in env.agents
        }
        obs, rew, _term, _trunc, _info = env.step(acts)
        trace.append((sorted(obs), [float(v) for v in rew.values()]))
    return trace, env.state


def test_episode_runs_to_the_end_and_repeats_with_the_same_seed():
    env = CrowdsensingParallelEnv(preset("small"), seed=3)
    t1, s1 = _play(env, 9)
    t2, s2 = _play(env, 9)
    assert t1 == t2
    np.testing.assert_array_equal(s1.poi_data, s2.poi_data)
    assert len(t1) <= preset("small").num_slots


def test_step_before_reset_and_bad_params():
    env = CrowdsensingParallelEnv(preset("small"))
    with pytest.raises(ConfigError):
        env.step({})
    with pytest.raises(ConfigError, match="params"):
        CrowdsensingParallelEnv({"num_pois": 3})
