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
    to them), so the MTs split the area instead of crossing paths."""

    backlog: float = 0.0
    jain: float = 0.0
    isolation: float = 0.0
    territory: float = 1.0


#: greedy's own score: no term beyond its two weights
GREEDY_TERMS = ScoreTerms()
