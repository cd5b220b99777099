"""``chainsense ledger demo``: the whole protocol on the embedded chain with synthetic events."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from typing import Any

from chainsense.ledger.session import LedgerSession


def synthetic_events(
    n: int, mts: int, *, pois: int = 50, seed: int = 0
) -> list[tuple[int, int, int, float, float, float]]:
    """``n`` collection events ``(mt, poi, slot, amount, x, y)``, round robin over ``mts`` MTs
    (each MT's slots count up), on a 16x16 map; seeded, so runs compare."""
    rng = random.Random(seed)
    return [
        (
            i % mts,
            rng.randrange(pois),
            i // mts,
            rng.uniform(0, 5),
            rng.uniform(0, 16),
            rng.uniform(0, 16),
        )
        for i in range(n)
    ]


def run_demo(
    records: int, mts: int, batch: bool, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Submit ``records`` synthetic collection events from ``mts`` MTs, verify, summarise."""
    events = synthetic_events(records, mts)
    with tempfile.TemporaryDirectory(prefix="chainsense-demo-") as tmp:
        session = LedgerSession(
            mts, tmp, mode="batch" if batch else "record", batch_size=min(records, 5000)
        )
        try:
            report = session.submit_events(events, progress)
            check = session.verify()
        finally:
            session.close()
    return {
        "mode": report.mode,
        "contract": session.ledger.address,
        "records confirmed": f"{report.confirmed}/{report.records}",
        "transactions": report.transactions,
        "gas per record": f"{report.gas_per_record:,.0f}",
        "throughput": f"{report.records_per_s:,.1f} records/s",
        "verified": f"{check.ok}/{check.checked}",
    }
