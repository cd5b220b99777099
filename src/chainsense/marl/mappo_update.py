"""MAPPO's learner and its PPO update: clipped surrogate, clipped value loss, entropy bonus.

One update iteration takes the ``ppo_steps x num_envs`` slots just collected, runs
``ppo_epochs`` passes over them in ``ppo_minibatches`` shuffled minibatches, and takes one Adam
step of actor and critic together per minibatch. Advantages are normalised per minibatch over
all MTs. Every MT's sample trains the one shared actor; the centralised value function is
trained on every MT's own return.

With ``axis_name`` (data-parallel training, ``marl.sharding``) every device holds an equal
share of each minibatch: advantages are normalised with the statistics of the whole minibatch
and gradients and logs are averaged over devices, so the devices take the step one device
would take on the union of their shares. Without it the code is the single-device one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from chainsense.marl import mappo_networks as mnet
from chainsense.marl.config import TrainConfig


@struct.dataclass
class Learner:
    """Shared actor, centralised critic, their optimiser state and the update count."""

    actor: Any
    critic: Any
    opt: Any
    updates: jax.Array


class Batch(NamedTuple):
    """Slots of all MTs flattened over time and worlds: leading axis N."""

    obs: jax.Array  # [N, M, d]
    z: jax.Array  # [N, M, 2]
    logp: jax.Array  # [N, M]
    value: jax.Array  # [N, M]
    advantage: jax.Array  # [N, M]
    target: jax.Array  # [N, M]


def optimiser(cfg: TrainConfig) -> optax.GradientTransformation:
    """Adam on actor and critic together, after global-norm clipping; with ``ppo_anneal_steps``
    its rate falls linearly to 0 over that many env steps (as CleanRL's and PureJaxRL's PPO
    anneal it), so late updates refine the policy instead of carrying it away."""
    lr: float | optax.Schedule = cfg.ppo_lr
    if cfg.ppo_anneal_steps:
        iterations = cfg.ppo_anneal_steps / (cfg.num_envs * cfg.ppo_steps)
        lr = optax.linear_schedule(
            cfg.ppo_lr, 0.0, max(1, round(iterations * cfg.ppo_epochs * cfg.ppo_minibatches))
        )
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), optax.adam(lr, eps=1e-5))


def init(key: jax.Array, cfg: TrainConfig, num_agents: int, obs_dim: int) -> Learner:
    """A fresh learner for ``num_agents`` MTs with learner observations of ``obs_dim``."""
    actor, critic = mnet.init(key, cfg, num_agents, obs_dim)
    return Learner(
        actor=actor,
        critic=critic,
        opt=optimiser(cfg).init((actor, critic)),
        updates=jnp.zeros((), jnp.int32),
    )


def normalise(adv: jax.Array, axis_name: str | None = None) -> jax.Array:
    """Advantages scaled to mean 0 and std 1 over the minibatch (over all devices' equal
    shares of it with ``axis_name``)."""
    if axis_name is None:
        return (adv - jnp.mean(adv)) / (jnp.std(adv) + 1e-8)
    mean = jax.lax.pmean(jnp.mean(adv), axis_name)
    std = jnp.sqrt(jax.lax.pmean(jnp.mean((adv - mean) ** 2), axis_name))
    return (adv - mean) / (std + 1e-8)


def loss(
    cfg: TrainConfig, nets: tuple[Any, Any], mb: Batch, axis_name: str | None = None
) -> tuple[jax.Array, dict]:
    """PPO loss of one minibatch and its parts (for logging)."""
    actor, critic = nets
    mean, log_std = mnet.policy(cfg, actor, mb.obs)
    logp = mnet.log_prob(mb.z, mean, log_std)
    return objective(cfg, logp, log_std, mnet.value(cfg, critic, mb.obs), mb, axis_name)


def objective(
    cfg: TrainConfig,
    logp: jax.Array,
    log_std: jax.Array,
    v: jax.Array,
    mb: Any,
    axis_name: str | None = None,
) -> tuple[jax.Array, dict]:
    """PPO loss and its parts from the current policy's ``logp``/``log_std`` and values ``v``
    of the samples of ``mb`` (anything with the ``Batch`` fields ``logp``, ``value``,
    ``advantage`` and ``target``; the recurrent update shares it)."""
    ratio = jnp.exp(logp - mb.logp)
    adv = normalise(mb.advantage, axis_name)
    clipped = jnp.clip(ratio, 1.0 - cfg.clip_eps, 1.0 + cfg.clip_eps)
    actor_loss = -jnp.mean(jnp.minimum(ratio * adv, clipped * adv))
    v_clipped = mb.value + jnp.clip(v - mb.value, -cfg.clip_eps, cfg.clip_eps)
    value_loss = 0.5 * jnp.mean(jnp.maximum((v - mb.target) ** 2, (v_clipped - mb.target) ** 2))
    ent = jnp.mean(mnet.entropy(log_std))
    total = actor_loss + cfg.vf_coef * value_loss - cfg.ent_coef * ent
    return total, {"critic_loss": value_loss, "actor_loss": actor_loss, "q_mean": jnp.mean(v)}


def update(
    cfg: TrainConfig, learner: Learner, batch: Batch, key: jax.Array, axis_name: str | None = None
) -> tuple[Learner, dict[str, jax.Array]]:
    """``ppo_epochs`` x ``ppo_minibatches`` gradient steps on ``batch``; mean logs. With
    ``axis_name``, ``batch`` is this device's share and the steps are the devices' joint ones."""
    return run_epochs(
        cfg,
        learner,
        batch.obs.shape[0],
        lambda idx: jax.tree_util.tree_map(lambda x: x[idx], batch),
        lambda nets, mb: loss(cfg, nets, mb, axis_name),
        key,
        axis_name,
    )


def run_epochs(
    cfg: TrainConfig,
    learner: Learner,
    n: int,
    take: Callable[[jax.Array], Any],
    loss_of: Callable[[tuple[Any, Any], Any], tuple[jax.Array, dict]],
    key: jax.Array,
    axis_name: str | None = None,
) -> tuple[Learner, dict[str, jax.Array]]:
    """PPO's optimisation loop, shared by the feed-forward and the recurrent update:
    ``ppo_epochs`` passes over ``n`` samples (slots, or whole worlds' sequences) in
    ``ppo_minibatches`` shuffled minibatches ``take(indices)``, one Adam step on
    ``loss_of(nets, minibatch)`` each (gradients averaged over ``axis_name`` when given)."""
    tx = optimiser(cfg)
    size = n // cfg.ppo_minibatches

    def minibatch(state: tuple, idx: jax.Array) -> tuple[tuple, dict]:
        nets, opt = state
        mb = take(idx)
        grads, logs = jax.grad(lambda p: loss_of(p, mb), has_aux=True)(nets)
        if axis_name is not None:
            grads, logs = jax.lax.pmean((grads, logs), axis_name)
        upd, opt = tx.update(grads, opt, nets)
        return (optax.apply_updates(nets, upd), opt), logs

    def epoch(state: tuple, k: jax.Array) -> tuple[tuple, dict]:
        perm = jax.random.permutation(k, n)[: size * cfg.ppo_minibatches]
        return jax.lax.scan(minibatch, state, perm.reshape(cfg.ppo_minibatches, size))

    keys = jax.random.split(key, cfg.ppo_epochs)
    (nets, opt), logs = jax.lax.scan(epoch, ((learner.actor, learner.critic), learner.opt), keys)
    steps = cfg.ppo_epochs * cfg.ppo_minibatches
    new = Learner(actor=nets[0], critic=nets[1], opt=opt, updates=learner.updates + steps)
    return new, jax.tree_util.tree_map(jnp.mean, logs)
