"""Availability under a request flood: a geth private network versus a MariaDB server.

The paper compares keeping the shared sensing data in MySQL with keeping it on the blockchain
under DoS/DDoS, reporting the query success ratio and the immediate query failure ratio. This
runs that experiment with real servers on loopback:

* control group: a private MariaDB server (default ``max_connections`` = 151) holding the records
  in a table; a legitimate query opens a connection and selects one record by id;
* experimental group: a geth Clique network (sealers + followers) holding the same records in the
  ledger contract; a legitimate query goes through the ledger client (``RpcChain``, failover over
  every node) and calls ``get_record(id)``.

Both kinds of legitimate query use a fresh TCP connection each time (a new client arriving), so
both compete with the flood for connection slots in the same way. For every attack level and
repetition, attacker processes (:mod:`chainsense.experiments.flood`) open connections and send real
queries at the level's rate for ``duration_s``; after ``warmup_s`` the legitimate clients query at
``legit_rate`` until the flood ends. An answer counts as a success only if it is correct and came
within ``query_timeout_s``; errors that come sooner are immediate failures; the rest are timeouts.
"""

from __future__ import annotations

import csv
import json
import math
import random
import statistics
import tempfile
import threading
import time
import typing
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from chainsense.errors import ChainsenseError, ConfigError
from chainsense.experiments.flood import MAX_RATE, Flood, FloodSpec, FloodStats, Target
from chainsense.stats import percentile

System = Literal["mariadb", "geth"]
Outcome = Literal["success", "failure", "timeout"]
Progress = Callable[[str, int, int], None]  # (description, done, total)


@dataclass(frozen=True)
class DdosConfig:
    """Settings of one availability experiment (see :data:`PRESETS`)."""

    levels: tuple[float, ...] = (0.0, 200.0, 1000.0)
    repetitions: int = 2
    duration_s: float = 6.0
    warmup_s: float = 1.5
    legit_clients: int = 4
    legit_rate: float = 20.0
    query_timeout_s: float = 2.0
    records: int = 40
    attack_processes: int = 2
    hold_s: float = 1.0
    max_open: int = 3000
    sealers: int = 3
    followers: int = 1
    systems: tuple[str, ...] = ("mariadb", "geth")
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.levels:
            raise ConfigError("levels", "at least one attack level is needed")
        for i, lv in enumerate(self.levels):
            if not 0 <= lv <= MAX_RATE:
                raise ConfigError(f"levels[{i}]", f"must be in 0..{MAX_RATE} attempts/s, got {lv}")
        if not 1 <= self.repetitions <= 20:
            raise ConfigError("repetitions", f"must be in 1..20, got {self.repetitions}")
        if not 1 <= self.duration_s <= 60:
            raise ConfigError("duration_s", f"must be in 1..60 s, got {self.duration_s}")
        if not 0 <= self.warmup_s < self.duration_s - 0.5:
            raise ConfigError("warmup_s", f"must be in [0, duration_s - 0.5), got {self.warmup_s}")
        if not 1 <= self.legit_clients <= 32:
            raise ConfigError("legit_clients", f"must be in 1..32, got {self.legit_clients}")
        if not 0 < self.legit_rate <= 500:
            raise ConfigError("legit_rate", f"must be in (0, 500] queries/s, got {self.legit_rate}")
        if not 0.1 <= self.query_timeout_s <= 30:
            raise ConfigError(
                "query_timeout_s", f"must be in 0.1..30 s, got {self.query_timeout_s}"
            )
        if not 1 <= self.records <= 2000:
            raise ConfigError("records", f"must be in 1..2000, got {self.records}")
        if not 1 <= self.attack_processes <= 8:
            raise ConfigError("attack_processes", f"must be in 1..8, got {self.attack_processes}")
        if not 0 <= self.hold_s <= 30:
            raise ConfigError("hold_s", f"must be in 0..30 s, got {self.hold_s}")
        if not 1 <= self.max_open <= 8000:
            raise ConfigError("max_open", f"must be in 1..8000, got {self.max_open}")
        if self.sealers < 1:
            raise ConfigError("sealers", f"need >= 1 sealer, got {self.sealers}")
        if self.followers < 0:
            raise ConfigError("followers", f"must be >= 0, got {self.followers}")
        known = typing.get_args(System)
        if not self.systems or any(s not in known for s in self.systems):
            raise ConfigError(
                "systems", f"must be a subset of {', '.join(known)}; got {self.systems}"
            )


PRESETS: dict[str, DdosConfig] = {
    "quick": DdosConfig(),
    "full": DdosConfig(
        levels=(0.0, 100.0, 500.0, 1000.0, 5000.0),
        repetitions=3,
        duration_s=10.0,
        warmup_s=2.0,
        records=200,
    ),
}


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


