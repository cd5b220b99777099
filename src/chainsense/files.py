"""Writing files so that a crash never leaves half of one: the one atomic write of the project."""

from __future__ import annotations

import os
from pathlib import Path


def atomic_write(path: str | Path, data: str | bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory, flushed to disk
    and renamed over ``path``: readers (and a rerun after a crash) see the old file or the new
    one, never a truncated one. Text is written as UTF-8. ``mode`` (e.g. 0o600 for a secret) is
    set before any byte is written, so the data is never readable under a wider mode."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 if mode is None else mode)
    with os.fdopen(fd, "wb") as fh:
        if mode is not None:
            os.fchmod(fh.fileno(), mode)  # a leftover temporary file keeps its old mode
        fh.write(raw)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, p)
    return p
