"""A replicated MariaDB set for the availability experiment: one primary and its replicas.

The chain side keeps four replicas of the records behind a failover client; to compare
replication with replication, the SQL side can run the same way: a primary with a binary log and
``replicas`` read-only servers replicating from it with MariaDB's own asynchronous replication
(GTID, from the primary's first event), each in its own scratch directory on a loopback port.
Records are written to the primary only; :meth:`ReplicatedSql.load_records` returns once every
replica holds all of them. Every member is stopped again on exit, also when set-up fails.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

import pymysql

from chainsense.errors import ChainsenseError
from chainsense.experiments.sqlserver import DATABASE, MariaDBServer

_REPLICA = ("--read-only",)


class ReplicatedSql:
    """``with ReplicatedSql(dir) as rs:`` ``rs.primary`` and ``rs.replicas`` are running."""

    def __init__(self, workdir: Path, replicas: int = 2, *, sync_timeout: float = 60.0) -> None:
        if not 1 <= replicas <= 4:
            raise ChainsenseError(f"replicas: must be in 1..4, got {replicas}")
        self.workdir = Path(workdir)
        self.sync_timeout = sync_timeout
        self.primary = MariaDBServer(self.workdir / "primary", server_id=1)
        self.replicas = [
            MariaDBServer(self.workdir / f"replica{i + 1}", server_id=i + 2, extra_args=_REPLICA)
            for i in range(replicas)
        ]
        self._stack = ExitStack()

    @property
    def members(self) -> list[MariaDBServer]:
        return [self.primary, *self.replicas]

    @property
    def ports(self) -> list[int]:
        return [m.port for m in self.members]

    @property
    def pids(self) -> list[int]:
        return [m.pid for m in self.members]

    def start(self) -> ReplicatedSql:
        with ExitStack() as stack:
            for member in self.members:
                stack.enter_context(member)
            for replica in self.replicas:
                replica.admin(
                    f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={self.primary.port}, "
                    "MASTER_USER='replication', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos, "
                    "MASTER_CONNECT_RETRY=1",
                    "START SLAVE",
                )
            self._stack = stack.pop_all()
        return self

    def stop(self) -> None:
        self._stack.close()

    def __enter__(self) -> ReplicatedSql:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def load_records(self, rows: Iterable[Sequence[Any]]) -> int:
        """Write the records on the primary; wait (bounded) until every replica has them."""
        count = self.primary.load_records(rows)
        deadline = time.monotonic() + self.sync_timeout
        for replica in self.replicas:
            while _count(replica) != count:
                if time.monotonic() > deadline:
                    raise ChainsenseError(
                        f"mariadb-replicated: a replica did not catch up within "
                        f"{self.sync_timeout:.0f}s: {_replication_state(replica)}"
                    )
                time.sleep(0.2)
        return count


def _count(server: MariaDBServer) -> int:
    try:
        with server.connect(timeout=2.0) as conn, conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM {DATABASE}.records")
            (n,) = cur.fetchone()  # type: ignore[misc]
        return int(n)
    except pymysql.MySQLError:  # the table is not there yet
        return -1


def _replication_state(server: MariaDBServer) -> str:
    conn = server.connect(timeout=2.0, database=None)
    with conn, conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute("SHOW SLAVE STATUS")
        row = cur.fetchone() or {}
    keys = ("Slave_IO_Running", "Slave_SQL_Running", "Last_IO_Error", "Last_SQL_Error")
    return ", ".join(f"{k}={row.get(k, '?')}" for k in keys)
