"""Policies that remember: the memory a rollout threads from one slot to the next.

Every policy answers ``act(key, obs, state, params)`` from the present alone. A learned fleet
trained with ``memory`` (``marl.features``) also needs what it did last slot and whether the move
was refused; the world does not keep either, so the rollout carries it. The functions here let
a rollout treat both kinds alike: a policy without memory carries an empty array. A
recurrent policy (a GRU actor) also changes its memory while acting (its next hidden state
depends on what it sees): a rollout asks :func:`act_and_carry` for both.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import jax.numpy as jnp
from jax import Array

from chainsense.sim.params import WorldParams
from chainsense.sim.state import StepInfo, WorldState


@runtime_checkable
class MemoryPolicy(Protocol):
    """A policy whose action also depends on a memory the rollout carries."""

    def initial_memory(self, params: WorldParams) -> Array:
        """Memory at the start of an episode."""
        ...

    def act_with_memory(
        self, key: Array, obs: Array, state: WorldState, params: WorldParams, memory: Array
    ) -> Array:
        """Physical actions [M,2] from the present and the memory."""
        ...

    def remember(self, memory: Array, actions: Array, info: StepInfo, params: WorldParams) -> Array:
        """Memory after a slot in which ``actions`` were taken and ``info`` happened."""
        ...


@runtime_checkable
class RecurrentPolicy(MemoryPolicy, Protocol):
    """A policy with memory that also updates the memory while acting (a GRU actor)."""

    def act_recurrent(
        self, key: Array, obs: Array, state: WorldState, params: WorldParams, memory: Array
    ) -> tuple[Array, Array]:
        """Physical actions [M,2] and the memory after acting (before ``remember``)."""
        ...


def initial(policy: object, params: WorldParams) -> Array:
    """The policy's initial memory, or an empty array for a policy without memory."""
    if isinstance(policy, MemoryPolicy):
        return policy.initial_memory(params)
    return jnp.zeros((0,), jnp.float32)


def act(
    policy: object, key: Array, obs: Array, state: WorldState, params: WorldParams, memory: Array
) -> Array:
    """Physical actions [M,2] of any policy (with its memory where it has one)."""
    if isinstance(policy, MemoryPolicy):
        return policy.act_with_memory(key, obs, state, params, memory)
    return policy.act(key, obs, state, params)  # type: ignore[attr-defined]


def act_and_carry(
    policy: object, key: Array, obs: Array, state: WorldState, params: WorldParams, memory: Array
) -> tuple[Array, Array]:
    """Physical actions [M,2] and the memory after acting (unchanged unless recurrent)."""
    if isinstance(policy, RecurrentPolicy):
        return policy.act_recurrent(key, obs, state, params, memory)
    return act(policy, key, obs, state, params, memory), memory


def update(
    policy: object, memory: Array, actions: Array, info: StepInfo, params: WorldParams
) -> Array:
    """Memory after a slot (unchanged for a policy without memory)."""
    if isinstance(policy, MemoryPolicy):
        return policy.remember(memory, actions, info, params)
    return memory
