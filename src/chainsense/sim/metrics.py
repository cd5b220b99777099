"""Episode metrics of the crowdsensing world (pure JAX, vmappable over a batch of states).

0/0 conventions, chosen so that a world where nothing happened scores 0 rather than NaN:

* Jain's index of an all-zero visit vector is 0 (no PoI served yet: nothing is fair about it).
* data collection ratio is 0 when the map holds no data at all.
* energy efficiency = fairness * collection ratio / energy usage ratio is 0 when no energy was
  spent (then nothing was collected either, because sensing costs energy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax.numpy as jnp
from jax import Array

from chainsense.sim.params import WorldParams

if TYPE_CHECKING:
    from chainsense.sim.world import WorldState

METRIC_NAMES: tuple[str, ...] = (
    "data_collection_ratio",
    "energy_usage_ratio",
    "fairness",
    "energy_efficiency",
    "collisions",
    "data_collected",
    "slots",
)
#: the four metrics of the paper's figures (tables and sweep plots show these)
PAPER_METRICS: tuple[str, ...] = METRIC_NAMES[:4]


def jain_fairness(visits: Array) -> Array:
    """Jain's index (sum h)^2 / (K * sum h^2) over the last axis; 0 when every h is 0."""
    h = jnp.asarray(visits).astype(jnp.float32)
    s = jnp.sum(h, axis=-1)
    s2 = jnp.sum(h * h, axis=-1)
    k = h.shape[-1]
    return jnp.where(s2 > 0, (s * s) / (k * jnp.where(s2 > 0, s2, 1.0)), 0.0)


def _safe_div(num: Array, den: Array) -> Array:
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), 0.0)


def episode_metrics(state: WorldState, params: WorldParams) -> dict[str, Array]:
    """The paper's metrics of a (final) state, as float32 scalars keyed by ``METRIC_NAMES``.

    data_collection_ratio: data collected / total initial data.
    energy_usage_ratio: energy spent / (M * initial_energy).
    fairness: Jain's index omega_T of the visit counts h_T(k).
    energy_efficiency: fairness * collection ratio / energy usage ratio.
    collisions: refused moves summed over MTs. data_collected: absolute amount. slots: t.
    """
    total = jnp.sum(state.poi_init)
    taken = jnp.sum(state.poi_init - state.poi_data)
    dcr = _safe_div(taken, total)
    budget = params.num_mts * params.initial_energy
    eur = jnp.sum(params.initial_energy - state.energy) / budget
    fair = jain_fairness(state.visits)
    return {
        "data_collection_ratio": dcr,
        "energy_usage_ratio": eur,
        "fairness": fair,
        "energy_efficiency": _safe_div(fair * dcr, eur),
        "collisions": jnp.sum(state.collisions).astype(jnp.float32),
        "data_collected": taken,
        "slots": state.t.astype(jnp.float32),
    }