@dataclass(frozen=True)
class Summary:
    """Mean and standard deviation over repetitions for one (system, level)."""

    system: str
    level: float
    reps: int
    attempts: int
    success_mean: float
    success_std: float
    failure_mean: float
    failure_std: float
    timeout_mean: float
    timeout_std: float
    p50_ms_mean: float
    p99_ms_mean: float
    p99_ms_std: float
    attack_rate_achieved: float


@dataclass
class DdosResult:
    """Everything one run produced; ``server_pids`` lets a caller check they are all gone."""

    config: DdosConfig
    trials: list[Trial]
    summary: list[Summary]
    files: dict[str, Path]
    server_pids: dict[str, int] = field(default_factory=dict)


# ----------------------------------------------------------------------------- measuring


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


class _Client:
    """A legitimate client of one system; ``query(id)`` returns a comparable value."""

    def query(self, record_id: int) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        """Release the client."""


class _SqlClient(_Client):
    def __init__(self, server: Any, timeout: float) -> None:
        self.server, self.timeout = server, timeout

    def query(self, record_id: int) -> Any:
        from chainsense.experiments.sqlserver import SELECT_BY_ID

        with self.server.connect(timeout=self.timeout) as conn, conn.cursor() as cur:
            cur.execute(SELECT_BY_ID, (record_id,))
            return cur.fetchone()


class _ChainClient(_Client):
    def __init__(self, netdir: Path, contract: str, timeout: float) -> None:
        from chainsense.experiments.chainside import open_ledger, sql_row

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
    clients: list[_Client],
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

    def run(i: int, client: _Client) -> None:
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


def _trial(
    system: str,
    level: float,
    rep: int,
    cfg: DdosConfig,
    make_client: Callable[[], _Client],
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


def _wait_healthy(client: _Client, expected: dict[int, Any], timeout: float, limit: float) -> None:
    """After a trial, wait until the system answers correctly again (bounded by ``limit`` s)."""
    rid = min(expected)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if classify(lambda: client.query(rid), expected[rid], timeout)[0] == "success":
            return
        time.sleep(0.25)
    raise ChainsenseError(f"ddos: a server did not recover within {limit:.0f}s after a flood")


def summarize(trials: list[Trial]) -> list[Summary]:
    """Mean and (sample) standard deviation over repetitions per (system, level)."""
    groups: dict[tuple[str, float], list[Trial]] = {}
    for t in trials:
        groups.setdefault((t.system, t.level), []).append(t)

    def ms(xs: list[float]) -> tuple[float, float]:
        xs = [x for x in xs if not math.isnan(x)]
        if not xs:
            return math.nan, math.nan
        return statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0

    out = []
    for (system, level), ts in sorted(groups.items()):
        sm, ss = ms([t.success_ratio for t in ts])
        fm, fs = ms([t.failure_ratio for t in ts])
        tm, tsd = ms([t.timeout_ratio for t in ts])
        p50, _ = ms([t.p50_ms for t in ts])
        p99, p99s = ms([t.p99_ms for t in ts])
        out.append(
            Summary(
                system,
                level,
                len(ts),
                sum(t.attempts for t in ts),
                sm,
                ss,
                fm,
                fs,
                tm,
                tsd,
                p50,
                p99,
                p99s,
                statistics.fmean(t.attack_rate_achieved for t in ts),
            )
        )
    return out


# ----------------------------------------------------------------------------- output


def _write_csv(path: Path, rows: list[Any]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([fl.name for fl in fields(rows[0])])
        for r in rows:
            w.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in asdict(r).values()])
    return path


def markdown_table(summary: list[Summary]) -> str:
    """The per-level table (means ± std over repetitions) as Markdown."""
    head = (
        "| system | attack /s (nominal) | attack /s (achieved) | success | immediate failure "
        "| timeout | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = [
        f"| {s.system} | {s.level:g} | {s.attack_rate_achieved:.0f} "
        f"| {s.success_mean:.3f} ± {s.success_std:.3f} "
        f"| {s.failure_mean:.3f} ± {s.failure_std:.3f} "
        f"| {s.timeout_mean:.3f} ± {s.timeout_std:.3f} "
        f"| {s.p50_ms_mean:.1f} | {s.p99_ms_mean:.1f} |"
        for s in summary
    ]
    return head + "\n".join(rows) + "\n"


