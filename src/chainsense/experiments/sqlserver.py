"""A private MariaDB server for the availability experiment's control group.

The experiment needs a real SQL server with its *default* connection limit (151), bound to
127.0.0.1 on a free port, holding the same records as the chain. This starts one from the Debian
package's binaries in a scratch directory (``mariadb-install-db`` + ``mariadbd``, no system
config read, no grant tables: the server is reachable on loopback only and lives for one run),
and always stops it again (SIGTERM, then SIGKILL) and removes its files.

The same class also starts the other SQL setups of the experiment: an operator-tuned server
(``extra_args`` such as a thread pool and ``max_connections``, and ``grant_tables=True`` so that
per-account limits are enforced: clients then log in as an account that
:meth:`MariaDBServer.create_app_user` made) and replication members (``server_id``: binary log on,
see :mod:`chainsense.experiments.sqlcluster`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pymysql

from chainsense.devnet import free_ports, pid_alive, stop_child
from chainsense.errors import ChainsenseError
from chainsense.experiments.flood import MYSQL_USER

DATABASE = "chainsense"
APP_USER = MYSQL_USER
COLUMNS = ("id", "mt", "poi", "slot", "reading", "x", "y", "nonce", "digest")
CREATE_TABLE = (
    "CREATE TABLE records (id BIGINT UNSIGNED PRIMARY KEY, mt CHAR(42) NOT NULL, "
    "poi INT UNSIGNED NOT NULL, slot INT UNSIGNED NOT NULL, reading BIGINT UNSIGNED NOT NULL, "
    "x BIGINT UNSIGNED NOT NULL, y BIGINT UNSIGNED NOT NULL, nonce BIGINT UNSIGNED NOT NULL, "
    "digest CHAR(66) NOT NULL) ENGINE=InnoDB"
)
SELECT_BY_ID = "SELECT id, mt, poi, slot, reading, x, y, nonce, digest FROM records WHERE id = %s"


def select_by_id_text(record_id: int) -> str:
    """:data:`SELECT_BY_ID` as literal SQL text, for raw protocol clients (the flood)."""
    return SELECT_BY_ID % int(record_id)


def _binary(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ChainsenseError(
        f"mariadb: {name} not found (install the mariadb-server package: "
        "scripts/install-system-packages.sh)"
    )


def mariadb_available() -> bool:
    """True when the MariaDB server binaries are installed."""
    try:
        _binary("mariadbd")
        _binary("mariadb-install-db")
    except ChainsenseError:
        return False
    return True


class MariaDBServer:
    """``with MariaDBServer() as db:`` a fresh server on 127.0.0.1:``db.port``; gone afterwards."""

    host = "127.0.0.1"

    def __init__(
        self,
        workdir: str | Path | None = None,
        *,
        start_timeout: float = 60.0,
        extra_args: Sequence[str] = (),
        grant_tables: bool = False,
        server_id: int = 0,
    ) -> None:
        self._own_dir = workdir is None
        self.workdir = (
            Path(tempfile.mkdtemp(prefix="chainsense-mariadb-"))
            if workdir is None
            else Path(workdir)
        )
        self.start_timeout = start_timeout
        self.extra_args = tuple(extra_args)
        self.grant_tables = grant_tables
        self.server_id = server_id
        # without grant tables any name logs in; with them the set-up runs as root
        self.admin_user = "root" if grant_tables else APP_USER
        self.port = 0
        self.pid = 0
        self._proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> MariaDBServer:
        datadir = self.workdir / "data"
        datadir.mkdir(parents=True, exist_ok=True)
        log = self.workdir / "install.log"
        with log.open("wb") as f:
            out = subprocess.run(
                [
                    _binary("mariadb-install-db"),
                    "--no-defaults",
                    f"--datadir={datadir}",
                    "--user=root",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                ],
                stdout=f,
                stderr=subprocess.STDOUT,
                timeout=self.start_timeout,
            )
        if out.returncode != 0:
            self.stop()
            raise ChainsenseError(f"mariadb: mariadb-install-db failed: {_tail(log)}")
        (self.port,) = free_ports(1)
        errlog = self.workdir / "mariadbd.err"
        access = [] if self.grant_tables else ["--skip-grant-tables"]
        binlog = (
            [f"--server-id={self.server_id}", f"--log-bin={self.workdir / 'binlog'}"]
            if self.server_id
            else ["--skip-log-bin"]
        )
        self._proc = subprocess.Popen(
            [
                _binary("mariadbd"),
                "--no-defaults",
                f"--datadir={datadir}",
                f"--socket={self.workdir / 'mysqld.sock'}",
                f"--pid-file={self.workdir / 'mysqld.pid'}",
                f"--log-error={errlog}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                "--user=root",
                *access,
                *binlog,
                "--innodb-buffer-pool-size=32M",
                # max_connections stays at the server default (151) unless extra_args tune it
                *self.extra_args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.pid = self._proc.pid
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._proc.poll() is not None:
                msg = _tail(errlog)
                self.stop()
                raise ChainsenseError(f"mariadb: server exited during start-up: {msg}")
            try:
                conn = self.connect(timeout=1.0, database=None, user=self.admin_user)
                with conn, conn.cursor() as cur:
                    cur.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
                return self
            except pymysql.MySQLError:
                if time.monotonic() > deadline:
                    msg = _tail(errlog)
                    self.stop()
                    raise ChainsenseError(f"mariadb: not accepting connections: {msg}") from None
                time.sleep(0.2)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (clean InnoDB shutdown), SIGKILL after ``timeout`` s; remove scratch files."""
        stop_child(self._proc, timeout)
        self._proc = None
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the server at once (a crashed node); :meth:`stop` still cleans up."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and pid_alive(self.pid)

    def __enter__(self) -> MariaDBServer:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- data ------------------------------------------------------------------------------------
    def connect(
        self, timeout: float = 5.0, database: str | None = DATABASE, user: str = APP_USER
    ) -> pymysql.Connection[Any]:
        """A new client connection from 127.0.0.1 (no password; loopback only)."""
        return sql_connect(self.port, timeout, database, user)

    def load_records(self, rows: Iterable[Sequence[Any]]) -> int:
        """Create the ``records`` table and insert ``rows`` (tuples in :data:`COLUMNS` order)."""
        rows = [tuple(r) for r in rows]
        with self.connect(user=self.admin_user) as conn, conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS records")
            cur.execute(CREATE_TABLE)
            placeholders = ", ".join(["%s"] * len(COLUMNS))
            cur.executemany(f"INSERT INTO records VALUES ({placeholders})", rows)
        return len(rows)

    def admin(self, *statements: str) -> None:
        """Run set-up statements as the administrator (root, or anyone without grant tables)."""
        with self.connect(database=None, user=self.admin_user) as conn, conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)

    def create_app_user(self, max_user_connections: int) -> None:
        """The clients' account, read-only on the records, with its own connection limit."""
        self.admin(
            f"CREATE USER '{APP_USER}'@'%' WITH MAX_USER_CONNECTIONS {int(max_user_connections)}",
            f"GRANT SELECT ON {DATABASE}.* TO '{APP_USER}'@'%'",
        )

    def variable(self, name: str) -> str:
        """A server variable's value (``name`` is a plain identifier, checked here)."""
        if not name.replace("_", "").isalnum():
            raise ChainsenseError(f"mariadb: not a variable name: {name!r}")
        with self.connect(database=None, user=self.admin_user) as conn, conn.cursor() as cur:
            cur.execute(f"SELECT @@{name}")
            (value,) = cur.fetchone()  # type: ignore[misc]
        return str(value)

    def max_connections(self) -> int:
        return int(self.variable("max_connections"))


def sql_connect(
    port: int, timeout: float, database: str | None = DATABASE, user: str = APP_USER
) -> pymysql.Connection[Any]:
    """A new connection to a loopback SQL port (a server or the front), from 127.0.0.1:
    legitimate clients keep that address, attackers come from others."""
    return pymysql.connect(
        host="127.0.0.1",
        port=port,
        bind_address="127.0.0.1",
        user=user,
        database=database,
        connect_timeout=timeout,
        read_timeout=timeout,
        write_timeout=timeout,
        autocommit=True,
    )


def _tail(path: Path, lines: int = 4) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    return "(no log)"
