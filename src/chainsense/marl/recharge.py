"""When an MT drives back to a charging station, and how long it stays: the recharge rule.

One rule serves greedy, greedy-local, the targets decoding (``marl.target_actions``) and the
recharge reflex on top of a steering fleet, so that a fleet and the heuristic it is measured
against recharge alike. Greedy's rule (:data:`GREEDY_RULE`) goes back once the battery would
barely take the MT to the nearest station and charges to 90%. It ignores the clock: on
`charging` greedy ends an episode with about 13 units in each battery, some 50 MT-slots spent
charging energy that is never used while time, not energy, binds. :data:`ENDGAME_RULE` charges
only what the slots left can spend (``per_slot_left``): an MT at a station leaves once it holds
that much per slot left, and one that holds it already does not drive back. :data:`EARLY_RULE`
also goes back once the battery is below 40% (``below``), rather than from wherever it ran low
(docs/learning.md, twentieth part).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
from jax import Array

from chainsense.config import check_number
from chainsense.marl.navigation import head_for
from chainsense.sim.params import WorldParams
from chainsense.sim.state import WorldState

#: the most energy per slot left a rule may keep (a battery holds far less per slot on every preset)
MAX_PER_SLOT_LEFT = 100.0
#: the constants a fleet's config sets, as ``TrainConfig.charge_<name>`` (``reserve`` is fixed)
CONFIG_CONSTANTS = ("full", "per_slot_left", "below")
#: every constant's accepted range, by name; the :data:`CONFIG_CONSTANTS` are checked by the
#: same ranges in ``TrainConfig``
RULE_BOUNDS: dict[str, tuple[float, float]] = {
    "reserve": (1.0, 10.0),
    "full": (0.05, 1.0),
    "per_slot_left": (0.0, MAX_PER_SLOT_LEFT),
    "below": (0.0, 1.0),
}


@dataclass(frozen=True)
class RechargeRule:
    """A recharge rule's constants (hashable: a static field of a jitted policy).

    ``reserve``: energy kept for the way to a station, as a multiple of its straight-line cost;
    ``full``: the fraction of the battery an MT at a station charges to; ``per_slot_left``: with
    it above 0, an MT also stops charging once it holds that much energy per slot left in the
    episode, and goes to a station only while it holds less than that per slot left after the
    trip (0: the clock is ignored, greedy's rule); ``below``: an MT also goes back once it holds
    less than that fraction of its battery (0: only when the way back needs it, greedy's rule;
    the clock still rules with ``per_slot_left``).
    """

    reserve: float = 1.3
    full: float = 0.9
    per_slot_left: float = 0.0
    below: float = 0.0

    def __post_init__(self) -> None:
        for name, (low, high) in RULE_BOUNDS.items():
            check_number(name, getattr(self, name), low, high)


#: greedy's own rule: back with a 30% margin over the straight way, charge to 90%
GREEDY_RULE = RechargeRule()
#: the clock-aware rule: charge to full, but never more than 0.4 per slot left (the best of a
#: grid on `charging`'s 32 validation maps, 1.03x greedy's efficiency with greedy's targets)
ENDGAME_RULE = RechargeRule(full=1.0, per_slot_left=0.4)
#: the endgame rule that also goes back below 40% of the battery (docs/learning.md, twentieth
#: part: with the lattice and the travel price, the best of a grid on `charging`)
EARLY_RULE = RechargeRule(full=1.0, per_slot_left=0.4, below=0.4)


def recharge_need(
    pos: Array, energy: Array, stations: Array, t: Array, p: WorldParams, rule: RechargeRule
) -> tuple[Array, Array, Array]:
    """[M] whether each MT must go to a station now, [M] whether it must stay at the one it is
    at, and [M,2] the nearest station it knows ([S,2] shared by all, or [M,S,2] per MT), at
    slot ``t`` under ``rule``."""
    known = jnp.broadcast_to(stations, (pos.shape[0], *stations.shape[-2:]))  # [M,S,2]
    d = known - pos[:, None, :]
    dist = jnp.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2)
    nearest = jnp.argmin(dist, axis=1)
    to_station = jnp.min(dist, axis=1)
    # sensing is automatic and costs far more than moving: keep enough for about two PoI quotas
    # sensed per unit of the way back, or an MT drains its battery on the way and is stranded
    per_unit = p.move_cost + 2.0 * p.collect_fraction * p.sense_cost / p.max_move
    need = per_unit * (rule.reserve * to_station + 2.0 * p.max_move) + 0.05 * p.initial_energy
    go = energy < need
    if rule.below > 0:  # back at a share of the battery, not from wherever it ran empty
        go = go | (energy < rule.below * p.initial_energy)
    there = to_station <= p.charge_radius
    cap = rule.full * p.initial_energy
    if rule.per_slot_left > 0:
        slots_left = (p.num_slots - t).astype(jnp.float32)
        trip = jnp.ceil(to_station / p.max_move)
        go = go & (energy < rule.per_slot_left * jnp.maximum(slots_left - trip, 0.0))
        cap = jnp.minimum(cap, rule.per_slot_left * slots_left)
    stay = there & (energy < cap)  # tops up when passing by too
    station = jnp.take_along_axis(known, nearest[:, None, None], axis=1)[:, 0]
    return go & ~there, stay, station


def recharge_goal(
    pos: Array,
    energy: Array,
    stations: Array,
    t: Array,
    p: WorldParams,
    goal: Array,
    idle: Array,
    rule: RechargeRule = GREEDY_RULE,
) -> tuple[Array, Array]:
    """Where each MT heads when energy matters: the nearest station it knows once ``rule`` sends
    it there, else ``goal``; an MT charging at a station stays (see :func:`recharge_need`)."""
    go, stay, station = recharge_need(pos, energy, stations, t, p, rule)
    return jnp.where(go[:, None], station, goal), jnp.where(go, False, idle | stay)


def recharge_reflex(
    state: WorldState, p: WorldParams, actions: Array, rule: RechargeRule = GREEDY_RULE
) -> Array:
    """``actions`` [M,2] with ``rule`` on top (``TrainConfig.recharge_reflex``): an MT the rule
    sends to a station drives there, and one it keeps at a station stays; every other MT keeps
    its own action."""
    go, stay, station = recharge_need(state.mt_pos, state.energy, state.stations, state.t, p, rule)
    forced = head_for(state, station, stay, p)
    return jnp.where((go | stay)[:, None], forced, actions)
