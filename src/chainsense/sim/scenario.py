"""The scenario mechanics of one slot: charging, data that keeps arriving, shared knowledge.

Each function is called by ``world.step`` only when its scenario is on (a static property of
the params), so the ``paper`` world compiles none of it. Every function leaves a done world as
it is.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from chainsense.sim.params import WorldParams
from chainsense.sim.state import WorldState

_F = jnp.float32


def at_station(pos: Array, stations: Array, p: WorldParams) -> Array:
    """[M] bool: the MT is within ``charge_radius`` of a charging station."""
    if stations.shape[0] == 0:
        return jnp.zeros(pos.shape[:1], bool)
    d = pos[:, None, :] - stations[None, :, :]
    return jnp.any(d[..., 0] ** 2 + d[..., 1] ** 2 <= p.charge_radius**2, axis=1)


def charge(pos: Array, energy: Array, state: WorldState, p: WorldParams) -> Array:
    """[M] energy each MT gains this slot: ``charge_rate`` at a station, up to its battery."""
    room = jnp.maximum(p.initial_energy - energy, 0.0)
    gain = jnp.minimum(p.charge_rate, room)
    return jnp.where(at_station(pos, state.stations, p) & ~state.done, gain, 0.0).astype(_F)


def generate(
    state: WorldState, per_poi: Array, data: Array, p: WorldParams
) -> tuple[Array, Array, Array, Array, Array]:
    """New data at the end of the slot: (data, generated, lost, birth, age_sum).

    Every PoI adds its rate into its buffer of ``buffer_capacity``; what does not fit is lost.
    The buffer is modelled as well mixed: a collection takes data of every age alike, so the
    age of what is collected in slot t is t minus the buffer's mean slot of birth, and new data
    (born in slot t) moves that mean.
    """
    live = ~state.done
    t = state.t.astype(_F)
    age = jnp.sum(per_poi * (t - state.birth))
    rate = jnp.where(live, state.poi_rate, 0.0)
    kept = jnp.minimum(rate, jnp.maximum(p.buffer_capacity - data, 0.0))
    new_data = data + kept
    mix = jnp.where(
        new_data > 0, (data * state.birth + kept * t) / jnp.where(new_data > 0, new_data, 1.0), t
    )
    birth = jnp.where(live, mix, state.birth)
    return (
        new_data,
        state.generated + rate,
        state.lost + (rate - kept),
        birth,
        state.age_sum + jnp.where(live, age, 0.0),
    )


def share(
    state: WorldState, taken: Array, data: Array, pos: Array, p: WorldParams
) -> tuple[Array, Array, Array]:
    """Each MT's knowledge after the slot: (belief [M,K] of the remaining data, shared ring,
    known_served: the PoIs it knows were served, where data keeps arriving).

    An MT subtracts its own collections at once and the other MTs' as the ledger delivers them:
    the same slot (``share_delay`` 0), ``share_delay`` slots later, or never (-1). Within
    ``observe_radius`` it sees the truth. Where no data arrives, a PoI whose believed data is
    below its initial data was served; where buffers refill, only the records tell.
    """
    own = taken  # [M,K]
    ring = state.shared
    if p.share_delay == 0:
        others = jnp.sum(own, axis=0)[None, :] - own
    elif p.share_delay > 0:
        slot = state.t % p.share_delay
        old = ring[slot]  # collections of slot t - share_delay
        others = jnp.sum(old, axis=0)[None, :] - old
        ring = jnp.where(state.done, ring, ring.at[slot].set(own))
    else:
        others = jnp.zeros_like(own)
    belief = jnp.maximum(state.belief - own - others, 0.0)
    d = state.poi_pos[None, :, :] - pos[:, None, :]
    seen = d[..., 0] ** 2 + d[..., 1] ** 2 <= p.observe_radius**2  # [M,K]
    belief = jnp.where(seen, data[None, :], belief)
    known = state.known_served
    if p.dynamic:
        known = jnp.where(state.done, known, known | (own > 0) | (others > 0))
    return jnp.where(state.done, state.belief, belief), ring, known
