"""A PettingZoo ``ParallelEnv`` face over one world (for tooling that speaks PettingZoo).

Each call goes through the jitted single-world ``step``, so this is the slow path; batched
training should use ``world.batch_step`` directly. Agents are ``mt_0 .. mt_{M-1}``. An MT that runs
out of energy is *terminated* (it can no longer act); all agents are terminated when no data is
left and *truncated* after ``num_slots`` slots. Missing actions count as "stay" (l = 0).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import jax
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from chainsense.errors import ConfigError
from chainsense.sim.params import WorldParams, obs_dim
from chainsense.sim.state import WorldState
from chainsense.sim.world import reset, step


class CrowdsensingParallelEnv(ParallelEnv):  # type: ignore[misc]
    """One crowdsensing world with M MTs as PettingZoo agents; actions are (theta, l)."""

    metadata: ClassVar[dict[str, Any]] = {
        "name": "chainsense_crowdsensing_v0",
        "render_modes": [],
        "is_parallelizable": True,
    }

    def __init__(self, params: WorldParams, seed: int = 0) -> None:
        if not isinstance(params, WorldParams):
            raise ConfigError("params", "must be a WorldParams")
        self.params = params
        self.possible_agents = [f"mt_{i}" for i in range(params.num_mts)]
        self.agents: list[str] = []
        self._seed = int(seed)
        self._episode = 0
        self._key = jax.random.PRNGKey(self._seed)
        self.state: WorldState | None = None
        n = obs_dim(params)
        low = np.zeros(n, np.float32)
        high = np.full(n, np.inf, np.float32)
        high[:3] = 1.0
        if params.observation == "rich":
            high[3] = 1.0
            m2 = 2 * (params.num_mts - 1)
            low[4 : 4 + m2], high[4 : 4 + m2] = -1.0, 1.0
        if params.observation == "rich" and params.charging:  # offset to the nearest station
            low[-2:], high[-2:] = -1.0, 1.0
        self._obs_space = spaces.Box(low, high, dtype=np.float32)
        self._act_space = spaces.Box(
            np.zeros(2, np.float32),
            np.array([2.0 * math.pi, params.max_move], np.float32),
            dtype=np.float32,
        )

    def observation_space(self, agent: str) -> spaces.Box:
        """The same Box for every MT (see ``params.obs_dim`` for the layout)."""
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Box:
        """(theta in [0, 2 pi], l in [0, max_move]); out-of-range values are wrapped / clipped."""
        return self._act_space

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start an episode; ``seed`` restarts the key sequence (same seed, same episode)."""
        if seed is not None:
            self._seed, self._episode = int(seed), 0
        key = jax.random.fold_in(jax.random.PRNGKey(self._seed), self._episode)
        self._episode += 1
        self._key, k0 = jax.random.split(key)
        self.state, obs = reset(k0, self.params)
        self.agents = list(self.possible_agents)
        o = np.asarray(obs)
        return {a: o[i] for i, a in enumerate(self.possible_agents)}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        """Advance one slot with a dict agent -> (theta, l)."""
        if self.state is None:
            raise ConfigError("env", "call reset() before step()")
        act = np.zeros((self.params.num_mts, 2), np.float32)
        for i, a in enumerate(self.possible_agents):
            if a in actions and a in self.agents:
                act[i] = np.asarray(actions[a], np.float32).reshape(2)
        self._key, k = jax.random.split(self._key)
        self.state, obs, rewards, done, info = step(k, self.state, act, self.params)
        o, r = np.asarray(obs), np.asarray(rewards)
        energy = np.asarray(self.state.energy)
        collected, collision = np.asarray(info.collected), np.asarray(info.collision)
        used = np.asarray(info.energy_used)
        t, all_done = int(self.state.t), bool(done)
        truncated = all_done and t >= self.params.num_slots
        live = list(self.agents)
        obs_d, rew, term, trunc, infos = {}, {}, {}, {}, {}
        for i, a in enumerate(self.possible_agents):
            if a not in live:
                continue
            obs_d[a] = o[i]
            rew[a] = float(r[i])
            term[a] = bool(energy[i] <= 0 or (all_done and not truncated))
            trunc[a] = bool(truncated and not term[a])
            infos[a] = {
                "collected": float(collected[i]),
                "collision": bool(collision[i]),
                "energy_used": float(used[i]),
            }
        self.agents = [a for a in live if not (term[a] or trunc[a])]
        return obs_d, rew, term, trunc, infos

    def render(self) -> None:
        """Not rendered interactively; use ``chainsense.sim.render`` on a recorded rollout."""
        return None

    def close(self) -> None:
        """Nothing to release."""
        return None
