"""Process helpers shared by everything that starts servers: free ports, pid checks, stopping.

Used by the geth launcher and by the experiments' database servers, so that both stop only the
process they started (a recycled pid is never signalled).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

#: the lowest port :func:`free_ports` hands out: above Ray's worker ports (10002-19999 by
#: default), which Ray takes for its workers and refuses as a cluster's own port
_LOWEST_PORT = 20_000
#: the kernel's default ephemeral range, used where /proc does not say
_EPHEMERAL_DEFAULT = (32_768, 60_999)


def ephemeral_range() -> tuple[int, int]:
    """The ports the kernel gives outgoing connections and ``bind(0)`` (ip_local_port_range)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return _EPHEMERAL_DEFAULT


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports on ``host`` that are free now, for servers to bind later.

    They are drawn at random below the kernel's ephemeral range. A port from ``bind(0)`` lies in
    that range, which the kernel also gives to every outgoing connection, so one opened between
    this call and the server's own bind (a geth node dialling a peer, a Ray worker, a client of
    another test) could take it: a node then dies on "address already in use". Below the range
    only another server can. Each port is checked by binding it; where the range leaves too few
    ports, the kernel's ``bind(0)`` ports are used instead.
    """
    socks: list[socket.socket] = []
    low = ephemeral_range()[0]
    try:
        if low - _LOWEST_PORT >= 16 * count:
            for port in random.SystemRandom().sample(range(_LOWEST_PORT, low), low - _LOWEST_PORT):
                if len(socks) == count:
                    break
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    s.bind((host, port))
                except OSError:
                    s.close()
                    continue
                socks.append(s)
        while len(socks) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def proc_cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None


def _reap(pid: int) -> bool:
    """Reap ``pid`` if it is our exited child; True when it is gone."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == pid


def pid_alive(pid: int, datadir: Path | None = None) -> bool:
    """True when ``pid`` runs (not a zombie) and, if ``datadir`` is given, is that node's geth."""
    if pid <= 0 or _reap(pid):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    if datadir is not None:
        cmd = proc_cmdline(pid)
        # an exiting process reads as an empty command line before it turns zombie: still ours
        # (taking it for a reused id let terminate() return while the process was still alive)
        if cmd and str(datadir) not in cmd:
            return False  # the id was reused by another process: not ours to signal
    return True


def terminate(pid: int, datadir: Path, timeout: float) -> None:
    """SIGTERM the node, wait up to ``timeout`` s, then SIGKILL; only if it is still that node."""
    if not pid_alive(pid, datadir):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid, datadir):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and pid_alive(pid, datadir):
        time.sleep(0.05)


def log_tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(ln.strip() for ln in text[-lines:])


def stop_child(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """Stop a server this process started: SIGTERM, SIGKILL after ``timeout`` s; reaped."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
