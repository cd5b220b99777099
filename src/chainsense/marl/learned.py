"""A trained MADDPG / IDDPG / MAPPO fleet behind the baselines' ``Policy`` call signature.

The policy is a ``flax.struct`` pytree: the stacked actor weights are array leaves and the
training config is static, so the same jitted rollout serves every checkpoint of one shape.
The fleet reads its observations and its proximity sensor (``marl.features``). It acts with
Gaussian noise of std ``cfg.eval_noise`` on the unit-disk action (0: the deterministic actor): a
memoryless deterministic actor that is refused a move gets the same observation back and would
repeat the move for the rest of the episode; a little noise frees it. A fleet trained with
``memory`` is a ``marl.memory.MemoryPolicy``: the rollout carries its last actions and refused
flags. A MAPPO fleet acts with the mean of its Gaussian (squashed), plus the same noise. A
recurrent MAPPO fleet (``cfg.recurrent``) also carries its GRU's hidden state in the memory:
[M, MEMORY_DIM + gru_hidden], last action and refused flag first, zeros at an episode's start.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from jax import Array

from chainsense.errors import ChainsenseError, ConfigError
from chainsense.marl import algos, checkpoint, features, networks, target_actions
from chainsense.marl import mappo_networks as mnet
from chainsense.marl.config import Algo, TrainConfig
from chainsense.marl.recharge import recharge_reflex
from chainsense.sim.params import WorldParams, obs_dim
from chainsense.sim.state import StepInfo, WorldState


@struct.dataclass
class LearnedPolicy:
    """Actor of every MT: pi^m(o^m) (+ noise of std ``cfg.eval_noise``) as physical (theta, l)."""

    actor: Any
    cfg: TrainConfig = struct.field(pytree_node=False)

    def act(self, key: Array, obs: Array, state: WorldState, params: WorldParams) -> Array:
        """Physical actions [M,2] from observations [M,obs_dim] (+ the sensor, from state);
        a fleet with memory acts as at the start of an episode (use ``act_with_memory``)."""
        return self.act_with_memory(key, obs, state, params, self.initial_memory(params))

    def initial_memory(self, params: WorldParams) -> Array:
        """Memory of a fresh episode (``marl.memory``): no last action, zero hidden state."""
        hidden = mnet.initial_hidden(self.cfg, (params.num_mts,))
        return jnp.concatenate([features.initial_memory(params.num_mts), hidden], axis=-1)

    def act_with_memory(
        self, key: Array, obs: Array, state: WorldState, params: WorldParams, memory: Array
    ) -> Array:
        """Physical actions [M,2] from observations, the sensor and the memory."""
        return self.act_recurrent(key, obs, state, params, memory)[0]

    def act_recurrent(
        self, key: Array, obs: Array, state: WorldState, params: WorldParams, memory: Array
    ) -> tuple[Array, Array]:
        """Physical actions [M,2] and the memory after acting (the GRU's next hidden state;
        unchanged for a feed-forward actor)."""
        lobs = features.learner_obs(self.cfg, state, obs, params, memory[:, : features.MEMORY_DIM])
        if self.cfg.recurrent:
            d, hidden = mnet.recurrent_act(
                self.cfg, self.actor, memory[:, features.MEMORY_DIM :], lobs
            )
            memory = jnp.concatenate([memory[:, : features.MEMORY_DIM], hidden], axis=-1)
        else:
            d = algos.act(self.cfg, self.actor, lobs)
        if self.cfg.eval_noise > 0:
            noise = self.cfg.eval_noise * jax.random.normal(key, d.shape, d.dtype)
            d = networks.clip_to_disk(d + noise)
        if self.cfg.action_space == "targets":
            physical = target_actions.decode(state, d, params, self.cfg)
        else:
            physical = networks.to_physical(d, params.max_move)
        if self.cfg.recharge_reflex:
            physical = recharge_reflex(state, params, physical, self.cfg.recharge_rule)
        return physical, memory

    def remember(self, memory: Array, actions: Array, info: StepInfo, params: WorldParams) -> Array:
        """Memory after a slot: the action taken (as a unit-disk displacement), refused or not;
        a recurrent actor's hidden state is kept."""
        last = features.remember(networks.from_physical(actions, params.max_move), info.collision)
        return jnp.concatenate([last, memory[:, features.MEMORY_DIM :]], axis=-1)


def check_compatible(trained: WorldParams, params: WorldParams) -> None:
    """ChainsenseError unless a fleet trained on ``trained`` can act in worlds of ``params``."""
    if trained.num_mts != params.num_mts:
        raise ConfigError(
            "num_mts",
            f"checkpoint was trained with {trained.num_mts} MTs, world has {params.num_mts}",
        )
    if obs_dim(trained) != obs_dim(params) or trained.observation != params.observation:
        raise ConfigError(
            "observation",
            f"checkpoint expects the {trained.observation!r} observation of size "
            f"{obs_dim(trained)}, world gives {params.observation!r} of size {obs_dim(params)}",
        )


def load_policy(
    name: str, checkpoint_path: str | Path, params: WorldParams | None = None
) -> tuple[LearnedPolicy, WorldParams]:
    """The fleet saved at ``checkpoint_path`` and the world it was trained on.

    ``name`` ('maddpg', 'iddpg' or 'mappo') must match the algorithm recorded in the
    checkpoint; with ``params``, also checks the fleet can act in that world.
    """
    if name not in typing.get_args(Algo):
        raise ConfigError(
            "policy", f"unknown learned policy {name!r} (known: {', '.join(typing.get_args(Algo))})"
        )
    ckpt = checkpoint.load(checkpoint_path)
    if ckpt.cfg.algo != name:
        raise ChainsenseError(
            f"checkpoint: {Path(checkpoint_path).name} holds a {ckpt.cfg.algo} fleet, not {name}"
        )
    if params is not None:
        check_compatible(ckpt.params, params)
    return LearnedPolicy(actor=ckpt.learner.actor, cfg=ckpt.cfg), ckpt.params
