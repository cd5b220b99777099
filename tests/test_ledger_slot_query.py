"""Slot-range queries (`Ledger.records_in_slots`): one `slot_counts` call per 1024 slots plus
pages of the slots that hold records, with the same answers as the per-slot walk it replaced."""

from __future__ import annotations

import math
from typing import Any

import pytest

from chainsense.chain.errors import RevertError
from chainsense.errors import ChainsenseError
from chainsense.ledger.contract import MAX_SLOT_SPAN, Ledger, StoredRecord
from test_ledger_support import World, make_world

TOP = 2**32 - 1
SLOT_COUNTS = 1024  # slots counted by one `slot_counts` call (the contract's MAX_SLOT_COUNTS)
# slot -> records stored there: both ends of the slot space, the edges of 1024-slot chunks
# counted from 0 and from the top, the edges of a max-span range, and one slot over a page
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
    for rec, tx in sent:
        world.ledger.finish_submit(rec, tx)
    return world


def expected(ledger: Ledger, first: int, last: int) -> list[StoredRecord]:
    """Independent answer: every record by id, kept in range, by slot then submission order."""
    found = [s for s in ledger.records() if first <= s.record.slot <= last]
    return sorted(found, key=lambda s: (s.record.slot, s.record_id))


class ViewCounter:
    """Counts ``ledger.view`` calls by function name; fails once more than ``limit`` are made
    (so that a query that asks every slot fails fast instead of running for minutes)."""

    def __init__(self, ledger: Ledger, monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
        self.calls: dict[str, int] = {}
        self.limit = limit
        orig = ledger.view

        def view(fn: str, *args: Any) -> Any:
            self.calls[fn] = self.calls.get(fn, 0) + 1
            assert self.total <= limit, f"more than {limit} view calls: {self.calls}"
            return orig(fn, *args)

        monkeypatch.setattr(ledger, "view", view)

    @property
    def total(self) -> int:
        return sum(self.calls.values())


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
def test_small_ranges_match_the_per_slot_walk(populated: World, first: int, last: int) -> None:
    ledger = populated.ledger
    walk = ledger._records_in_slots_walk(first, last)
    assert ledger.records_in_slots(first, last) == walk == expected(ledger, first, last)


@pytest.mark.parametrize(
    ("first", "last"),
    [(0, 3000), (1023, 1024), (1024, 2047), (TOP - 3000, TOP)],
)
def test_wide_ranges_match_every_record_in_range(
    populated: World, monkeypatch: pytest.MonkeyPatch, first: int, last: int
) -> None:
    ledger = populated.ledger
    want = expected(ledger, first, last)
    nonempty = {s.record.slot for s in want}
    pages = sum(math.ceil(LAYOUT[slot] / 100) for slot in nonempty)
    counter = ViewCounter(ledger, monkeypatch, limit=10_000)
    assert ledger.records_in_slots(first, last) == want
    span = last - first + 1
    assert counter.calls == {"slot_counts": math.ceil(span / SLOT_COUNTS), "records_of_slot": pages}


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
    ledger = populated.ledger
    assert ledger.records_in_slots(first, last) == expected(ledger, first, last)


def test_slot_counts_view(populated: World) -> None:
    view = populated.ledger.view
    assert view("slot_counts", 0, 7) == [2, 1, 0, 0, 0, 101, 0]
    assert len(view("slot_counts", 0, 2**256 - 1)) == SLOT_COUNTS
    assert view("slot_counts", 1023, 2) == [1, 1]
    assert view("slot_counts", TOP - 2, 2**256 - 1) == [0, 1, 2]  # stops at the last slot
    assert view("slot_counts", TOP, 1) == [2]
    assert view("slot_counts", 7, 0) == []


def test_ten_thousand_empty_slots_take_ten_view_calls(
    populated: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: the query used to make one view call per slot (10,000 here)."""
    counter = ViewCounter(populated.ledger, monkeypatch, limit=50)
    assert populated.ledger.records_in_slots(200_000, 209_999) == []
    assert counter.total <= math.ceil(10_000 / SLOT_COUNTS) == 10


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


def test_a_ledger_without_slot_counts_falls_back_to_the_walk(
    populated: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = populated.ledger
    orig = ledger.view

    def old_contract(fn: str, *args: Any) -> Any:
        if fn == "slot_counts":  # what a contract deployed before slot_counts answers
            raise RevertError("reverted without a reason")
        return orig(fn, *args)

    monkeypatch.setattr(ledger, "view", old_contract)
    assert ledger.records_in_slots(0, 40) == expected(ledger, 0, 40)
