"""Slot-range queries (`Ledger.records_in_slots`): one `eth_getLogs` call per 1000 slots (the
slots OR-ed in the log's slot topic), answering exactly the records submitted in range."""

from __future__ import annotations

import math
from typing import Any

import pytest

from chainsense.errors import ChainsenseError
from chainsense.ledger.contract import MAX_SLOT_SPAN, TOPICS_PER_CALL, Ledger
from chainsense.ledger.records import Record
from test_ledger_support import World, make_world

TOP = 2**32 - 1
# slot -> records stored there: both ends of the slot space, chunk edges (1000-slot log
# queries; 1024-slot count calls before), the edges of a max-span range, a slot over 100 records
LAYOUT = {
    0: 2,
    1: 1,
    5: 101,
    1023: 1,
    1024: 1,
    2047: 1,
    2048: 2,
    99_999: 1,
    100_000: 1,
    TOP - 100_000: 1,
    TOP - 99_999: 1,
    TOP - 1024: 1,
    TOP - 1023: 1,
    TOP - 1: 1,
    TOP: 2,
}


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> World:
    world = make_world(tmp_path_factory.mktemp("slots"))
    nonces = [0] * len(world.mts)
    sent = []
    i = 0
    for slot, n in LAYOUT.items():
        for _ in range(n):
            mt = i % len(world.mts)
            rec, sig = world.certified(mt=mt, nonce=nonces[mt], slot=slot, poi=i % 7, reading=i)
            nonces[mt] += 1
            sent.append((rec, world.ledger.send_submit(rec, sig, world.mts[mt])))
            i += 1
    world.submitted = [  # type: ignore[attr-defined]
        (world.ledger.finish_submit(rec, tx).record_id, rec) for rec, tx in sent
    ]
    return world


def expected(world: World, first: int, last: int) -> list[tuple[int, Record]]:
    """Independent answer: what was submitted in range, by slot then submission order."""
    submitted = world.submitted  # type: ignore[attr-defined]
    found = [(rid, rec) for rid, rec in submitted if first <= rec.slot <= last]
    return sorted(found, key=lambda item: (item[1].slot, item[0]))


def answer(world: World, first: int, last: int) -> list[tuple[int, Record]]:
    return [(s.record_id, s.record) for s in world.ledger.records_in_slots(first, last)]


class LogCounter:
    """Counts ``ledger.get_logs`` calls; fails once more than ``limit`` are made."""

    def __init__(self, ledger: Ledger, monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
        self.calls = 0
        orig = ledger.get_logs

        def get_logs(flt: dict[str, Any]) -> list[Any]:
            self.calls += 1
            assert self.calls <= limit, f"more than {limit} eth_getLogs calls"
            return orig(flt)

        monkeypatch.setattr(ledger, "get_logs", get_logs)


SMALL = [
    (0, 0),
    (0, 1),
    (0, 63),
    (2, 4),
    (5, 5),
    (1000, 1050),
    (2040, 2060),
    (TOP - 1030, TOP - 1017),
    (TOP - 40, TOP),
    (TOP, TOP),
]


@pytest.mark.parametrize(("first", "last"), SMALL)
def test_small_ranges_answer_the_records_submitted_in_range(
    populated: World, first: int, last: int
) -> None:
    assert answer(populated, first, last) == expected(populated, first, last)


@pytest.mark.parametrize(
    ("first", "last"),
    [(0, 3000), (999, 1000), (1000, 1999), (TOP - 3000, TOP)],
)
def test_wide_ranges_take_one_log_call_per_thousand_slots(
    populated: World, monkeypatch: pytest.MonkeyPatch, first: int, last: int
) -> None:
    want = expected(populated, first, last)
    counter = LogCounter(populated.ledger, monkeypatch, limit=100)
    assert answer(populated, first, last) == want
    assert counter.calls == math.ceil((last - first + 1) / TOPICS_PER_CALL)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("first", "last"),
    [
        (0, MAX_SLOT_SPAN - 1),
        (1, MAX_SLOT_SPAN),
        (TOP - MAX_SLOT_SPAN, TOP - 1),
        (TOP - MAX_SLOT_SPAN + 1, TOP),
    ],
)
def test_max_span_ranges_match_every_record_in_range(
    populated: World, first: int, last: int
) -> None:
    assert answer(populated, first, last) == expected(populated, first, last)


def test_ten_thousand_empty_slots_take_ten_log_calls(
    populated: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = LogCounter(populated.ledger, monkeypatch, limit=50)
    assert populated.ledger.records_in_slots(200_000, 209_999) == []
    assert counter.calls == math.ceil(10_000 / TOPICS_PER_CALL) == 10


def test_range_limits(populated: World) -> None:
    ledger = populated.ledger
    with pytest.raises(ChainsenseError, match="at most 100000 slots"):
        ledger.records_in_slots(0, MAX_SLOT_SPAN)
    with pytest.raises(ChainsenseError, match="last 4 < first 5"):
        ledger.records_in_slots(5, 4)
    with pytest.raises(ChainsenseError, match="slot"):
        ledger.records_in_slots(TOP, TOP + 1)
    with pytest.raises(ChainsenseError, match="slot"):
        ledger.records_in_slots(-1, 3)
