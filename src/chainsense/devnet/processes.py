"""Process helpers shared by everything that starts servers: free ports, pid checks, stopping.

Used by the geth launcher and by the experiments' database servers, so that both stop only the
process they started (a recycled pid is never signalled).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ask the kernel for ``count`` distinct free TCP ports on ``host``."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
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
