"""MADDPG and independent DDPG updates over stacked per-agent parameters.

For every MT m there is an actor pi^m, a critic Q^m and a target copy of each (four networks per
MT), all stored stacked on a leading agent axis and applied with ``vmap``. The two algorithms
share every code path and differ only in what a critic sees (:func:`critic_inputs`):

* MADDPG: Q^m(s, a^1..a^M) over the global (critic) state and all agents' actions;
* IDDPG:  Q^m(o^m, a^m) over the agent's own observation and action.

One update samples a batch, regresses every critic on y = r^m + gamma (1 - done) Q'^m(s', a'),
with a'^j = pi'^j(o'^j) from the target actors, then moves every actor up the gradient of its
critic with the other agents' actions taken from the batch, clips gradients per agent by global
norm, and finally moves the targets: theta' <- tau theta + (1 - tau) theta'.

With ``cfg.shared`` there is one actor and one critic (and targets) for the whole fleet, stored
with a leading axis of 1 and broadcast to the M agents before the same ``vmap``: each agent's
actor input and critic state get its one-hot id appended, and the gradients of all agents add
up in the one parameter set (parameter sharing), so a fleet of 8 learns from 8 samples per
transition into one network instead of one sample into each of 8.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from chainsense.marl import networks
from chainsense.marl.config import TrainConfig


class Transition(NamedTuple):
    """One step of all M agents of one world (a batch adds leading axes)."""

    obs: jax.Array  # [M, obs_dim]
    cstate: jax.Array  # [state_dim] global state; [0] unless critic_input == "global"
    action: jax.Array  # [M, 2] normalised displacement in the unit disk
    reward: jax.Array  # [M]
    next_obs: jax.Array  # [M, obs_dim]
    next_cstate: jax.Array  # like cstate
    done: jax.Array  # [] 1.0 when the episode ended at this step


@struct.dataclass
class Learner:
    """Online and target parameters and optimiser states of the whole fleet (stacked)."""

    actor: Any
    critic: Any
    actor_target: Any
    critic_target: Any
    actor_opt: Any
    critic_opt: Any
    updates: jax.Array


def make_modules(cfg: TrainConfig) -> tuple[networks.Actor, networks.Critic]:
    """The actor and critic modules described by the config."""
    return networks.Actor(cfg.actor_hidden), networks.Critic(cfg.critic_hidden)


def _optimisers(cfg: TrainConfig) -> tuple[optax.GradientTransformation, ...]:
    def tx(lr: float) -> optax.GradientTransformation:
        return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), optax.adam(lr))

    return tx(cfg.actor_lr), tx(cfg.critic_lr)


def critic_inputs(
    cfg: TrainConfig, obs: jax.Array, cstate: jax.Array, actions: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Per-agent critic inputs for a batch: x [M, N, dx] and actions [M, N, k, 2].

    ``actions`` is either [N, M, 2] (the same joint action for every critic) or [M, N, M, 2]
    (a different joint action per critic, as in the actor update).
    """
    m = obs.shape[1]
    per_critic = actions.ndim == 4
    if cfg.algo == "maddpg":
        if cfg.critic_input == "joint_obs":
            cstate = obs.reshape(obs.shape[0], -1)
        x = jnp.broadcast_to(cstate[None], (m, *cstate.shape))
        a = actions if per_critic else jnp.broadcast_to(actions[None], (m, *actions.shape))
        return x, a
    x = jnp.swapaxes(obs, 0, 1)
    if per_critic:
        own = jnp.diagonal(actions, axis1=0, axis2=2)  # [N, 2, M]
        a = jnp.moveaxis(own, -1, 0)[:, :, None, :]
    else:
        a = jnp.swapaxes(actions, 0, 1)[:, :, None, :]
    return x, a


def _id_dim(cfg: TrainConfig, num_agents: int) -> int:
    """Length of the agent id appended to actor and critic inputs (shared parameters only)."""
    return num_agents if cfg.shared else 0


def _with_ids(x: jax.Array, agent_axis: int) -> jax.Array:
    """Append each agent's one-hot id along the last axis; agents are on ``agent_axis``."""
    m = x.shape[agent_axis]
    shape = [1] * x.ndim
    shape[agent_axis], shape[-1] = m, m
    eye = jnp.eye(m, dtype=x.dtype).reshape(shape)
    return jnp.concatenate([x, jnp.broadcast_to(eye, (*x.shape[:-1], m))], axis=-1)


def _per_agent(cfg: TrainConfig, params: Any, m: int) -> Any:
    """Parameters with a leading axis of M: as stored, or the shared set broadcast to M."""
    if not cfg.shared:
        return params
    return jax.tree_util.tree_map(lambda p: jnp.broadcast_to(p, (m, *p.shape[1:])), params)


def init(
    key: jax.Array, cfg: TrainConfig, num_agents: int, obs_dim: int, state_dim: int
) -> Learner:
    """Fresh fleet: independent random parameters per agent (one set with ``cfg.shared``),
    targets equal to the online nets."""
    actor_mod, critic_mod = make_modules(cfg)
    k_actor, k_critic = jax.random.split(key)
    ids = _id_dim(cfg, num_agents)
    obs = jnp.zeros((obs_dim + ids,))
    if cfg.algo == "maddpg":
        x_dim = num_agents * obs_dim if cfg.critic_input == "joint_obs" else state_dim
        x, acts = jnp.zeros((x_dim + ids,)), jnp.zeros((num_agents, 2))
    else:
        x, acts = jnp.zeros((obs_dim + ids,)), jnp.zeros((1, 2))
    sets = 1 if cfg.shared else num_agents
    actor = networks.init_stacked(actor_mod, k_actor, sets, obs)
    critic = networks.init_stacked(critic_mod, k_critic, sets, x, acts)
    actor_tx, critic_tx = _optimisers(cfg)
    return Learner(
        actor=actor,
        critic=critic,
        actor_target=jax.tree_util.tree_map(jnp.copy, actor),  # own buffers (donation)
        critic_target=jax.tree_util.tree_map(jnp.copy, critic),
        actor_opt=jax.vmap(actor_tx.init)(actor),
        critic_opt=jax.vmap(critic_tx.init)(critic),
        updates=jnp.zeros((), jnp.int32),
    )


