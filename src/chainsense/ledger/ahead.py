"""Work one step ahead: batch k+1 is prepared in a background thread while batch k is finished.

The batch path's heavy parts release the GIL (libsecp256k1 signing and recovery in
:func:`chainsense.chain.keys.in_threads`, SQLite, file writes), so a second thread lets the MT
signatures of the next batch use the core that the current batch's single-threaded Python
(Merkle tree, bundle file, anchoring) leaves idle.

One catch is CPython's GIL hand-over: a thread coming back from a C call waits for the GIL until
the thread running Python drops it, which it does only every ``sys.getswitchinterval()`` (5 ms
by default) when asked; a signing thread then spends 5 ms waiting for every 20 us of work (the
*convoy effect*) and the overlap is lost. :func:`quick_gil_handover` shortens the interval for
the duration of the pipeline; the cost is a few more GIL switches for the Python thread.

The other is the cyclic garbage collector: a batch allocates ~8 container objects a record
(records, signed pairs, bundle entries), all freed by reference counting, yet they trigger a
collection every 700 allocations, and every few batches a full one that walks the whole heap
(~240,000 objects with py-evm loaded, ~50 ms, holding the GIL): 5-10 % of the batch path's CPU.
:func:`collect_less_often` raises the first threshold for the duration of the pipeline.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

GIL_SWITCH_S = 0.0002
"""GIL switch interval while batches are pipelined: long enough that a Python thread still
runs ~10 us of bytecode per hand-over, short enough that a signing thread waits about as long
as one signature takes."""


GC_ALLOCATIONS = 50_000
"""Allocations between two young-generation collections while batches are pipelined (700 by
default): cyclic garbage is still collected, every ~6,000 records instead of every ~90."""


@contextmanager
def collect_less_often(allocations: int = GC_ALLOCATIONS) -> Iterator[None]:
    """Raise the collector's first threshold inside the block (restored after; a collector
    switched off, threshold 0, stays off)."""
    previous = gc.get_threshold()
    if previous[0]:
        gc.set_threshold(max(previous[0], allocations), *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)


@contextmanager
def quick_gil_handover(interval: float = GIL_SWITCH_S) -> Iterator[None]:
    """Lower the interpreter's GIL switch interval inside the block (restored after)."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, interval))
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def one_ahead(fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
    """``fn(item)`` for each item in order, computing the next one in a background thread while
    the caller works on the current one; an exception in ``fn`` surfaces at its item. Leaving
    the loop early waits for the one call in flight (nothing runs on behind the caller's back)."""
    with ThreadPoolExecutor(1, thread_name_prefix="ahead") as pool:
        pending: Future[R] | None = pool.submit(fn, items[0]) if items else None
        for k in range(len(items)):
            assert pending is not None
            current = pending.result()
            pending = pool.submit(fn, items[k + 1]) if k + 1 < len(items) else None
            yield current
