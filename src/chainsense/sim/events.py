"""Collection events: what the world hands to the ledger, one per (slot, MT, PoI) harvest."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CollectionEvent:
    """One nonzero entry of ``StepInfo.collected_per_poi``: MT ``mt`` took ``amount`` from PoI
    ``poi`` in slot ``slot``, standing at ``(x, y)`` after its move. The MT signs and the ledger
    stores exactly this."""

    slot: int
    mt: int
    poi: int
    amount: float
    x: float
    y: float


def collection_events(per_poi: np.ndarray, positions: np.ndarray) -> list[CollectionEvent]:
    """Every event of an episode from its ``collected_per_poi`` trace [T,M,K] and the MT positions
    [T+1,M,2] (row 0 is the start), in slot, then MT, then PoI order."""
    slots, mts, pois = np.nonzero(per_poi)
    return [
        CollectionEvent(
            int(t), int(m), int(k), float(per_poi[t, m, k]), *map(float, positions[t + 1, m])
        )
        for t, m, k in zip(slots, mts, pois, strict=True)
    ]


def synthetic_events(n: int, mts: int, *, pois: int = 50, seed: int = 0) -> list[CollectionEvent]:
    """``n`` made-up events for ledger demos and benchmarks: round robin over ``mts`` MTs (each
    MT's slots count up), random PoIs, amounts and positions on a 16 x 16 area; seeded."""
    rng = random.Random(seed)
    return [
        CollectionEvent(
            slot=i // mts,
            mt=i % mts,
            poi=rng.randrange(pois),
            amount=rng.uniform(0, 5),
            x=rng.uniform(0, 16),
            y=rng.uniform(0, 16),
        )
        for i in range(n)
    ]
