"""One SQLite write transaction, shared by the CA registry and the MT outbox."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` takes the write lock before anything is read, so what the block
    checks still holds when it commits; any exception rolls the whole block back.

    ``db`` must be opened with ``isolation_level=None`` (transactions managed here).
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
