"""Failure slots and failure episodes: the ways a fleet without memory wastes an episode.

A trained actor could end an episode badly in two ways that the ratio metrics only show as a
lower mean: it pushes against an obstacle or the area's edge slot after slot (every move
refused), or it parks where nothing is left while data it could still reach remains. Per MT and
slot:

* **stuck**: the move was refused (``info.collision``);
* **parked**: the MT had energy, moved less than a tenth of ``max_move``, collected nothing,
  was not recharging at a station, and some PoI with data left lay within the straight-line
  distance its energy could still pay for (anywhere, when moving is free).

An episode is a **failure episode** when some MT spent at least ``FAILURE_FRACTION`` of the
episode's slots stuck or parked. ``marl.evaluate`` counts these in every jitted rollout and
reports ``stuck_slots``, ``parked_slots`` (sums over MTs) and ``failure`` (0 or 1) per episode.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from chainsense.sim.params import WorldParams
from chainsense.sim.state import StepInfo, WorldState

#: share of the slots an MT must be stuck or parked for its episode to count as a failure
FAILURE_FRACTION = 0.05
#: what :func:`summary` adds to an episode's metrics
NAMES: tuple[str, ...] = ("stuck_slots", "parked_slots", "failure")
_STILL = 0.1  # a move shorter than this fraction of max_move is no move


def initial(params: WorldParams) -> Array:
    """Per-MT counters [M, 2] (stuck, parked) of a fresh episode."""
    return jnp.zeros((params.num_mts, 2), jnp.int32)


def count(counts: Array, before: WorldState, info: StepInfo, params: WorldParams) -> Array:
    """Counters after one slot that started in ``before`` and reported ``info``."""
    live = (before.energy > 0) & ~before.done
    stuck = live & info.collision
    reach = before.energy / params.move_cost if params.move_cost > 0 else jnp.inf
    dist = jnp.linalg.norm(before.poi_pos[None, :, :] - before.mt_pos[:, None, :], axis=-1)
    data_in_reach = jnp.any((before.poi_data[None, :] > 0) & (dist <= reach[..., None]), axis=1)
    parked = (
        live
        & ~info.collision
        & (info.moved < _STILL * params.max_move)
        & (info.collected <= 0)
        & (info.charged <= 0)  # recharging is no failure; standing at a station full is
        & data_in_reach
    )
    return counts + jnp.stack([stuck, parked], axis=-1).astype(jnp.int32)


def summary(counts: Array, params: WorldParams) -> dict[str, Array]:
    """The episode's failure metrics from its final counters."""
    per_mt = jnp.sum(counts, axis=-1)
    limit = FAILURE_FRACTION * params.num_slots
    return {
        "stuck_slots": jnp.sum(counts[:, 0]).astype(jnp.float32),
        "parked_slots": jnp.sum(counts[:, 1]).astype(jnp.float32),
        "failure": jnp.any(per_mt >= limit).astype(jnp.float32),
    }
