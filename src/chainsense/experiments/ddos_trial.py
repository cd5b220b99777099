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
from typing import Any, Literal

from chainsense.errors import ChainsenseError
from chainsense.experiments.ddos_clients import Client
from chainsense.experiments.flood import Flood, FloodSpec, FloodStats, Target
from chainsense.experiments.procstats import UsageSampler
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
    sources: int
    seed: int


@dataclass(frozen=True)
class Trial:
    """One (system, attack, level, repetition): legitimate outcomes, what the attack did, and
    what the servers used meanwhile (CPU in percent of one core, peak resident memory)."""

    system: str
    attack: str
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
    attackers_killed: int
    server_cpu_pct: float
    server_rss_mib: float
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
    attack: str,
    level: float,
    rep: int,
    cfg: TrialSettings,
    make_client: Callable[[], Client],
    targets: list[Target],
    expected: dict[int, Any],
    server_pids: list[int],
) -> Trial:
    clients = [make_client() for _ in range(cfg.legit_clients)]  # set up before the flood
    spec = FloodSpec(
        rate=level,
        duration=cfg.duration_s,
        processes=cfg.attack_processes,
        hold_s=cfg.hold_s,
        timeout_s=cfg.query_timeout_s,
        max_open=cfg.max_open,
        sources=cfg.sources,
    )
    flood = Flood(targets, spec)
    sampler = UsageSampler(server_pids)
    try:
        with sampler:
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
        attack=attack,
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
        attackers_killed=flood.killed,
        server_cpu_pct=sampler.usage.cpu_pct,
        server_rss_mib=sampler.usage.rss_mib,
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
