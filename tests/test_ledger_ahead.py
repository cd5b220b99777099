"""One-ahead batch preparation: order, overlap, errors, early exit, the GIL interval."""

from __future__ import annotations

import gc
import sys
import threading
from contextlib import closing

import pytest

from chainsense.ledger.ahead import collect_less_often, one_ahead, quick_gil_handover


def test_results_come_in_order_with_the_next_one_prepared_meanwhile() -> None:
    started = [threading.Event() for _ in range(4)]

    def prepare(k: int) -> int:
        started[k].set()
        return k * k

    seen = []
    for k, value in enumerate(one_ahead(prepare, range(4))):
        if k + 1 < 4:  # the next item is being prepared while the caller holds this one
            assert started[k + 1].wait(timeout=30)
        seen.append(value)
    assert seen == [0, 1, 4, 9]
    assert list(one_ahead(prepare, [])) == []


def test_an_error_surfaces_at_its_item() -> None:
    def prepare(k: int) -> int:
        if k == 2:
            raise ValueError("item 2")
        return k

    got = []
    with pytest.raises(ValueError, match="item 2"):
        for value in one_ahead(prepare, range(5)):
            got.append(value)
    assert got == [0, 1]


def test_leaving_early_waits_for_the_call_in_flight() -> None:
    running = threading.Event()
    release = threading.Event()
    finished = []

    def prepare(k: int) -> int:
        if k == 1:
            running.set()
            release.wait(timeout=30)
        finished.append(k)
        return k

    with closing(one_ahead(prepare, range(3))) as ready:
        for _ in ready:
            assert running.wait(timeout=30)
            release.set()
            break
    assert finished == [0, 1]  # item 1 finished before the loop was left; item 2 never started


def test_gil_interval_is_restored() -> None:
    before = sys.getswitchinterval()
    with quick_gil_handover(0.0001):
        assert sys.getswitchinterval() == pytest.approx(0.0001)
    assert sys.getswitchinterval() == before
    with pytest.raises(RuntimeError), quick_gil_handover(0.0001):
        raise RuntimeError
    assert sys.getswitchinterval() == before


def test_collector_threshold_is_raised_then_restored() -> None:
    before = gc.get_threshold()
    with collect_less_often(50_000):
        assert gc.get_threshold() == (max(before[0], 50_000), *before[1:])
    assert gc.get_threshold() == before
    gc.set_threshold(0)  # a collector switched off stays off
    try:
        with collect_less_often(50_000):
            assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*before)
