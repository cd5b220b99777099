"""Replay buffer that lives on the device as a pytree of fixed-size arrays.

Pure functions over an explicit :class:`Buffer` so that adding and sampling happen inside the
jit-compiled training scan without any host round trip. Storage is a ring: once full, the oldest
transitions are overwritten.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from chainsense.errors import ConfigError


@struct.dataclass
class Buffer:
    """Ring storage: ``data`` leaves have a leading ``capacity`` axis; ``ptr`` is the next slot."""

    data: Any
    ptr: jax.Array
    size: jax.Array

    @property
    def capacity(self) -> int:
        """Number of transitions the buffer holds when full."""
        return int(jax.tree_util.tree_leaves(self.data)[0].shape[0])


def init(example: Any, capacity: int) -> Buffer:
    """An empty buffer for transitions shaped like ``example`` (one transition, no batch axis)."""
    if capacity <= 0:
        raise ConfigError("buffer_size", f"must be positive, got {capacity}")
    data = jax.tree_util.tree_map(
        lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), example
    )
    return Buffer(data=data, ptr=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))


def add(buf: Buffer, batch: Any) -> Buffer:
    """Append a batch of transitions (leading axis n <= capacity), wrapping around at the end."""
    cap = buf.capacity
    n = jax.tree_util.tree_leaves(batch)[0].shape[0]
    if n > cap:
        raise ConfigError("buffer_size", f"must be at least the batch added per step ({n})")
    idx = (buf.ptr + jnp.arange(n, dtype=jnp.int32)) % cap
    data = jax.tree_util.tree_map(lambda d, b: d.at[idx].set(b.astype(d.dtype)), buf.data, batch)
    return Buffer(data=data, ptr=(buf.ptr + n) % cap, size=jnp.minimum(buf.size + n, cap))


def sample(buf: Buffer, key: jax.Array, batch_size: int) -> Any:
    """Draw ``batch_size`` transitions uniformly (with replacement) from the filled part."""
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buf.size, 1))
    return jax.tree_util.tree_map(lambda d: d[idx], buf.data)
