"""Caliper-style load on the per-record ledger: MTs sign records at a fixed send rate and submit
them concurrently; every record is then confirmed, read back and verified.

Each MT runs in its own thread (as a fleet of devices would): it signs the records that are due
by the schedule (record ``k`` of the run at ``k / send_rate`` seconds), flushes its outbox
(countersign, send, collect receipts: :mod:`chainsense.ledger.pipeline`) and repeats. The latency
of a record runs from its MT signature to the moment its MT sees its receipt with the chain's
required confirmations on top; throughput counts confirmed records over the time from the first
signature to the last confirmation, as Hyperledger Caliper reports them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from chainsense.errors import ChainsenseError
from chainsense.ledger.records import Record
from chainsense.ledger.session import LedgerSession
from chainsense.ledger.terminal import MobileTerminal
from chainsense.sim.events import CollectionEvent
from chainsense.stats import percentile

IDLE_SLEEP = 0.02  # seconds an MT with nothing due and nothing queued waits before looking again


@dataclass(frozen=True)
class LoadReport:
    """One configuration's figures (Caliper's columns plus gas and verification)."""

    label: str
    records: int
    confirmed: int
    verified: int
    seconds: float
    send_rate: float
    throughput: float
    latency_p50_s: float
    latency_p99_s: float
    latency_max_s: float
    gas_per_record: float
    client_cpu_s: float

    @property
    def success_ratio(self) -> float:
        return self.verified / self.records if self.records else 1.0

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self) | {"success_ratio": self.success_ratio}

    def line(self) -> str:
        return (
            f"{self.label:<28} send {self.send_rate:7.1f}/s  throughput {self.throughput:7.1f}/s  "
            f"latency p50 {self.latency_p50_s:5.2f} s p99 {self.latency_p99_s:5.2f} s  "
            f"success {self.success_ratio:6.1%} ({self.verified}/{self.records})  "
            f"gas/record {self.gas_per_record:,.0f}"
        )


class _MT:
    """One MT's schedule and timings, driven by its own thread."""

    def __init__(self, terminal: MobileTerminal, due: list[tuple[float, CollectionEvent]]) -> None:
        self.terminal = terminal
        self.due = due
        self.signed_at: dict[int, float] = {}
        self.confirmed_at: dict[int, float] = {}
        self.gas = 0
        self.error: BaseException | None = None
        terminal.pipeline.on_confirmed = self._confirmed

    def _confirmed(self, records: Sequence[Record]) -> None:
        now = time.perf_counter()
        for r in records:
            self.confirmed_at.setdefault(r.nonce, now)

    def run(self, start: float, deadline: float) -> None:
        try:
            self._run(start, deadline)
        except BaseException as exc:  # reported by run_load, with the MT named
            self.error = exc

    def _run(self, start: float, deadline: float) -> None:
        t = self.terminal
        next_i = 0
        while time.perf_counter() < deadline:
            now = time.perf_counter() - start
            stop = next_i
            while stop < len(self.due) and self.due[stop][0] <= now:
                stop += 1
            if stop > next_i:
                first = t.next_nonce()
                batch = [(e.poi, e.slot, e.amount, e.x, e.y) for _, e in self.due[next_i:stop]]
                t.collect_many(batch)
                signed = time.perf_counter()
                for k in range(len(batch)):
                    self.signed_at[first + k] = signed
                next_i = stop
            if t.pending():
                self.gas += t.flush().gas_used
            elif next_i == len(self.due):
                return
            else:
                time.sleep(min(IDLE_SLEEP, max(0.0, self.due[next_i][0] - now)))


def run_load(
    session: LedgerSession,
    events: Sequence[CollectionEvent],
    *,
    send_rate: float,
    label: str,
    timeout: float = 3600.0,
) -> LoadReport:
    """Submit ``events`` through ``session``'s MTs at ``send_rate`` records/s (0: all at once),
    then verify the whole ledger; see the module docstring."""
    if session.mode != "record":
        raise ChainsenseError("session: the load runs in per-record mode")
    if not send_rate >= 0:
        raise ChainsenseError(f"send_rate: must be >= 0 records/s, got {send_rate!r}")
    for e in events:
        if not 0 <= e.mt < len(session.terminals):
            raise ChainsenseError(f"event.mt: {e.mt} outside [0, {len(session.terminals)})")
    schedule: list[list[tuple[float, CollectionEvent]]] = [[] for _ in session.terminals]
    for k, e in enumerate(events):
        schedule[e.mt].append((k / send_rate if send_rate else 0.0, e))
    mts = [_MT(t, due) for t, due in zip(session.terminals, schedule, strict=True) if due]
    cpu0 = time.process_time()
    start = time.perf_counter()
    threads = [
        threading.Thread(target=m.run, args=(start, start + timeout), name=f"mt-{i}")
        for i, m in enumerate(mts)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    cpu = time.process_time() - cpu0
    for m in mts:
        if m.error is not None:
            raise ChainsenseError(f"MT {m.terminal.key.address}: {m.error}") from m.error
    latencies = [
        m.confirmed_at[n] - m.signed_at[n] for m in mts for n in m.confirmed_at if n in m.signed_at
    ]
    signed = [s for m in mts for s in m.signed_at.values()]
    confirmed_times = [c for m in mts for c in m.confirmed_at.values()]
    span = (max(confirmed_times) - min(signed)) if confirmed_times else 0.0
    send_span = max(signed) - min(signed) if signed else 0.0
    verification = session.verify()
    return LoadReport(
        label=label,
        records=len(events),
        confirmed=len(latencies),
        verified=verification.ok,
        seconds=span,
        send_rate=len(signed) / send_span if send_rate and send_span > 0 else 0.0,  # 0: burst
        throughput=len(latencies) / span if span > 0 else 0.0,
        latency_p50_s=percentile(latencies, 50) if latencies else 0.0,
        latency_p99_s=percentile(latencies, 99) if latencies else 0.0,
        latency_max_s=max(latencies, default=0.0),
        gas_per_record=sum(m.gas for m in mts) / max(1, len(latencies)),
        client_cpu_s=cpu,
    )
