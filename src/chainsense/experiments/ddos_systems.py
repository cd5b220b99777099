"""The systems under test of the availability experiment and what each attack sends them.

A :class:`SystemUnderTest` is a running system (started here from Debian packages or geth, each
server in its own scratch directory on a loopback port), a factory for its legitimate clients,
the flood targets of every attack, and the pids of its server processes (for CPU/memory and for
checking that all of them are gone afterwards). Attacks:

* ``connect``: a new connection + the cheap query legitimate clients make (select by id / the
  ``eth_getLogs`` on one record's id topic behind ``Ledger.get_record``), at every endpoint the
  clients use; each connection then lingers
  ``hold_s`` (the other attacks close theirs at once: they hurt by work, not by held slots);
* ``expensive``: the heaviest legitimate-looking reads each system answers (SQL: an unindexed
  self-join and a full scan with an unindexed ``LIKE`` filter; geth: ``eth_getLogs`` over the
  whole chain, every record of the ledger and every log of any contract), at every endpoint;
* ``single-node``: the expensive reads, all at one geth node or at the SQL primary (for the
  one-server systems that is the expensive attack again).
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from chainsense import devnet
from chainsense.chain.embedded import EmbeddedChain
from chainsense.errors import ChainsenseError
from chainsense.experiments import chainside
from chainsense.experiments.ddos_clients import ChainClient, Client, FailoverSqlClient, SqlClient
from chainsense.experiments.flood import Target
from chainsense.experiments.haproxy import FrontLimits, HAProxyFront, haproxy_binary
from chainsense.experiments.sqlcluster import ReplicatedSql
from chainsense.experiments.sqlserver import (
    DATABASE,
    MariaDBServer,
    mariadb_available,
    select_by_id_text,
)
from chainsense.ledger.config import connect_network
from chainsense.ledger.record_log import id_topic

System = Literal["mariadb", "mariadb-defended", "mariadb-replicated", "geth"]
Attack = Literal["connect", "expensive", "single-node"]
SYSTEMS: tuple[str, ...] = typing.get_args(System)
ATTACKS: tuple[str, ...] = typing.get_args(Attack)

EXPENSIVE_SQL = (
    # for every record, how many of its MT's readings are higher: an unindexed self-join
    "SELECT a.id, COUNT(b.id) AS higher FROM records a LEFT JOIN records b "
    "ON b.mt = a.mt AND b.reading > a.reading GROUP BY a.id ORDER BY higher DESC, a.id",
    # a full scan with an unindexed filter, sorted
    "SELECT * FROM records WHERE digest LIKE '%a%' OR mt LIKE '%b%' ORDER BY reading DESC",
)
# what an operator would set on the defended server: more connections, a thread pool (idle
# connections hold no thread), a cap on each statement's run time, a per-account limit
TUNED_MARIADB_ARGS = (
    "--max-connections=300",
    "--thread-handling=pool-of-threads",
    "--thread-pool-size=2",
    "--max-statement-time=1",
)
APP_USER_MAX_CONNECTIONS = 250


@dataclass
class SystemUnderTest:
    """A running system: its clients, its flood targets per attack, its server pids."""

    name: str
    make_client: Callable[[], Client]
    targets: dict[str, list[Target]]
    pids: dict[str, int]


def check_installed(systems: tuple[str, ...]) -> None:
    """Fail before starting anything when a system's software is missing."""
    if any(s.startswith("mariadb") for s in systems) and not mariadb_available():
        raise ChainsenseError("ddos: MariaDB is not installed (scripts/install-system-packages.sh)")
    if "mariadb-defended" in systems and haproxy_binary() is None:
        raise ChainsenseError("ddos: HAProxy is not installed (scripts/install-system-packages.sh)")
    if "geth" in systems:
        devnet.find_geth()


