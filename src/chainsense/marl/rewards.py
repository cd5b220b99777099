"""Training rewards: what the learners are paid each slot (``TrainConfig.shaping``).

The world's reward is the paper's omega_t b / phi per MT and slot. The fleet is judged on the
energy efficiency of whole episodes, fairness x collection / energy usage, which no sum of
per-slot rewards equals, so training may pay something closer to it: the paper's reward less a
move penalty (the default), or the slot's gain in the efficiency's Dinkelbach form, with its
energy price lambda following the fleet (MAPPO carries it in its loop state).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from chainsense.marl.config import TrainConfig
from chainsense.sim import metrics
from chainsense.sim.params import WorldParams


def shape_reward(
    cfg: TrainConfig,
    reward: jax.Array,
    info: Any,
    params: WorldParams,
    before: Any,
    after: Any,
    price: jax.Array | float | None = None,
) -> jax.Array:
    """Training reward [..., M] of the slot that took ``before`` to ``after`` (world states,
    batched like ``reward``).

    ``shaping = "none"``: the world's (the paper's) reward omega_t b / phi.
    ``"move"``: that minus ``move_penalty * l / max_move`` for the distance l actually moved. The
    world's reward is 0 for any slot without data, however far the MT moved, so movement that
    collects nothing costs the fleet nothing while the energy efficiency metric pays for it.
    ``"efficiency"``: the slot's gain in fairness x collection ratio minus ``price`` x energy
    usage ratio (:func:`efficiency_progress`; ``price`` defaults to ``energy_price``), the same
    for every MT: its episode sum is the metric's own numerator less the priced energy. (Shares
    by what each MT collected and spent, with the fairness change split evenly, learned worse:
    an MT then sees only 1 / M of the fairness its revisits cost; see docs/learning.md.)
    ``"collection"``: the data the whole fleet collected in the slot, the same for every MT: its
    episode sum is the collected data, the headline where data keeps arriving (collected /
    generated), whatever the energy or the fairness.
    """
    if cfg.shaping == "none":
        return reward
    if cfg.shaping == "collection":
        fleet = jnp.sum(info.collected, axis=-1, keepdims=True)
        return jnp.broadcast_to(fleet, reward.shape).astype(reward.dtype)
    if cfg.shaping == "efficiency":
        lam = initial_price(cfg) if price is None else price
        gain = efficiency_progress(after, params, lam) - efficiency_progress(before, params, lam)
        return jnp.broadcast_to(gain[..., None], reward.shape).astype(reward.dtype)
    return reward - cfg.move_penalty * info.moved / params.max_move


def efficiency_progress(state: Any, params: WorldParams, price: jax.Array | float) -> jax.Array:
    """Phi = fairness x collection ratio - ``price`` x energy usage ratio of a world state (or a
    batch of them), from the metrics the fleet is judged on.

    The energy efficiency fairness x collection / usage is a ratio of episode totals, and a sum
    of per-slot rewards cannot be one; the world's per-slot b / phi rewards a slot's thrift, not
    the episode's. Dinkelbach's transform of a ratio objective N / D is N - lambda D: a policy
    with N - lambda D > 0 has a ratio above lambda, and at the best ratio lambda* maximising
    N - lambda* D and N / D coincide. The per-slot gains of Phi sum (gamma -> 1) to the
    episode's N - lambda D: collecting, fairly, pays; energy pays only where it buys more than
    lambda.
    lambda must stay below the best ratio, or spending nothing (Phi = 0) is optimal: MAPPO's
    default (``energy_price < 0``) is Dinkelbach's iteration, lambda = the fleet's own recent
    efficiency (:func:`next_price`).
    """

    def one(s: Any) -> jax.Array:
        m = metrics.episode_metrics(s, params)
        numerator = m["fairness"] * m["data_collection_ratio"]
        return numerator - price * m["energy_usage_ratio"]

    if state.t.ndim == 0:
        return one(state)
    return jax.vmap(one)(state)


#: weight of one iteration's episodes in the running efficiency that prices energy
PRICE_UPDATE = 0.1


def initial_price(cfg: TrainConfig) -> jax.Array:
    """lambda of the first iteration: ``energy_price``, or 0 when it follows the fleet."""
    return jnp.float32(max(cfg.energy_price, 0.0))


def next_price(
    cfg: TrainConfig, price: jax.Array, stats: dict, axis_name: str | None = None
) -> jax.Array:
    """lambda after an iteration whose per-slot episode ``stats`` are given: fixed with
    ``energy_price >= 0``; else moved ``PRICE_UPDATE`` of the way to the mean efficiency of
    the training episodes that ended (over all devices with ``axis_name``)."""
    if cfg.shaping != "efficiency" or cfg.energy_price >= 0:
        return price
    total = jnp.sum(stats["energy_efficiency"])
    count = jnp.sum(stats["episodes"])
    if axis_name is not None:
        total, count = jax.lax.psum((total, count), axis_name)
    mean = total / jnp.maximum(count, 1.0)
    return jnp.where(count > 0, price + PRICE_UPDATE * (mean - price), price)
