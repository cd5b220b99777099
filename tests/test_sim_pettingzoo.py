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


@pytest.mark.parametrize("observation", ["rich", "paper"])
def test_the_last_observation_of_an_episode_lies_in_the_observation_space(observation):
    # Issue 12, defect 13: with T = 500, 1 - t/T became 1 - t * fl(1/T) = -4.75e-8 at t = T.
    params = preset("small").replace(num_slots=500, initial_energy=500.0, observation=observation)
    env = CrowdsensingParallelEnv(params, seed=0)
    obs, _ = env.reset(seed=1)
    space = env.observation_space("mt_0")
    assert all(space.contains(o) for o in obs.values())
    env.state = env.state.replace(t=env.state.t + params.num_slots - 1)
    obs, _, _, trunc, _ = env.step({a: np.zeros(2, np.float32) for a in env.agents})
    assert all(trunc.values())
    for o in obs.values():
        assert space.contains(o), o[:4]
