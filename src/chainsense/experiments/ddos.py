"""Availability under request floods: MariaDB as deployed, defended and replicated, versus geth.

The paper compares keeping the shared sensing data in MySQL with keeping it on the blockchain
under DoS/DDoS, reporting the query success ratio and the immediate query failure ratio. This
runs that experiment with real servers on loopback, side by side in one run
(:mod:`chainsense.experiments.ddos_systems` starts them):

* ``mariadb``: a private MariaDB server as installed (default ``max_connections`` = 151);
* ``mariadb-defended``: the same server tuned as an operator would (thread pool, more
  connections, per-account limit, statement time cap) behind an IPS-like HAProxy front with
  per-source connection-rate and concurrency limits and a bounded queue;
* ``mariadb-replicated``: a primary and two replicas (MariaDB replication) behind a failover
  client, the same idea as the chain side's;
* ``geth``: a geth Clique network (sealers + followers) holding the same records in the ledger
  contract, read through the ledger client (``RpcChain``, failover over every node).

For every repetition, level, attack and system, attacker processes
(:mod:`chainsense.experiments.flood`) send the attack's requests from their own loopback source
addresses at the level's rate for ``duration_s``; after ``warmup_s`` legitimate clients (from
127.0.0.1, a fresh connection per query) read records by id at ``legit_rate`` until the flood
ends. An answer counts as a success only if it is correct and came within ``query_timeout_s``;
errors that come sooner are immediate failures; the rest are timeouts. Level 0 (no attack) is
run once per system and repetition, as attack ``none``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from chainsense import devnet
from chainsense.errors import ConfigError
from chainsense.experiments.ddos_results import Summary, markdown_table, plot, summarize, write_csv
from chainsense.experiments.ddos_systems import (
    ATTACKS,
    SYSTEMS,
    SystemUnderTest,
    check_installed,
    published,
    start_system,
)
from chainsense.experiments.ddos_trial import (
    Trial,
    TrialSettings,
    classify,
    run_trial,
    wait_healthy,
)
from chainsense.experiments.flood import MAX_RATE, MAX_SOURCES

Progress = Callable[[str, int, int], None]  # (description, done, total)

__all__ = ["PRESETS", "DdosConfig", "DdosResult", "classify", "markdown_table", "plot", "run"]
__all__ += ["Summary", "Trial", "summarize"]


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
    attack_sources: int = 0  # distinct attacker source addresses; 0: one per process
    sealers: int = 3
    followers: int = 1
    systems: tuple[str, ...] = SYSTEMS
    attacks: tuple[str, ...] = ("connect", "expensive")
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
        if not 0 <= self.attack_sources <= MAX_SOURCES:
            raise ConfigError(
                "attack_sources", f"must be in 0..{MAX_SOURCES}, got {self.attack_sources}"
            )
        if 0 < self.attack_sources < self.attack_processes:
            raise ConfigError(
                "attack_sources",
                f"need at least one per attack process ({self.attack_processes}), "
                f"got {self.attack_sources}",
            )
        _check_subset("systems", self.systems, SYSTEMS)
        _check_subset("attacks", self.attacks, ATTACKS)

    @property
    def attack_levels(self) -> tuple[float, ...]:
        return tuple(lv for lv in self.levels if lv > 0)

    @property
    def trial_count(self) -> int:
        per_rep = (0.0 in self.levels) + len(self.attack_levels) * len(self.attacks)
        return self.repetitions * len(self.systems) * per_rep

    @property
    def trial(self) -> TrialSettings:
        return TrialSettings(
            duration_s=self.duration_s,
            warmup_s=self.warmup_s,
            legit_clients=self.legit_clients,
            legit_rate=self.legit_rate,
            query_timeout_s=self.query_timeout_s,
            attack_processes=self.attack_processes,
            hold_s=self.hold_s,
            max_open=self.max_open,
            sources=self.attack_sources,
            seed=self.seed,
        )


def _check_subset(name: str, chosen: tuple[str, ...], known: tuple[str, ...]) -> None:
    """Non-empty, no repeats, every value known; the message names the field and the choices."""
    bad = [c for c in chosen if c not in known]
    if not chosen or bad or len(set(chosen)) != len(chosen):
        why = f"unknown {', '.join(map(repr, bad))}; " if bad else ""
        raise ConfigError(
            name, f"{why}must be distinct values from {', '.join(known)}; got {list(chosen)}"
        )


PRESETS: dict[str, DdosConfig] = {
    "quick": DdosConfig(levels=(0.0, 200.0, 1000.0), repetitions=1, duration_s=5.0),
    "full": DdosConfig(
        levels=(0.0, 100.0, 500.0, 1000.0, 5000.0),
        repetitions=3,
        duration_s=10.0,
        warmup_s=2.0,
        records=200,
        attacks=ATTACKS,
        attack_sources=8,  # a few more addresses than processes: per-source limits bite later
    ),
}


@dataclass
class DdosResult:
    """Everything one run produced; ``server_pids`` lets a caller check they are all gone."""

    config: DdosConfig
    trials: list[Trial]
    summary: list[Summary]
    files: dict[str, Path]
    server_pids: dict[str, int] = field(default_factory=dict)


# ----------------------------------------------------------------------------- orchestration


def _schedule(cfg: DdosConfig) -> list[tuple[int, float, str, str]]:
    """(rep, level, attack, system), interleaved so that drifting machine load hits every system;
    level 0 once per system and repetition (attack ``none``)."""
    out = []
    for rep in range(cfg.repetitions):
        for level in cfg.levels:
            for attack in ("none",) if level == 0 else cfg.attacks:
                out.extend((rep, level, attack, system) for system in cfg.systems)
    return out


def _trial(
    sut: SystemUnderTest,
    attack: str,
    level: float,
    rep: int,
    cfg: DdosConfig,
    expected: dict[int, Any],
) -> Trial:
    targets = sut.targets[attack if attack != "none" else "connect"]
    pids = list(sut.pids.values())
    # only the connection flood lingers; the other attacks hurt by work, not by held slots
    settings = cfg.trial if attack == "connect" else replace(cfg.trial, hold_s=0.0)
    trial = run_trial(
        sut.name, attack, level, rep, settings, sut.make_client, targets, expected, pids
    )
    probe = sut.make_client()
    try:
        wait_healthy(probe, expected, cfg.query_timeout_s, 30.0)
    finally:
        probe.close()
    return trial


def run(
    cfg: DdosConfig,
    out_dir: str | Path,
    *,
    progress: Progress | None = None,
    workdir: str | Path | None = None,
) -> DdosResult:
    """Start the servers of ``cfg.systems`` (and only those), load the records, flood each level
    and attack ``repetitions`` times, write the files.

    Every server the run starts is stopped before it returns, also on errors.
    """
    check_installed(cfg.systems)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pids: dict[str, int] = {}
    trials: list[Trial] = []
    schedule = _schedule(cfg)
    say = progress or (lambda _d, _i, _n: None)
    with ExitStack() as stack:
        tmp = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="chainsense-ddos-", dir=workdir))
        )
        say("starting the servers and storing the records", 0, len(schedule))
        spec = devnet.NetworkSpec(sealers=cfg.sealers, followers=cfg.followers)
        data, network = stack.enter_context(
            published(cfg.systems, spec, tmp, cfg.records, cfg.seed)
        )
        expected = {row[0]: row for row in data.sql_rows()}
        systems: dict[str, SystemUnderTest] = {}
        for name in cfg.systems:
            systems[name] = start_system(name, stack, tmp, data, network, cfg.query_timeout_s)
            pids.update({f"{name}:{k}": v for k, v in systems[name].pids.items()})
        for done, (rep, level, attack, name) in enumerate(schedule):
            label = f"{name}, {attack} at {level:g}/s (rep {rep + 1})"
            say(label, done, len(schedule))
            trials.append(_trial(systems[name], attack, level, rep, cfg, expected))
            say(label, done + 1, len(schedule))
    summary = summarize(trials)
    files = {
        "trials": write_csv(out / "ddos_trials.csv", trials),
        "summary": write_csv(out / "ddos_summary.csv", summary),
        "plot": plot(summary, out / "ddos.png"),
    }
    (out / "ddos_summary.md").write_text(markdown_table(summary), encoding="utf-8")
    files["table"] = out / "ddos_summary.md"
    (out / "ddos_config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    files["config"] = out / "ddos_config.json"
    return DdosResult(cfg, trials, summary, files, pids)
