"""``action_space = "targets"``: the actor weighs greedy's choice of target, greedy's motion moves.

With the paper's action space (``"move"``) an actor picks each slot's heading and distance, so it
must learn routing round obstacles and which of a thousand PoIs to head for, from a coarse data
map. Greedy (``policies.GreedyPolicy``) does both by rule, but its rule is fixed: a PoI cluster is
worth its collectable quota, unvisited PoIs counted twice, over the slots needed to reach it. On
the worlds where energy binds (``energy``, ``large``) that weighting leaves fairness unused:
counting unvisited PoIs 11 times (weight 10) instead of twice makes greedy itself 1.2x more
efficient.

Here the actor's unit-disk output ``d`` sets, per MT and slot, the two weights of that rule:
``fairness_weight = 10 ** (FAIR_DECADES * d_x)`` (0.01 to 100) and ``distance_power = 1 + d_y``
below 1 (down to 0), ``1 + (max_distance_power - 1) d_y`` above (up to ``max_distance_power``,
``TrainConfig``, 2 by default; with ``square_weights`` the disk is first stretched onto a
square, so that both weights can be at an end of their range at once), and
``policies.weighted_goals`` claims the targets and drives the MTs there (round obstacles; to a
station when low, where MTs can recharge, by the fleet's ``recharge_rule``). ``backlog_weight``
(``TrainConfig``, fixed) adds a third term, the cluster's data beyond one slot's quota, which
the quota alone cannot see, and ``jain_weight`` a fourth, what serving the cluster adds to
Jain's index once every PoI has been visited (``policies.jain_gain``); ``isolation_weight`` and
``territory_weight`` favour PoIs that would be left stranded and PoIs no other MT is nearer to
(``score_terms.ScoreTerms``). ``d = 0`` is greedy's own
rule, so a fresh actor starts at greedy and learns when to weigh otherwise: late or early in
the episode, with much or little energy left, near or far from the others.

The decoding reads the full world state, as greedy does: these fleets are compared with greedy
(and with greedy at its best fixed weights, ``registry`` name ``greedy-fair``). Under partial
observation it reads instead each MT's own belief of the remaining data
(``policies.believed_goals``: the static site, the MTs' positions and what the MT saw or the
ledger shared), so the fleets there are compared with ``greedy-belief``, greedy's rule on the
same belief, as well as with ``greedy`` and ``greedy-local``.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from chainsense.marl.config import TrainConfig
from chainsense.marl.policies import believed_goals
from chainsense.sim.params import WorldParams
from chainsense.sim.state import WorldState

#: decades of fairness weight either side of greedy's 1 that the actor's first output spans
FAIR_DECADES = 2.0


def score_weights(disk: Array, cfg: TrainConfig) -> tuple[Array, Array]:
    """Fairness weights and distance powers [...] from unit-disk actions [..., 2], under
    ``cfg``'s ``max_distance_power`` and, with ``square_weights``, the disk first stretched onto
    the square (:func:`disk_to_square`)."""
    d = disk_to_square(disk) if cfg.square_weights else disk
    d_y = d[..., 1]
    power = 1.0 + jnp.where(d_y > 0, (cfg.max_distance_power - 1.0) * d_y, d_y)
    return 10.0 ** (FAIR_DECADES * d[..., 0]), power


def disk_to_square(disk: Array) -> Array:
    """The unit disk [..., 2] onto the square [-1, 1]^2 (Fong's elliptical grid mapping): the
    centre stays, the circle goes onto the square's edge, so both weights can be at an end of
    their range at once (on the disk, d_x = -1 forces d_y = 0)."""
    x, y = disk[..., 0], disk[..., 1]
    r2 = 2.0 * jnp.sqrt(2.0)

    def half(a: Array, b: Array) -> Array:
        common = 2.0 + a**2 - b**2
        return 0.5 * (
            jnp.sqrt(jnp.maximum(common + r2 * a, 0.0))
            - jnp.sqrt(jnp.maximum(common - r2 * a, 0.0))
        )

    return jnp.clip(jnp.stack([half(x, y), half(y, x)], axis=-1), -1.0, 1.0)


def decode(state: WorldState, disk: Array, params: WorldParams, cfg: TrainConfig) -> Array:
    """Physical actions [M,2] of one world's MTs from their unit-disk actions [M,2]."""
    fairness_weight, distance_power = score_weights(disk, cfg)
    return believed_goals(
        state,
        params,
        fairness_weight,
        distance_power,
        cfg.score_terms,
        cfg.recharge_rule,
    )
