"""MAPPO's update for a recurrent actor: minibatches of whole worlds' sequences.

A GRU actor's action at slot t depends on every slot of its episode before t, so its samples
cannot be shuffled one slot at a time as the feed-forward update does (``mappo_update``). Here
one minibatch is a random subset of the worlds with all ``ppo_steps`` slots of each, and the
loss re-runs the GRU over those slots from the hidden state the rollout had at the start of
the iteration, zeroing it where an episode started (``mnet.sequence_policy``): before the
first gradient step this reproduces the rollout's log-probabilities exactly (ratio 1). The
centralised critic stays feed-forward; the PPO objective is ``mappo_update.objective``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from chainsense.marl import mappo_networks as mnet
from chainsense.marl import mappo_update
from chainsense.marl.config import TrainConfig


class SequenceBatch(NamedTuple):
    """One iteration's slots kept in order: time axis T first, worlds B second."""

    hidden: jax.Array  # [B, M, H] actor hidden state before the first slot
    start: jax.Array  # [T, B] True where an episode started at that slot
    obs: jax.Array  # [T, B, M, d]
    z: jax.Array  # [T, B, M, 2]
    logp: jax.Array  # [T, B, M]
    value: jax.Array  # [T, B, M]
    advantage: jax.Array  # [T, B, M]
    target: jax.Array  # [T, B, M]


def take_worlds(batch: SequenceBatch, idx: jax.Array) -> SequenceBatch:
    """The sequences of worlds ``idx`` (the hidden state's world axis is its first)."""
    rest = [x[:, idx] for x in batch[1:]]
    return SequenceBatch(batch.hidden[idx], *rest)


def loss(cfg: TrainConfig, nets: tuple[Any, Any], mb: SequenceBatch) -> tuple[jax.Array, dict]:
    """PPO loss of one minibatch of sequences, the GRU re-run over them."""
    actor, critic = nets
    mean, log_std = mnet.sequence_policy(cfg, actor, mb.hidden, mb.obs, mb.start)
    logp = mnet.log_prob(mb.z, mean, log_std)
    return mappo_update.objective(cfg, logp, log_std, mnet.value(cfg, critic, mb.obs), mb)


def update(
    cfg: TrainConfig, learner: mappo_update.Learner, batch: SequenceBatch, key: jax.Array
) -> tuple[mappo_update.Learner, dict[str, jax.Array]]:
    """``ppo_epochs`` x ``ppo_minibatches`` gradient steps, each on a shuffled subset of
    ``num_envs / ppo_minibatches`` worlds; mean logs."""
    return mappo_update.run_epochs(
        cfg,
        learner,
        batch.hidden.shape[0],
        lambda idx: take_worlds(batch, idx),
        lambda nets, mb: loss(cfg, nets, mb),
        key,
    )
