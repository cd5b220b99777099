"""One trial of the availability experiment: legitimate clients query a system while a flood runs.

An answer counts as a success only if it is correct and came within the query timeout; errors
that come sooner are immediate failures; the rest are timeouts.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from chainsense.errors import ChainsenseError
from chainsense.experiments.chainside import open_ledger, sql_row
from chainsense.experiments.flood import Flood, FloodSpec, FloodStats, Target
from chainsense.experiments.sqlserver import SELECT_BY_ID, MariaDBServer
from chainsense.stats import percentile

Outcome = Literal["success", "failure", "timeout"]


@dataclass(frozen=True)
class TrialSettings:
    """The parts of the experiment's config that one trial needs."""

    duration_s: float
    warmup_s: float
    legit_clients: int
    legit_rate: float
    query_timeout_s: float
    attack_processes: int
    hold_s: float
    max_open: int
    seed: int


@dataclass(frozen=True)
class Trial:
    """One (system, attack level, repetition): legitimate outcomes and what the attack did."""

    system: str
    level: float
    rep: int
    attempts: int
    successes: int
    failures: int
    timeouts: int
    success_ratio: float
    failure_ratio: float
    timeout_ratio: float
    p50_ms: float
    p99_ms: float
    attack_launched: int
    attack_answered: int
    attack_rejected: int
    attack_timed_out: int
    attack_skipped: int
    attack_rate_achieved: float
    failure_reasons: str


def _is_timeout(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return "timeout" in text or "timed out" in text


def _reason(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    from_pymysql = type(exc).__module__.startswith("pymysql")
    if from_pymysql and args and isinstance(args[0], int):  # (1040, 'Too many connections')
        return f"mysql{args[0]}"
    return type(exc).__name__


def classify(query: Callable[[], Any], expected: Any, timeout: float) -> tuple[Outcome, float, str]:
    """Run one legitimate query: (outcome, latency in s, failure reason or "")."""
    t0 = time.perf_counter()
    try:
        got = query()
    except Exception as exc:  # every error of a legitimate query is a measured outcome
        latency = time.perf_counter() - t0
        if latency >= timeout or _is_timeout(exc):
            return "timeout", latency, _reason(exc)
        return "failure", latency, _reason(exc)
    latency = time.perf_counter() - t0
    if latency > timeout:
        return "timeout", latency, "late"
    if got != expected:
        return "failure", latency, "wrong-answer"
    return "success", latency, ""


class Client:
    """A legitimate client of one system; ``query(id)`` returns a comparable value."""

    def query(self, record_id: int) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        """Release the client."""


class SqlClient(Client):
    """A client of the MariaDB server: a new connection per query, one indexed select."""

    def __init__(self, server: MariaDBServer, timeout: float) -> None:
        self.server, self.timeout = server, timeout

    def query(self, record_id: int) -> Any:
        with self.server.connect(timeout=self.timeout) as conn, conn.cursor() as cur:
            cur.execute(SELECT_BY_ID, (record_id,))
            return cur.fetchone()


class ChainClient(Client):
    """A client of the geth network: the ledger client with failover, a fresh connection per
    query, ``get_record(id)``."""

    def __init__(self, netdir: Path, contract: str, timeout: float) -> None:
        # Each endpoint gets half the budget, so one failover still fits in the timeout.
        self.ledger = open_ledger(netdir, contract, timeout=timeout / 2)
        self._row = sql_row

    def query(self, record_id: int) -> Any:
        try:
            return self._row(self.ledger.get_record(record_id))
        finally:
            self.ledger.chain.close()  # next query opens a fresh connection, as SQL clients do

    def close(self) -> None:
        self.ledger.chain.close()


def _legit_load(
    clients: list[Client],
    expected: dict[int, Any],
    window: float,
    rate: float,
    timeout: float,
    seed: int,
) -> list[tuple[Outcome, float, str]]:
    """Every client queries random ids at ``rate / len(clients)`` per second for ``window`` s."""
    per_client = rate / len(clients)
    count = max(1, int(window * per_client))
    ids = sorted(expected)
    lock = threading.Lock()
    out: list[tuple[Outcome, float, str]] = []
    stop_at = time.monotonic() + window + timeout  # hard bound on the whole load

    def run(i: int, client: Client) -> None:
        rng = random.Random(seed * 1000 + i)
        nxt = time.monotonic() + rng.random() / per_client  # stagger the clients
        for _ in range(count):
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if time.monotonic() > stop_at:
                break
            rid = rng.choice(ids)
            res = classify(lambda c=client, r=rid: c.query(r), expected[rid], timeout)
            with lock:
                out.append(res)
            nxt = max(nxt + 1 / per_client, time.monotonic())

    with ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(run, range(len(clients)), clients))
    return out


def run_trial(
    system: str,
    level: float,
    rep: int,
    cfg: TrialSettings,
    make_client: Callable[[], Client],
    targets: list[Target],
    expected: dict[int, Any],
) -> Trial:
    clients = [make_client() for _ in range(cfg.legit_clients)]  # set up before the flood
    spec = FloodSpec(
        rate=level,
        duration=cfg.duration_s,
        processes=cfg.attack_processes,
        hold_s=cfg.hold_s,
        timeout_s=cfg.query_timeout_s,
        max_open=cfg.max_open,
    )
    flood = Flood(targets, spec)
    try:
        flood.start()
        time.sleep(cfg.warmup_s)
        results = _legit_load(
            clients,
            expected,
            cfg.duration_s - cfg.warmup_s,
            cfg.legit_rate,
            cfg.query_timeout_s,
            cfg.seed + rep * 7919 + int(level),
        )
    finally:
        stats: FloodStats = flood.join()
        for c in clients:
            c.close()
    n = len(results)
    counts = Counter(o for o, _, _ in results)
    reasons = Counter(r for o, _, r in results if o != "success")
    lat = [t * 1000 for o, t, _ in results if o == "success"]
    return Trial(
        system=system,
        level=level,
        rep=rep,
        attempts=n,
        successes=counts["success"],
        failures=counts["failure"],
        timeouts=counts["timeout"],
        success_ratio=counts["success"] / n,
        failure_ratio=counts["failure"] / n,
        timeout_ratio=counts["timeout"] / n,
        p50_ms=percentile(lat, 50),
        p99_ms=percentile(lat, 99),
        attack_launched=stats.launched,
        attack_answered=stats.answered,
        attack_rejected=stats.rejected,
        attack_timed_out=stats.timed_out,
        attack_skipped=stats.skipped,
        attack_rate_achieved=stats.launched / cfg.duration_s,
        failure_reasons=";".join(f"{k}:{v}" for k, v in sorted(reasons.items())),
    )


def wait_healthy(client: Client, expected: dict[int, Any], timeout: float, limit: float) -> None:
    """After a trial, wait until the system answers correctly again (bounded by ``limit`` s)."""
    rid = min(expected)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if classify(lambda: client.query(rid), expected[rid], timeout)[0] == "success":
            return
        time.sleep(0.25)
    raise ChainsenseError(f"ddos: a server did not recover within {limit:.0f}s after a flood")
