"""What a learned MT sees: the world's observation plus an optional proximity sensor.

Neither world observation shows obstacles, so a learned actor cannot tell a cleared area from
an obstacle and keeps walking into obstacles it cannot see (the move is refused, the
observation stays the same, the same action follows). The proximity sensor is a bumper ring an
MT can carry: for ``sensor_headings`` evenly spaced headings and two lengths (half and full
``max_move``), 1.0 when that straight move would hit an obstacle or leave the area, else 0.0.
It is local (what the MT could sense from where it stands) and is computed from the MT's own
position and the obstacle geometry with the world's own move test (``world.move_blocked``).

Memory (``cfg.memory``): a memoryless actor that is refused a move sees the same observation
again and repeats the move; with memory the observation also holds the MT's last action (its
unit-disk displacement) and whether that move was refused, so the actor can tell "I just hit
something" apart from "nothing happened yet". The memory lives outside the world, in the
training loop and in the evaluation rollout (``marl.memory``): [M, 3] per world.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import Array

from chainsense.marl.config import TrainConfig
from chainsense.sim.geometry import move_blocked
from chainsense.sim.params import WorldParams, obs_dim
from chainsense.sim.state import WorldState

_LENGTHS = (0.5, 1.0)  # fractions of max_move probed per heading
#: last action (2) and refused-move flag (1)
MEMORY_DIM = 3


def learner_obs_dim(cfg: TrainConfig, params: WorldParams) -> int:
    """Length of one MT's learner observation."""
    memory = MEMORY_DIM if cfg.memory else 0
    return obs_dim(params) + len(_LENGTHS) * cfg.sensor_headings + memory


def initial_memory(num_mts: int) -> Array:
    """Memory of a fresh episode: no last action, nothing refused."""
    return jnp.zeros((num_mts, MEMORY_DIM), jnp.float32)


def remember(disk_action: Array, refused: Array) -> Array:
    """[..., M, 3] memory after a slot: the unit-disk action taken and the refused-move flag."""
    return jnp.concatenate([disk_action, refused.astype(jnp.float32)[..., None]], axis=-1)


def proximity(state: WorldState, params: WorldParams, headings: int) -> Array:
    """[M, 2 * headings] blocked flags of one world (see the module docstring)."""
    ang = jnp.arange(headings, dtype=jnp.float32) * (2.0 * math.pi / headings)
    unit = jnp.stack([jnp.cos(ang), jnp.sin(ang)], axis=-1)  # [H,2]
    lengths = jnp.array(_LENGTHS, jnp.float32) * params.max_move
    delta = (lengths[:, None, None] * unit[None]).reshape(-1, 2)  # [2H,2]
    m = state.mt_pos.shape[0]
    start = jnp.repeat(state.mt_pos, delta.shape[0], axis=0)  # [M*2H,2]
    d = jnp.tile(delta, (m, 1))
    hit = move_blocked(start, d, state.obstacles, params)
    return hit.astype(jnp.float32).reshape(m, -1)


def learner_obs(
    cfg: TrainConfig, state: WorldState, obs: Array, params: WorldParams, memory: Array
) -> Array:
    """One world's learner observation [M, learner_obs_dim] from its state, world obs and memory
    ([M, MEMORY_DIM]; ignored unless ``cfg.memory``)."""
    parts = [obs]
    if cfg.sensor_headings > 0:
        parts.append(proximity(state, params, cfg.sensor_headings))
    if cfg.memory:
        parts.append(memory)
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=-1)
