"""The SQL side's defences, started for real: the HAProxy front's per-source limits and the
replicated set's failover client (slow: real MariaDB servers, a real HAProxy, real floods)."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import pymysql
import pytest

from chainsense.devnet import pid_alive
from chainsense.experiments.ddos_clients import FailoverSqlClient, SqlClient
from chainsense.experiments.ddos_systems import TUNED_MARIADB_ARGS
from chainsense.experiments.flood import MYSQL_USER, Flood, FloodSpec, Target
from chainsense.experiments.haproxy import FrontLimits, HAProxyFront, haproxy_binary
from chainsense.experiments.sqlcluster import ReplicatedSql
from chainsense.experiments.sqlserver import (
    DATABASE,
    MariaDBServer,
    mariadb_available,
    select_by_id_text,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not mariadb_available(), reason="mariadb-server not installed"),
]
ROWS = [(i, "0x" + "a" * 40, i % 7, i, 1000 + i, 5, 6, i, "0x" + f"{i:064x}") for i in range(1, 31)]


def _connect_from(source: str, port: int) -> pymysql.Connection:  # type: ignore[type-arg]
    return pymysql.connect(
        host="127.0.0.1",
        port=port,
        bind_address=source,
        user=MYSQL_USER,
        database=DATABASE,
        connect_timeout=2,
        read_timeout=2,
    )


@pytest.mark.skipif(haproxy_binary() is None, reason="haproxy not installed")
def test_front_refuses_a_source_over_its_limit_while_another_is_served(tmp_path: Path) -> None:
    limits = FrontLimits(rate_per_s=1000, concurrent=4, server_maxconn=20, queue_len=20)
    with ExitStack() as stack:
        db = stack.enter_context(
            MariaDBServer(tmp_path / "db", grant_tables=True, extra_args=TUNED_MARIADB_ARGS)
        )
        db.load_records(ROWS)
        db.create_app_user(50)
        front = stack.enter_context(HAProxyFront(tmp_path / "front", db.port, limits))
        held, refused = [], 0
        for _ in range(8):  # one source holds connections: the first 4 pass, then it is refused
            try:
                held.append(stack.enter_context(_connect_from("127.0.0.2", front.port)))
            except pymysql.err.OperationalError:
                refused += 1
        assert len(held) == 4 and refused == 4
        # ... while a legitimate client from another address is served, correctly
        assert SqlClient(front.port, 2.0).query(7) == ROWS[6]
        # and a third address has its own allowance
        with _connect_from("127.0.0.3", front.port) as conn, conn.cursor() as cur:
            cur.execute(select_by_id_text(3))
            assert cur.fetchone() == ROWS[2]
        # behind the front, the server runs as tuned (not the defaults the plain system keeps)
        assert db.max_connections() == 300 and db.variable("thread_handling") == "pool-of-threads"
        pids = (db.pid, front.pid)
    assert not any(pid_alive(p) for p in pids)


def test_front_refuses_a_source_over_its_connection_rate(tmp_path: Path) -> None:
    if haproxy_binary() is None:
        pytest.skip("haproxy not installed")
    limits = FrontLimits(rate_per_s=5, concurrent=100)
    with MariaDBServer(tmp_path / "db") as db, HAProxyFront(tmp_path / "f", db.port, limits) as f:
        db.load_records(ROWS)
        outcomes = []
        for _ in range(12):  # well over 5 new connections within a second, each closed at once
            try:
                _connect_from("127.0.0.9", f.port).close()
                outcomes.append(True)
            except pymysql.err.OperationalError:
                outcomes.append(False)
        assert outcomes[:5] == [True] * 5 and not any(outcomes[6:])
        assert SqlClient(f.port, 2.0).query(1) == ROWS[0]


def test_a_replica_killed_during_a_flood_is_stepped_around(tmp_path: Path) -> None:
    with ReplicatedSql(tmp_path / "rs") as rs:
        rs.load_records(ROWS)
        targets = [
            Target("mysql", p, request=select_by_id_text(1), database=DATABASE) for p in rs.ports
        ]
        flood = Flood(targets, FloodSpec(rate=150, duration=4.0, processes=2, hold_s=0.2))
        client = FailoverSqlClient(rs.ports, timeout=2.0)
        answers = []
        flood.start()
        try:
            t0 = time.monotonic()
            killed = False
            while time.monotonic() - t0 < 3.5:
                if not killed and time.monotonic() - t0 > 1.0:
                    rs.replicas[0].kill()  # a crashed replica, mid-flood
                    killed = True
                rid = len(answers) % len(ROWS) + 1
                answers.append(client.query(rid) == ROWS[rid - 1])
                time.sleep(0.03)
        finally:
            stats = flood.join()
        assert not rs.replicas[0].running
        assert len(answers) > 30 and all(answers)  # every read answered, correctly
        assert client._down_until[1] > 0  # the dead replica was tried and benched
        assert stats.launched > 0 and flood.killed == 0  # attackers ended by themselves
        pids = rs.pids
    assert not any(pid_alive(p) for p in pids)
