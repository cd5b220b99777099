"""MAPPO's networks: one shared Gaussian actor and one centralised value function.

Every MT acts with the same actor, told apart by an agent-id one-hot appended to its learner
observation (parameter sharing, as in MAPPO). The actor outputs the mean of a Gaussian over a
pre-squash vector ``z`` in R^2 and a state-independent log std; the world receives
``squash_to_disk(z)`` mapped to (theta, l) exactly as MADDPG's actions are
(``networks.to_physical``), so the squash belongs to the environment and the PPO likelihood is
the plain Gaussian one of ``z``. The value function reads the centralised state (every MT's
learner observation, concatenated, as MADDPG's ``joint_obs`` critic does) once and has one
output per MT, because the rewards are per MT: V(s) in R^M costs one pass for the whole fleet
where a V(s, m) with an agent id would cost M.

With ``cfg.recurrent`` the actor is a :class:`RecurrentActor` (a GRU between its first layer
and its head, one slot per call). The critic stays feed-forward: it already sees the joint
observation (every MT's position, energy, the time left and the coarse map of the data left)
and is used only during training, where its errors cost bias in the advantages, not actions;
a recurrent critic would double the sequence re-runs of the update.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from chainsense.marl import networks
from chainsense.marl.config import TrainConfig

_LOG_2PI = math.log(2.0 * math.pi)


class GaussianActor(nn.Module):
    """Observation + agent id -> (mean of z [2], log std [2])."""

    hidden: Sequence[int]

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        mean = networks.MLP(self.hidden, 2, out_scale=0.01)(x)
        log_std = self.param("log_std", nn.initializers.zeros, (2,))
        return mean, jnp.broadcast_to(log_std, mean.shape)


class RecurrentActor(nn.Module):
    """One slot of the GRU actor: (hidden [..., H], observation + agent id [..., d'],
    episode-start flag [...]) -> (next hidden, mean of z [..., 2], log std [..., 2]).

    The hidden state is zeroed where an episode starts before the GRU reads the slot (the reset
    of JaxMARL's ScannedRNN), so the rollout and the update's sequence re-run zero it alike.
    """

    hidden: Sequence[int]
    gru_hidden: int

    @nn.compact
    def __call__(
        self, h: jax.Array, x: jax.Array, start: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        h = jnp.where(start[..., None], jnp.zeros_like(h), h)
        x = nn.relu(nn.LayerNorm()(nn.Dense(self.hidden[0])(x)))
        h, y = nn.GRUCell(features=self.gru_hidden)(h, x)
        mean = networks.MLP(self.hidden[1:], 2, out_scale=0.01)(y)
        log_std = self.param("log_std", nn.initializers.zeros, (2,))
        return h, mean, jnp.broadcast_to(log_std, mean.shape)


class ValueNet(nn.Module):
    """Centralised state -> V of every MT [M]."""

    hidden: Sequence[int]
    num_agents: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return networks.MLP(self.hidden, self.num_agents, out_scale=1.0)(x)


def with_agent_id(obs: jax.Array) -> jax.Array:
    """[..., M, d] -> [..., M, d + M]: each MT's row gets its one-hot id."""
    m = obs.shape[-2]
    eye = jnp.broadcast_to(jnp.eye(m, dtype=obs.dtype), (*obs.shape[:-2], m, m))
    return jnp.concatenate([obs, eye], axis=-1)


def central_input(obs: jax.Array) -> jax.Array:
    """[..., M, d] -> [..., M*d]: the joint observation."""
    return obs.reshape(*obs.shape[:-2], obs.shape[-2] * obs.shape[-1])


def init(key: jax.Array, cfg: TrainConfig, num_agents: int, obs_dim: int) -> tuple[Any, Any]:
    """Fresh (actor, critic) parameters for a fleet of ``num_agents``."""
    k_actor, k_critic = jax.random.split(key)
    obs = jnp.zeros((num_agents, obs_dim))
    if cfg.recurrent:
        start = jnp.ones((num_agents,), bool)
        actor = _recurrent(cfg).init(
            k_actor, initial_hidden(cfg, (num_agents,)), with_agent_id(obs), start
        )
    else:
        actor = GaussianActor(cfg.actor_hidden).init(k_actor, with_agent_id(obs))
    critic = ValueNet(cfg.critic_hidden, num_agents).init(k_critic, central_input(obs))
    return actor, critic


def policy(cfg: TrainConfig, actor: Any, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and log std of z for learner observations [..., M, d] -> two [..., M, 2]."""
    return GaussianActor(cfg.actor_hidden).apply(actor, with_agent_id(obs))


def _recurrent(cfg: TrainConfig) -> RecurrentActor:
    return RecurrentActor(cfg.actor_hidden, cfg.gru_hidden)


def hidden_size(cfg: TrainConfig) -> int:
    """Width of the actor's hidden state (0: a feed-forward actor carries none)."""
    return cfg.gru_hidden if cfg.recurrent else 0


def initial_hidden(cfg: TrainConfig, lead: tuple[int, ...]) -> jax.Array:
    """Hidden state of fresh episodes: zeros [*lead, hidden_size]."""
    return jnp.zeros((*lead, hidden_size(cfg)), jnp.float32)


def recurrent_policy(
    cfg: TrainConfig, actor: Any, hidden: jax.Array, obs: jax.Array, start: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One slot of the GRU actor for learner observations [..., M, d], hidden [..., M, H] and
    episode-start flags [...] (one per world): next hidden, mean and log std of z."""
    start = jnp.broadcast_to(start[..., None], obs.shape[:-1])
    return _recurrent(cfg).apply(actor, hidden, with_agent_id(obs), start)


def sequence_policy(
    cfg: TrainConfig, actor: Any, hidden: jax.Array, obs: jax.Array, start: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """The GRU actor re-run over a time axis: hidden [..., M, H] before the first slot,
    observations [T, ..., M, d], start flags [T, ...] -> mean and log std [T, ..., M, 2].
    Each slot is the very computation of :func:`recurrent_policy` the rollout made."""

    def slot(h: jax.Array, x: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, tuple]:
        h, mean, log_std = recurrent_policy(cfg, actor, h, *x)
        return h, (mean, log_std)

    _, (mean, log_std) = jax.lax.scan(slot, hidden, (obs, start))
    return mean, log_std


def value(cfg: TrainConfig, critic: Any, obs: jax.Array) -> jax.Array:
    """V for every MT: learner observations [..., M, d] -> [..., M]."""
    return ValueNet(cfg.critic_hidden, obs.shape[-2]).apply(critic, central_input(obs))


def log_prob(z: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """Log density of a diagonal Gaussian, summed over the last axis."""
    norm = (z - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * norm * norm - log_std - 0.5 * _LOG_2PI, axis=-1)


def entropy(log_std: jax.Array) -> jax.Array:
    """Entropy of a diagonal Gaussian, summed over the last axis."""
    return jnp.sum(log_std + 0.5 * (1.0 + _LOG_2PI), axis=-1)


def act(cfg: TrainConfig, actor: Any, obs: jax.Array) -> jax.Array:
    """Deterministic fleet actions: the squashed mean, a unit-disk displacement [..., M, 2]."""
    mean, _ = policy(cfg, actor, obs)
    return networks.squash_to_disk(mean)


def recurrent_act(
    cfg: TrainConfig, actor: Any, hidden: jax.Array, obs: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Deterministic actions of the GRU actor within an episode (the caller zeroes ``hidden``
    at its start): unit-disk displacements [..., M, 2] and the next hidden [..., M, H]."""
    start = jnp.zeros(obs.shape[:-2], bool)
    hidden, mean, _ = recurrent_policy(cfg, actor, hidden, obs, start)
    return networks.squash_to_disk(mean), hidden
