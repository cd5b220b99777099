"""The fleet-wide terms greedy's target score can add to its two per-MT weights.

A plain frozen dataclass (no JAX): ``TrainConfig`` builds one for the targets decoding, and the
scoring itself lives with greedy's rule (``policies.weighted_targets``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScoreTerms:
    """The fleet-wide terms greedy's target score can add to its two per-MT weights (static
    numbers: a term at its neutral value is not even computed, so greedy stays bit for bit).

    ``backlog`` times a cluster's data beyond one slot's quota (what staying on would give);
    ``jain`` times what serving its PoIs adds to Jain's index (``policies.jain_gain``; it reads the
    true visit counts, so not under partial observation); ``isolation``: the score is divided by
    the number of PoIs with data within one move of the cluster's sensing disk
    (``policies.neighbours_with_data``) to that power, so a PoI with few others left round it is
    drained before the MT leaves (else it costs a trip of its own later); ``territory``: a
    cluster another MT is nearer to is worth that factor (1 ignores the others; 0.01 leaves it
    to them), so the MTs split the area instead of crossing paths; ``grid``: the spacing of a
    lattice of standing points within one move of each MT, offered besides the PoIs
    (``marl.standing_grid``; 0 offers the PoIs only, as greedy does); ``travel``: a place
    ``d`` away is worth ``exp(-travel * d)`` of its score, so that an MT does not hop to a
    slightly better disk within one move (greedy's slot count prices every such hop at 0),
    while moving costs energy (docs/learning.md, twentieth part)."""

    backlog: float = 0.0
    jain: float = 0.0
    isolation: float = 0.0
    territory: float = 1.0
    grid: float = 0.0
    travel: float = 0.0


#: greedy's own score: no term beyond its two weights
GREEDY_TERMS = ScoreTerms()

#: the highest ``backlog`` accepted (far beyond any weight worth trying)
MAX_BACKLOG_WEIGHT = 100.0
#: the highest ``jain`` accepted (a visit of shortfall worth 10 units of data: far beyond any
#: weight worth trying, which are tenths on `dynamic`)
MAX_JAIN_WEIGHT = 10.0
#: the highest ``isolation`` accepted (a PoI alone worth 2^20 times one among 2 others: far
#: beyond any weight worth trying, which are single figures on `paper`)
MAX_ISOLATION_WEIGHT = 20.0
#: the lowest ``territory`` accepted (a cluster another MT is nearer to still worth a
#: thousandth: 0 would rank it below clusters with no data at all)
MIN_TERRITORY_WEIGHT = 0.001
#: the highest ``travel`` accepted (a place one unit away worth e^-10 of one here: far beyond
#: any weight worth trying, which are tenths on `charging`)
MAX_TRAVEL_WEIGHT = 10.0
#: every weight's accepted range, by name; its setting is ``TrainConfig.<name>_weight`` (the
#: grid's spacing is ``TrainConfig.target_grid``, checked by ``standing_grid.grid_problem``)
TERM_BOUNDS: dict[str, tuple[float, float]] = {
    "backlog": (0.0, MAX_BACKLOG_WEIGHT),
    "jain": (0.0, MAX_JAIN_WEIGHT),
    "isolation": (0.0, MAX_ISOLATION_WEIGHT),
    "territory": (MIN_TERRITORY_WEIGHT, 1.0),
    "travel": (0.0, MAX_TRAVEL_WEIGHT),
}
