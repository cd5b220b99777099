"""The legitimate clients of the availability experiment, one kind per system.

Every query is a fresh connection (a new client arriving), so legitimate clients compete with
the flood for connection slots the same way on every system. ``query(id)`` returns the record as
an SQL row tuple, so answers of every system compare with the same expected rows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pymysql

from chainsense.experiments.chainside import open_ledger, sql_row
from chainsense.experiments.sqlserver import SELECT_BY_ID, sql_connect

# what a node that is down, full or hung raises: the next replica is tried
_SQL_CONNECTION_ERRORS = (pymysql.err.OperationalError, pymysql.err.InterfaceError, OSError)


class Client:
    """A legitimate client of one system; ``query(id)`` returns a comparable value."""

    def query(self, record_id: int) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        """Release the client."""


class SqlClient(Client):
    """A client of one SQL port (a server, or the front before it): one indexed select."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port, self.timeout = port, timeout

    def query(self, record_id: int) -> Any:
        with sql_connect(self.port, self.timeout) as conn, conn.cursor() as cur:
            cur.execute(SELECT_BY_ID, (record_id,))
            return cur.fetchone()


class FailoverSqlClient(Client):
    """A client of a replicated SQL set with the chain side's failover idea: reads go
    round-robin over every member; a member that refuses, fails or hangs is benched for
    ``cooldown`` seconds and the next one is tried, each try with half the query's time budget
    (so one failover still fits in it)."""

    def __init__(self, ports: Sequence[int], timeout: float, cooldown: float = 1.0) -> None:
        self.ports = list(ports)
        self.timeout, self.cooldown = timeout, cooldown
        self._down_until = [0.0] * len(self.ports)
        self._next = 0

    def _order(self) -> list[int]:
        n = len(self.ports)
        start, self._next = self._next, (self._next + 1) % n
        order = [(start + k) % n for k in range(n)]
        now = time.monotonic()
        healthy = [i for i in order if self._down_until[i] <= now]
        return healthy + [i for i in order if self._down_until[i] > now]

    def query(self, record_id: int) -> Any:
        deadline = time.monotonic() + self.timeout
        error: BaseException = TimeoutError("timed out: no member answered in time")
        for i in self._order():
            left = deadline - time.monotonic()
            if left <= 0.01:
                break
            try:
                conn = sql_connect(self.ports[i], min(self.timeout / 2, left))
                with conn, conn.cursor() as cur:
                    cur.execute(SELECT_BY_ID, (record_id,))
                    return cur.fetchone()
            except _SQL_CONNECTION_ERRORS as exc:
                self._down_until[i] = time.monotonic() + self.cooldown
                error = exc
        raise error


class ChainClient(Client):
    """A client of the geth network: the ledger client with failover, a fresh connection per
    query, ``get_record(id)``."""

    def __init__(self, netdir: Path, contract: str, timeout: float) -> None:
        # Each endpoint gets half the budget, so one failover still fits in the timeout.
        self.ledger = open_ledger(netdir, contract, timeout=timeout / 2)

    def query(self, record_id: int) -> Any:
        try:
            return sql_row(self.ledger.get_record(record_id))
        finally:
            self.ledger.chain.close()  # next query opens a fresh connection, as SQL clients do

    def close(self) -> None:
        self.ledger.chain.close()
