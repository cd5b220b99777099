"""An IPS-like front for the SQL server: HAProxy (Debian package) with per-source limits.

This is what an operator would put in front of a database reachable by many clients: a TCP
proxy that tracks every source address in a stick table and refuses a new connection from a
source that opens connections faster than ``rate_per_s`` or holds more than ``concurrent`` at
once; the server behind it gets at most ``server_maxconn`` connections and the rest wait in a
bounded queue (``queue_len`` entries, ``queue_timeout_s`` each) instead of reaching the server.
The process runs in the foreground from a config in a scratch directory, listens on 127.0.0.1
only, and is always stopped again.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from chainsense.devnet import free_ports, stop_child
from chainsense.errors import ChainsenseError, ConfigError


@dataclass(frozen=True)
class FrontLimits:
    """The front's per-source and server-side limits (defaults: an operator's first guess that
    leaves a well-behaved client, ~20 new connections/s, untouched)."""

    rate_per_s: int = 50
    concurrent: int = 20
    server_maxconn: int = 60
    queue_len: int = 120
    queue_timeout_s: float = 1.0

    def __post_init__(self) -> None:
        for name, low, high in (
            ("rate_per_s", 1, 100_000),
            ("concurrent", 1, 10_000),
            ("server_maxconn", 1, 10_000),
            ("queue_len", 0, 100_000),
        ):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigError(f"front.{name}", f"must be in {low}..{high}, got {value}")
        if not 0 < self.queue_timeout_s <= 30:
            raise ConfigError(
                "front.queue_timeout_s", f"must be in (0, 30], got {self.queue_timeout_s}"
            )


def haproxy_binary() -> str | None:
    """The haproxy executable, or None when the package is not installed."""
    for candidate in (shutil.which("haproxy"), "/usr/sbin/haproxy"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def front_config(listen_port: int, server_port: int, limits: FrontLimits) -> str:
    """The HAProxy configuration: TCP mode, a stick table per source, a bounded server queue."""
    ms = int(limits.queue_timeout_s * 1000)
    return f"""global
    maxconn 4000

defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout queue {ms}ms

frontend sql
    bind 127.0.0.1:{listen_port}
    stick-table type ip size 100k expire 30s store conn_rate(1s),conn_cur
    tcp-request connection track-sc0 src
    tcp-request connection reject if {{ sc0_conn_rate gt {limits.rate_per_s} }}
    tcp-request connection reject if {{ sc0_conn_cur gt {limits.concurrent} }}
    default_backend db

backend db
    server db1 127.0.0.1:{server_port} maxconn {limits.server_maxconn} maxqueue {limits.queue_len}
"""


class HAProxyFront:
    """``with HAProxyFront(dir, server_port) as front:`` clients connect to ``front.port``."""

    host = "127.0.0.1"

    def __init__(
        self,
        workdir: Path,
        server_port: int,
        limits: FrontLimits | None = None,
        *,
        start_timeout: float = 20.0,
    ) -> None:
        self.workdir = Path(workdir)
        self.server_port = server_port
        self.limits = limits or FrontLimits()
        self.start_timeout = start_timeout
        self.port = 0
        self.pid = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> HAProxyFront:
        binary = haproxy_binary()
        if binary is None:
            raise ChainsenseError(
                "haproxy: not installed (the haproxy package: scripts/install-system-packages.sh)"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.port,) = free_ports(1)
        cfg = self.workdir / "haproxy.cfg"
        cfg.write_text(front_config(self.port, self.server_port, self.limits), encoding="utf-8")
        log = self.workdir / "haproxy.log"
        with log.open("wb") as out:
            self._proc = subprocess.Popen(
                [binary, "-db", "-f", str(cfg)],  # -db: foreground, this process owns it
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.pid = self._proc.pid
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._proc.poll() is not None:
                msg = log.read_text(errors="replace").strip()[-400:]
                self.stop()
                raise ChainsenseError(f"haproxy: exited during start-up: {msg}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise ChainsenseError("haproxy: not accepting connections") from None
                time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (stop now, closing every connection), SIGKILL after ``timeout`` s."""
        stop_child(self._proc, timeout)
        self._proc = None

    def __enter__(self) -> HAProxyFront:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