def act(cfg: TrainConfig, actor_params: Any, obs: jax.Array) -> jax.Array:
    """Deterministic fleet actions for observations [..., M, obs_dim] -> [..., M, 2] (disk)."""
    actor_mod, _ = make_modules(cfg)
    lead = obs.shape[:-2]
    m = obs.shape[-2]
    flat = obs.reshape(-1, m, obs.shape[-1])
    if cfg.shared:
        flat = _with_ids(flat, agent_axis=1)
    params = _per_agent(cfg, actor_params, m)
    out = jax.vmap(actor_mod.apply, in_axes=(0, 1), out_axes=1)(params, flat)
    return out.reshape(*lead, m, 2)


def q_values(cfg: TrainConfig, critic_params: Any, x: jax.Array, a: jax.Array) -> jax.Array:
    """Q^m for every agent: x [M, N, dx], a [M, N, k, 2] -> [M, N]."""
    _, critic_mod = make_modules(cfg)
    if cfg.shared:
        x = _with_ids(x, agent_axis=0)
    return jax.vmap(critic_mod.apply)(_per_agent(cfg, critic_params, x.shape[0]), x, a)


def td_target(reward: jax.Array, done: jax.Array, q_next: jax.Array, gamma: float) -> jax.Array:
    """y = r + gamma * (1 - done) * Q'(s', a'); no bootstrapping past the end of an episode."""
    return reward + gamma * (1.0 - done) * q_next


def soft_update(target: Any, online: Any, tau: float) -> Any:
    """theta' <- tau * theta + (1 - tau) * theta' for every leaf."""
    return jax.tree_util.tree_map(lambda t, o: tau * o + (1.0 - tau) * t, target, online)


def update(
    cfg: TrainConfig, learner: Learner, batch: Transition, axis_name: str | None = None
) -> tuple[Learner, dict]:
    """One gradient step of every critic and actor on a batch [N, ...]; returns learner, logs.
    With ``axis_name`` (``marl.maddpg_sharding``) the batch is this device's equal share and
    gradients and logs are averaged over devices: the step of one device on the union."""
    actor_tx, critic_tx = _optimisers(cfg)
    m = batch.obs.shape[1]

    # Critic: regress on the TD target computed with the target actors and critics.
    next_act = act(cfg, learner.actor_target, batch.next_obs)
    xn, an = critic_inputs(cfg, batch.next_obs, batch.next_cstate, next_act)
    q_next = q_values(cfg, learner.critic_target, xn, an)  # [M, N]
    y = jax.lax.stop_gradient(
        td_target(batch.reward.T * cfg.reward_scale, batch.done[None, :], q_next, cfg.gamma)
    )
    x, a = critic_inputs(cfg, batch.obs, batch.cstate, batch.action)

    def critic_loss(params: Any) -> tuple[jax.Array, jax.Array]:
        q = q_values(cfg, params, x, a)
        per_agent = jnp.mean((q - y) ** 2, axis=1)
        return jnp.sum(per_agent), jnp.mean(q)

    (c_loss, q_mean), c_grads = jax.value_and_grad(critic_loss, has_aux=True)(learner.critic)
    if axis_name is not None:
        c_loss, q_mean, c_grads = jax.lax.pmean((c_loss, q_mean, c_grads), axis_name)
    c_upd, critic_opt = jax.vmap(critic_tx.update)(c_grads, learner.critic_opt, learner.critic)
    critic = optax.apply_updates(learner.critic, c_upd)

    # Actor: ascend Q^m with agent m's action from pi^m and the others' actions from the batch.
    eye = jnp.eye(m, dtype=bool)[:, None, :, None]  # [M(critic), 1, M(agent), 1]

    def actor_loss(params: Any) -> jax.Array:
        mine = act(cfg, params, batch.obs)  # [N, M, 2]
        joint = jnp.where(eye, mine[None], batch.action[None])  # [M, N, M, 2]
        xa, aa = critic_inputs(cfg, batch.obs, batch.cstate, joint)
        return -jnp.sum(jnp.mean(q_values(cfg, critic, xa, aa), axis=1))

    a_loss, a_grads = jax.value_and_grad(actor_loss)(learner.actor)
    if axis_name is not None:
        a_loss, a_grads = jax.lax.pmean((a_loss, a_grads), axis_name)
    a_upd, actor_opt = jax.vmap(actor_tx.update)(a_grads, learner.actor_opt, learner.actor)
    actor = optax.apply_updates(learner.actor, a_upd)

    new = Learner(
        actor=actor,
        critic=critic,
        actor_target=soft_update(learner.actor_target, actor, cfg.tau),
        critic_target=soft_update(learner.critic_target, critic, cfg.tau),
        actor_opt=actor_opt,
        critic_opt=critic_opt,
        updates=learner.updates + 1,
    )
    logs = {"critic_loss": c_loss / m, "actor_loss": a_loss / m, "q_mean": q_mean}
    return new, logs