@contextmanager
def published(
    systems: tuple[str, ...], spec: devnet.NetworkSpec, tmp: Path, records: int, seed: int
) -> Iterator[tuple[chainside.PublishedData, devnet.NetworkInfo | None]]:
    """The records on a geth network when ``geth`` is measured (stopped afterwards), else on the
    embedded chain, which assigns the same ids and digests for the SQL rows."""
    if "geth" not in systems:
        yield chainside.publish(EmbeddedChain(), None, records, seed), None
        return
    with devnet.running(tmp / "network", spec, timeout=120) as info:
        chain, faucet = connect_network(info.directory, timeout=10.0)
        try:
            if faucet is None:
                raise ChainsenseError("network: the network file names no faucet key")
            data = chainside.publish(chain, faucet, records, seed)
        finally:
            chain.close()
        yield data, info


def _sql_targets(ports: list[int], primary: int, record_id: int) -> dict[str, list[Target]]:
    cheap = select_by_id_text(record_id)

    def at(port_list: list[int], requests: tuple[str, ...]) -> list[Target]:
        return [
            Target("mysql", p, request=r, database=DATABASE) for p in port_list for r in requests
        ]

    return {
        "connect": at(ports, (cheap,)),
        "expensive": at(ports, EXPENSIVE_SQL),
        "single-node": at([primary], EXPENSIVE_SQL),
    }


def _rpc_body(method: str, params: list[object]) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})


def _chain_targets(
    info: devnet.NetworkInfo, contract: str, record_id: int
) -> dict[str, list[Target]]:
    probe = chainside.open_ledger(info.directory, contract, 5.0)
    try:
        # the request behind Ledger.get_record(id): the record's log, by its id topic
        one = probe.log_filter([id_topic(record_id)], 0, "latest")
        every_record = probe.log_filter([], 0, "latest")
    finally:
        probe.chain.close()
    cheap = _rpc_body("eth_getLogs", [one])
    wide = [
        _rpc_body("eth_getLogs", [every_record]),
        _rpc_body("eth_getLogs", [{"fromBlock": "0x0", "toBlock": "latest"}]),
    ]
    ports = [n.http_port for n in info.nodes]

    def at(port_list: list[int], bodies: list[str]) -> list[Target]:
        return [Target("jsonrpc", p, request=b) for p in port_list for b in bodies]

    return {
        "connect": at(ports, [cheap]),
        "expensive": at(ports, wide),
        "single-node": at(ports[:1], wide),
    }


def start_system(
    name: str,
    stack: ExitStack,
    tmp: Path,
    data: chainside.PublishedData,
    network: devnet.NetworkInfo | None,
    query_timeout: float,
) -> SystemUnderTest:
    """Start ``name`` inside ``stack`` (stopped when it closes) with the published records."""
    rows = data.sql_rows()
    some_id = min(s.record_id for s in data.records)
    if name == "mariadb":
        db = stack.enter_context(MariaDBServer(tmp / name))
        db.load_records(rows)
        return SystemUnderTest(
            name,
            lambda: SqlClient(db.port, query_timeout),
            _sql_targets([db.port], db.port, some_id),
            {"mariadbd": db.pid},
        )
    if name == "mariadb-defended":
        db = stack.enter_context(
            MariaDBServer(tmp / name, grant_tables=True, extra_args=TUNED_MARIADB_ARGS)
        )
        db.load_records(rows)
        db.create_app_user(APP_USER_MAX_CONNECTIONS)
        front = stack.enter_context(HAProxyFront(tmp / f"{name}-front", db.port, FrontLimits()))
        return SystemUnderTest(
            name,
            lambda: SqlClient(front.port, query_timeout),
            _sql_targets([front.port], front.port, some_id),
            {"mariadbd": db.pid, "haproxy": front.pid},
        )
    if name == "mariadb-replicated":
        rs = stack.enter_context(ReplicatedSql(tmp / name))
        rs.load_records(rows)
        return SystemUnderTest(
            name,
            lambda: FailoverSqlClient(rs.ports, query_timeout),
            _sql_targets(rs.ports, rs.primary.port, some_id),
            {f"mariadbd:{i}": pid for i, pid in enumerate(rs.pids)},
        )
    if name == "geth" and network is not None:
        return SystemUnderTest(
            name,
            lambda: ChainClient(network.directory, data.contract, query_timeout),
            _chain_targets(network, data.contract, some_id),
            {f"geth:{n.name}": n.pid for n in network.nodes},
        )
    raise ChainsenseError(f"ddos: unknown system {name!r} (or geth without a network)")
