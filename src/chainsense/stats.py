"""Summary statistics shared by every figure the project reports (latency percentiles)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]); NaN for no values.

    Nearest rank returns a latency that was actually observed, so the ledger benchmark, the
    availability experiment and ``chainsense run`` all report p50 / p99 the same way.
    """
    if not values:
        return math.nan
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))
    return s[k]
