"""Episode metrics of the crowdsensing world (pure JAX, vmappable over a batch of states).

0/0 conventions, chosen so that a world where nothing happened scores 0 rather than NaN:

* Jain's index of an all-zero visit vector is 0 (no PoI served yet: nothing is fair about it).
* data collection ratio is 0 when the map holds no data at all.
* energy efficiency = fairness * collection ratio / energy usage ratio is 0 when no energy was
  spent (then nothing was collected either, because sensing costs energy).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from chainsense.sim.params import WorldParams
from chainsense.sim.state import WorldState

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
#: what the charging and the data-that-keeps-arriving scenarios add (0 in other worlds)
SCENARIO_METRICS: tuple[str, ...] = ("energy_charged", "data_generated", "data_lost", "mean_age")
ALL_METRICS: tuple[str, ...] = METRIC_NAMES + SCENARIO_METRICS


def metric_names(params: WorldParams) -> tuple[str, ...]:
    """The metrics worth showing for a world: the paper's, plus its scenarios' own."""
    extra = ("energy_charged",) if params.charging else ()
    if params.dynamic:
        extra += ("data_generated", "data_lost", "mean_age")
    return METRIC_NAMES + extra


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

    data_collection_ratio: data collected / all data there was (the initial data plus, when it
    keeps arriving, everything generated: then it is collected / generated).
    energy_usage_ratio: energy spent (recharged energy included) / (M * initial_energy), the
    paper's consumption over the fleet's initial energy. With charging it can exceed 1; energy
    charged and not spent is no cost, and charging is never a gain in itself (counting charged
    energy in the denominator rewarded topping up for its own sake).
    fairness: Jain's index omega_T of the visit counts h_T(k).
    energy_efficiency: fairness * collection ratio / energy usage ratio.
    collisions: refused moves summed over MTs. data_collected: absolute amount. slots: t.
    energy_charged: energy recharged at stations. data_generated / data_lost: data generated
    beyond the initial data, and lost to full buffers. mean_age: mean age (slots since it was
    generated) of the data collected.
    """
    if params.dynamic:
        total = jnp.sum(state.poi_init) + jnp.sum(state.generated)
        taken = total - jnp.sum(state.lost) - jnp.sum(state.poi_data)
    else:
        total = jnp.sum(state.poi_init)
        taken = jnp.sum(state.poi_init - state.poi_data)
    dcr = _safe_div(taken, total)
    charged = jnp.sum(state.charged)
    budget = params.num_mts * params.initial_energy
    eur = (jnp.sum(params.initial_energy - state.energy) + charged) / budget
    fair = jain_fairness(state.visits)
    zero = jnp.zeros((), jnp.float32)
    return {
        "data_collection_ratio": dcr,
        "energy_usage_ratio": eur,
        "fairness": fair,
        "energy_efficiency": _safe_div(fair * dcr, eur),
        "collisions": jnp.sum(state.collisions).astype(jnp.float32),
        "data_collected": taken,
        "slots": state.t.astype(jnp.float32),
        "energy_charged": charged,
        "data_generated": jnp.sum(state.generated) if params.dynamic else zero,
        "data_lost": jnp.sum(state.lost) if params.dynamic else zero,
        "mean_age": _safe_div(state.age_sum, taken) if params.dynamic else zero,
    }
