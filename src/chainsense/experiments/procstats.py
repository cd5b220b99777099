"""CPU and memory of the servers under test, read from ``/proc`` while a flood runs.

What availability costs is part of the answer: a sampler thread reads the CPU time and resident
memory of every server process of a system (all geth nodes; the SQL server and its front; every
replication member) a few times a second. CPU is reported as percent of one core over the
sampled window, memory as the peak of the summed resident sets. A process that is gone (killed
on purpose, or never started) simply stops counting.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    """Percent of one core used (summed over the processes) and peak summed RSS in MiB."""

    cpu_pct: float
    rss_mib: float


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of ``pid`` in seconds, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14, 15)


def rss_mib(pid: int) -> float | None:
    """Resident set size of ``pid`` in MiB, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class UsageSampler:
    """``with UsageSampler(pids) as s: ...`` then ``s.usage``."""

    def __init__(self, pids: list[int], interval: float = 0.25) -> None:
        self.pids = list(pids)
        self.interval = interval
        self.usage = Usage(float("nan"), float("nan"))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="usage-sampler", daemon=True)
        self._peak = 0.0
        self._cpu0: dict[int, float] = {}
        self._cpu1: dict[int, float] = {}
        self._t0 = 0.0

    def _sample(self) -> None:
        total = 0.0
        for pid in self.pids:
            cpu, rss = cpu_seconds(pid), rss_mib(pid)
            if cpu is not None:
                self._cpu1[pid] = cpu
                self._cpu0.setdefault(pid, cpu)
            total += rss or 0.0
        self._peak = max(self._peak, total)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> UsageSampler:
        self._t0 = time.monotonic()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sample()
        wall = max(time.monotonic() - self._t0, 1e-9)
        used = sum(self._cpu1[p] - self._cpu0[p] for p in self._cpu1)
        self.usage = Usage(100.0 * used / wall, self._peak)
