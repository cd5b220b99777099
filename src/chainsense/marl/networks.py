"""Actor and critic networks (Flax), one set of parameters per MT stacked on a leading axis.

Actions live in a normalised form inside the learner: a displacement vector ``d`` in the open
unit disk, with direction theta = atan2(d_y, d_x) and length l = |d| * max_move. Unlike a raw
(theta, l) pair this has no wrap-around at theta = 2 pi, so critics see a smooth action space and
Gaussian exploration noise behaves the same in every direction.

Every per-agent function here is written for one agent; :func:`init_stacked` builds parameters
for all M agents at once with ``vmap`` over keys, and callers ``vmap`` the apply functions over
the stacked axis, so there is no Python loop over agents.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Params = dict


def squash_to_disk(z: jax.Array) -> jax.Array:
    """Map R^2 smoothly onto the open unit disk: z / sqrt(1 + |z|^2) (gradient never vanishes)."""
    return z / jnp.sqrt(1.0 + jnp.sum(z * z, axis=-1, keepdims=True))


def clip_to_disk(d: jax.Array) -> jax.Array:
    """Project vectors outside the unit disk radially onto its boundary (used after noise)."""
    norm = jnp.sqrt(jnp.sum(d * d, axis=-1, keepdims=True))
    return d / jnp.maximum(norm, 1.0)


def to_physical(d: jax.Array, max_move: float) -> jax.Array:
    """Normalised displacements [..., 2] -> physical actions [..., 2] = (theta in [0, 2 pi), l)."""
    theta = jnp.mod(jnp.arctan2(d[..., 1], d[..., 0]), 2.0 * jnp.pi)
    length = jnp.clip(jnp.sqrt(jnp.sum(d * d, axis=-1)), 0.0, 1.0) * max_move
    return jnp.stack([theta, length], axis=-1)


def from_physical(actions: jax.Array, max_move: float) -> jax.Array:
    """Physical actions (theta, l) -> normalised displacements; inverse of :func:`to_physical`."""
    r = jnp.clip(actions[..., 1] / max_move, 0.0, 1.0)
    return jnp.stack([r * jnp.cos(actions[..., 0]), r * jnp.sin(actions[..., 0])], axis=-1)


class MLP(nn.Module):
    """Plain ReLU MLP with LayerNorm after each hidden layer (stabilises DDPG critics)."""

    hidden: Sequence[int]
    out: int
    out_scale: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden:
            x = nn.Dense(width)(x)
            x = nn.LayerNorm()(x)
            x = nn.relu(x)
        init = nn.initializers.variance_scaling(self.out_scale, "fan_in", "uniform")
        return nn.Dense(self.out, kernel_init=init)(x)


class Actor(nn.Module):
    """pi^m(o^m): observation -> normalised displacement in the unit disk."""

    hidden: Sequence[int]

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return squash_to_disk(MLP(self.hidden, 2, out_scale=0.01)(obs))


class Critic(nn.Module):
    """Q^m(x, a): critic input (global state or own observation) and actions -> scalar value."""

    hidden: Sequence[int]

    @nn.compact
    def __call__(self, x: jax.Array, actions: jax.Array) -> jax.Array:
        h = jnp.concatenate([x, actions.reshape(*actions.shape[:-2], -1)], axis=-1)
        return MLP(self.hidden, 1, out_scale=0.01)(h)[..., 0]


def init_stacked(module: nn.Module, key: jax.Array, num_agents: int, *example: jax.Array) -> Params:
    """Initialise ``num_agents`` independent parameter sets stacked on a leading axis."""
    keys = jax.random.split(key, num_agents)
    return jax.vmap(lambda k: module.init(k, *example))(keys)
