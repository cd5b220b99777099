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

import json
import tempfile
import typing
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from chainsense import devnet
from chainsense.chain.embedded import EmbeddedChain
from chainsense.errors import ChainsenseError, ConfigError
from chainsense.experiments import chainside
from chainsense.experiments.ddos_results import Summary, markdown_table, plot, summarize, write_csv
from chainsense.experiments.ddos_trial import (
    ChainClient,
    Client,
    SqlClient,
    Trial,
    TrialSettings,
    classify,
    run_trial,
    wait_healthy,
)
from chainsense.experiments.flood import MAX_RATE, Target
from chainsense.experiments.sqlserver import (
    DATABASE,
    MariaDBServer,
    mariadb_available,
    select_by_id_text,
)
from chainsense.ledger.config import connect_network
from chainsense.ledger.record_log import id_topic

System = Literal["mariadb", "geth"]
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
            seed=self.seed,
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


@dataclass
class DdosResult:
    """Everything one run produced; ``server_pids`` lets a caller check they are all gone."""

    config: DdosConfig
    trials: list[Trial]
    summary: list[Summary]
    files: dict[str, Path]
    server_pids: dict[str, int] = field(default_factory=dict)


# ----------------------------------------------------------------------------- orchestration


@contextmanager
def _published(
    cfg: DdosConfig, tmp: Path, pids: dict[str, int], say: Progress, total: int
) -> Iterator[tuple[chainside.PublishedData, dict[str, devnet.NodeInfo], Path]]:
    """The records on a geth network when ``geth`` is measured (stopped afterwards), else on the
    embedded chain, which assigns the same ids and digests for the SQL rows."""
    netdir = tmp / "network"
    if "geth" not in cfg.systems:
        chain = EmbeddedChain()
        yield chainside.publish(chain, None, cfg.records, cfg.seed), {}, netdir
        return
    say("starting the geth network", 0, total)
    spec = devnet.NetworkSpec(sealers=cfg.sealers, followers=cfg.followers)
    with devnet.running(netdir, spec, timeout=120) as info:
        pids.update({f"geth:{n.name}": n.pid for n in info.nodes})
        say(f"storing {cfg.records} records on chain", 0, total)
        chain, faucet = connect_network(netdir, timeout=10.0)
        try:
            if faucet is None:
                raise ChainsenseError("network: the network file names no faucet key")
            data = chainside.publish(chain, faucet, cfg.records, cfg.seed)
        finally:
            chain.close()
        yield data, {n.name: n for n in info.nodes}, netdir


def _chain_target(
    netdir: Path, contract: str, record_id: int, nodes: list[devnet.NodeInfo]
) -> list[Target]:
    """The flood of the chain side: the request behind ``get_record(id)`` (``eth_getLogs`` on
    the record's id topic, from the contract's creation block to the head) at every node."""
    probe = chainside.open_ledger(netdir, contract, 5.0)
    try:
        query = probe.log_filter([id_topic(record_id)], 0, "latest")
    finally:
        probe.chain.close()
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [query]})
    return [Target("jsonrpc", n.http_port, request=body) for n in nodes]


def run(
    cfg: DdosConfig,
    out_dir: str | Path,
    *,
    progress: Progress | None = None,
    workdir: str | Path | None = None,
) -> DdosResult:
    """Start the servers of ``cfg.systems`` (and only those), load the records, flood each level
    ``repetitions`` times, write the files.

    Every server the run starts is stopped before it returns, also on errors.
    """
    if "mariadb" in cfg.systems and not mariadb_available():
        raise ChainsenseError("ddos: MariaDB is not installed (scripts/install-system-packages.sh)")
    if "geth" in cfg.systems:
        devnet.find_geth()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pids: dict[str, int] = {}
    trials: list[Trial] = []
    total = len(cfg.levels) * cfg.repetitions * len(cfg.systems)
    say = progress or (lambda _d, _i, _n: None)
    with ExitStack() as stack:
        tmp = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="chainsense-ddos-", dir=workdir))
        )
        data, nodes, netdir = stack.enter_context(_published(cfg, tmp, pids, say, total))
        expected = {row[0]: row for row in data.sql_rows()}
        some_id = min(expected)
        makers: dict[str, Callable[[], Client]] = {}
        targets: dict[str, list[Target]] = {}
        if "mariadb" in cfg.systems:
            db = stack.enter_context(MariaDBServer(tmp / "mariadb"))
            pids["mariadb"] = db.pid
            db.load_records(data.sql_rows())
            makers["mariadb"] = lambda: SqlClient(db, cfg.query_timeout_s)
            request = select_by_id_text(some_id)
            targets["mariadb"] = [Target("mysql", db.port, request=request, database=DATABASE)]
        if "geth" in cfg.systems:
            makers["geth"] = lambda: ChainClient(netdir, data.contract, cfg.query_timeout_s)
            targets["geth"] = _chain_target(netdir, data.contract, some_id, list(nodes.values()))
        done = 0
        for rep in range(cfg.repetitions):
            for level in cfg.levels:
                for system in cfg.systems:  # interleaved: drifting noise hits both
                    label = f"{system} at {level:g}/s (rep {rep + 1})"
                    say(label, done, total)
                    trials.append(
                        run_trial(
                            system, level, rep, cfg.trial, makers[system], targets[system], expected
                        )
                    )
                    probe_client = makers[system]()
                    try:
                        wait_healthy(probe_client, expected, cfg.query_timeout_s, 30.0)
                    finally:
                        probe_client.close()
                    done += 1
                    say(label, done, total)
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