def plot(summary: list[Summary], path: Path) -> Path:
    """Success ratio, immediate failure ratio and p99 latency per level, error bars = std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = sorted({s.level for s in summary})
    xs = range(len(levels))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    panels = (
        ("query success ratio", "success_mean", "success_std", (0, 1.05)),
        ("immediate failure ratio", "failure_mean", "failure_std", (0, 1.05)),
        ("p99 latency of successes (ms)", "p99_ms_mean", "p99_ms_std", None),
    )
    for ax, (title, mean, std, ylim) in zip(axes, panels, strict=True):
        for k, system in enumerate(sorted({s.system for s in summary})):
            rows = {s.level: s for s in summary if s.system == system}
            ys = [getattr(rows[lv], mean) if lv in rows else math.nan for lv in levels]
            es = [getattr(rows[lv], std) if lv in rows else math.nan for lv in levels]
            ax.errorbar(
                [x + (k - 0.5) * 0.08 for x in xs], ys, yerr=es, marker="o", capsize=4, label=system
            )
        ax.set_xticks(list(xs), [f"{lv:g}" for lv in levels])
        ax.set_xlabel("attack rate (connection + query attempts / s)")
        ax.set_title(title)
        if ylim:
            ax.set_ylim(*ylim)
        else:
            ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- orchestration


def run(
    cfg: DdosConfig,
    out_dir: str | Path,
    *,
    progress: Progress | None = None,
    workdir: str | Path | None = None,
) -> DdosResult:
    """Start the servers, load the records, flood each level ``repetitions`` times, write files.

    Every server the run starts is stopped before it returns, also on errors.
    """
    from chainsense.experiments import chainside
    from chainsense.experiments.sqlserver import MariaDBServer, mariadb_available
    from chainsense.ledger import network

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if "mariadb" in cfg.systems and not mariadb_available():
        raise ChainsenseError("ddos: MariaDB is not installed (scripts/install-system-packages.sh)")
    if "geth" in cfg.systems:
        network.find_geth()
    pids: dict[str, int] = {}
    trials: list[Trial] = []
    total = len(cfg.levels) * cfg.repetitions * len(cfg.systems)
    say = progress or (lambda _d, _i, _n: None)
    with tempfile.TemporaryDirectory(prefix="chainsense-ddos-", dir=workdir) as tmp:
        netdir = Path(tmp) / "network"
        say("starting the geth network", 0, total)
        spec = network.NetworkSpec(sealers=cfg.sealers, followers=cfg.followers)
        with network.running(netdir, spec, timeout=120) as info:
            pids.update({f"geth:{n.name}": n.pid for n in info.nodes})
            say(f"storing {cfg.records} records on chain", 0, total)
            data = chainside.publish(netdir, cfg.records, cfg.seed)
            expected = {row[0]: row for row in data.sql_rows()}
            with MariaDBServer(Path(tmp) / "mariadb") as db:
                pids["mariadb"] = db.pid
                db.load_records(data.sql_rows())
                some_id = min(expected)
                makers: dict[str, Callable[[], _Client]] = {
                    "mariadb": lambda: _SqlClient(db, cfg.query_timeout_s),
                    "geth": lambda: _ChainClient(netdir, data.contract, cfg.query_timeout_s),
                }
                probe = chainside.open_ledger(netdir, data.contract, 5.0)
                call = json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "eth_call",
                        "params": [
                            {"to": data.contract, "data": probe.encode("get_record", some_id)},
                            "latest",
                        ],
                    }
                )
                probe.chain.close()
                targets: dict[str, list[Target]] = {
                    "mariadb": [
                        Target(
                            "mysql",
                            db.port,
                            request=f"SELECT * FROM records WHERE id = {some_id}",
                            database="chainsense",
                        )
                    ],
                    "geth": [Target("jsonrpc", n.http_port, request=call) for n in info.nodes],
                }
                done = 0
                for rep in range(cfg.repetitions):
                    for level in cfg.levels:
                        for system in cfg.systems:  # interleaved: drifting noise hits both
                            say(f"{system} at {level:g}/s (rep {rep + 1})", done, total)
                            trials.append(
                                _trial(
                                    system,
                                    level,
                                    rep,
                                    cfg,
                                    makers[system],
                                    targets[system],
                                    expected,
                                )
                            )
                            probe_client = makers[system]()
                            try:
                                _wait_healthy(probe_client, expected, cfg.query_timeout_s, 30.0)
                            finally:
                                probe_client.close()
                            done += 1
                            say(f"{system} at {level:g}/s (rep {rep + 1})", done, total)
    summary = summarize(trials)
    files = {
        "trials": _write_csv(out / "ddos_trials.csv", trials),
        "summary": _write_csv(out / "ddos_summary.csv", summary),
        "plot": plot(summary, out / "ddos.png"),
    }
    (out / "ddos_summary.md").write_text(markdown_table(summary), encoding="utf-8")
    files["table"] = out / "ddos_summary.md"
    (out / "ddos_config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    files["config"] = out / "ddos_config.json"
    return DdosResult(cfg, trials, summary, files, pids)
