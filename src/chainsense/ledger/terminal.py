"""The mobile terminal (MT) client: sign, get countersigned, submit, with a durable outbox.

Every record goes through the states ``signed -> certified -> sent -> confirmed`` in a SQLite
outbox; a record is marked ``sent`` *before* its transaction goes out, so a crash or a node
outage at any point loses nothing: on restart :meth:`MobileTerminal.flush` picks every
unconfirmed record up again. Retrying is idempotent end to end: the CA returns the stored
countersignature for an identical record, and before re-sending a ``sent`` record the client
asks the contract whether its digest is already stored, or waits for the old transaction if a
node still holds it (a "duplicate record" revert is recognised the same way).
Records the CA or the contract refuse for good are marked ``rejected`` with the reason.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from chainsense.chain.errors import ChainError, RevertError
from chainsense.chain.keys import KeyPair
from chainsense.errors import ChainsenseError
from chainsense.ledger.ca import CAError, Countersignature
from chainsense.ledger.ca_client import CAUnavailableError
from chainsense.ledger.contract import Ledger
from chainsense.ledger.records import Record, record_from_event
from chainsense.ledger.sqlite_tx import write_transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    nonce INTEGER PRIMARY KEY,
    poi INTEGER NOT NULL, slot INTEGER NOT NULL, reading INTEGER NOT NULL,
    x INTEGER NOT NULL, y INTEGER NOT NULL,
    digest BLOB NOT NULL,
    mt_signature BLOB NOT NULL,
    ca_signature BLOB,
    state TEXT NOT NULL CHECK (state IN ('signed','certified','sent','confirmed','rejected')),
    tx_hash TEXT,
    record_id INTEGER,
    error TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Countersigner(Protocol):
    """The CA as the MT sees it: the core object or the HTTP client."""

    def countersign(self, record: Record, mt_signature: bytes) -> Countersignature: ...


@dataclass(frozen=True)
class FlushReport:
    certified: int
    confirmed: int
    already_stored: int
    rejected: int
    pending: int
    gas_used: int


class MobileTerminal:
    """One MT: its key, its outbox file, the CA it asks and the ledger it writes to."""

    def __init__(self, key: KeyPair, outbox: str | Path, ledger: Ledger, ca: Countersigner) -> None:
        self.key = key
        self.ledger = ledger
        self.ca = ca
        self.domain = ledger.domain
        self._db = sqlite3.connect(str(outbox), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        want = {
            "mt": key.address,
            "contract": self.domain.contract,
            "chain_id": str(self.domain.chain_id),
        }
        have = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if not have:
            self._db.executemany("INSERT INTO meta VALUES (?, ?)", list(want.items()))
        elif have != want:
            raise ChainsenseError(
                f"outbox: {Path(outbox).name} belongs to another MT/ledger ({have.get('mt')}, "
                f"{have.get('contract')})"
            )

    def close(self) -> None:
        self._db.close()

    # --- collecting --------------------------------------------------------------------------
    def next_nonce(self) -> int:
        row = self._db.execute("SELECT MAX(nonce) FROM outbox").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def collect(self, poi: int, slot: int, amount: float, x: float, y: float) -> Record:
        """Make, sign and store (durably) the record of one collection event."""
        with write_transaction(self._db) as db:
            nonce = self.next_nonce()
            record = record_from_event(self.key.address, poi, slot, amount, x, y, nonce)
            digest = record.digest(self.domain)
            db.execute(
                "INSERT INTO outbox(nonce, poi, slot, reading, x, y, digest, mt_signature, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'signed')",
                (
                    nonce,
                    record.poi,
                    record.slot,
                    record.reading,
                    record.x,
                    record.y,
                    digest,
                    self.key.sign_digest(digest),
                ),
            )
        return record

    def _record(self, row: tuple[int, ...]) -> Record:
        nonce, poi, slot, reading, x, y = row[:6]
        return Record(self.key.address, poi, slot, reading, x, y, nonce)

    # --- protocol steps ----------------------------------------------------------------------
    def certify(self) -> int:
        """Ask the CA to countersign every signed record (in nonce order); returns how many."""
        rows = self._db.execute(
            "SELECT nonce, poi, slot, reading, x, y, mt_signature FROM outbox "
            "WHERE state = 'signed' ORDER BY nonce"
        ).fetchall()
        done = 0
        for row in rows:
            record = self._record(row)
            try:
                cs = self.ca.countersign(record, bytes(row[6]))
            except CAError as exc:
                self._mark_rejected(record.nonce, f"CA: {exc.code}: {exc}")
                continue
            except CAUnavailableError:
                break  # CA down: keep the rest queued, submit what is already certified
            with write_transaction(self._db) as db:
                db.execute(
                    "UPDATE outbox SET ca_signature = ?, state = 'certified' WHERE nonce = ?",
                    (cs.ca_signature, record.nonce),
                )
            done += 1
        return done

    def submit(self) -> FlushReport:
        """Send every certified/sent record to the ledger and wait for the receipts."""
        rows = self._db.execute(
            "SELECT nonce, poi, slot, reading, x, y, ca_signature, state, tx_hash "
            "FROM outbox WHERE state IN ('certified', 'sent') ORDER BY nonce"
        ).fetchall()
        confirmed = already = rejected = gas = 0
        in_flight: list[tuple[Record, str]] = []
        chain = self.ledger.chain
        for row in rows:
            record = self._record(row)
            state, old_hash = row[7], row[8]
            try:
                if state == "sent":  # an earlier attempt may have reached the chain
                    if self._stored_now(record, old_hash):
                        already += 1
                        continue
                    if old_hash and chain.tx_known(old_hash):
                        in_flight.append((record, old_hash))  # still in a node's pool: wait
                        continue
                else:  # durably mark the attempt before making it
                    with write_transaction(self._db) as db:
                        db.execute(
                            "UPDATE outbox SET state = 'sent' WHERE nonce = ?", (record.nonce,)
                        )
                tx_hash = self.ledger.send_submit(record, bytes(row[6]), self.key)
            except RevertError as exc:
                stored = self._settle_revert(record, old_hash, exc)
                already += stored
                rejected += not stored
                continue
            except ChainError:
                break  # no node reachable: everything left stays queued for the next flush
            with write_transaction(self._db) as db:
                db.execute("UPDATE outbox SET tx_hash = ? WHERE nonce = ?", (tx_hash, record.nonce))
            in_flight.append((record, tx_hash))
        for record, tx_hash in in_flight:
            try:
                result = self.ledger.finish_submit(record, tx_hash)
            except RevertError as exc:
                stored = self._settle_revert(record, tx_hash, exc)
                already += stored
                rejected += not stored
                continue
            except ChainError:
                continue  # stays 'sent'; the next flush asks the chain again
            self._mark_confirmed(record.nonce, result.record_id, tx_hash)
            confirmed += 1
            gas += result.gas_used
        return FlushReport(0, confirmed, already, rejected, self.pending(), gas)

    def flush(self) -> FlushReport:
        """:meth:`certify` then :meth:`submit`; connection problems leave records queued.

        ``rejected`` counts refusals by the CA and by the contract in this flush.
        """
        before = self.counts().get("rejected", 0)
        certified = self.certify()
        report = self.submit()
        rejected = self.counts().get("rejected", 0) - before
        return FlushReport(
            certified,
            report.confirmed,
            report.already_stored,
            rejected,
            report.pending,
            report.gas_used,
        )

    def _settle_revert(self, record: Record, tx_hash: str | None, exc: RevertError) -> bool:
        """A reverted submit: True when the record is stored after all (an earlier attempt
        landed: "duplicate record"), else it is marked rejected with the contract's reason."""
        if self._stored_now(record, tx_hash):
            return True
        self._mark_rejected(record.nonce, f"contract: {exc.reason}")
        return False

    def _stored_now(self, record: Record, tx_hash: str | None) -> bool:
        rid = self.ledger.record_id_of(record)
        if rid:
            self._mark_confirmed(record.nonce, rid, tx_hash)
            return True
        return False

    def _mark_confirmed(self, nonce: int, record_id: int, tx_hash: str | None) -> None:
        with write_transaction(self._db) as db:
            db.execute(
                "UPDATE outbox SET state = 'confirmed', record_id = ?, tx_hash = ?, error = NULL "
                "WHERE nonce = ?",
                (record_id, tx_hash, nonce),
            )

    def _mark_rejected(self, nonce: int, reason: str) -> None:
        with write_transaction(self._db) as db:
            db.execute(
                "UPDATE outbox SET state = 'rejected', error = ? WHERE nonce = ?", (reason, nonce)
            )

    # --- inspection --------------------------------------------------------------------------
    def pending(self) -> int:
        """Records not yet confirmed and not rejected."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE state IN ('signed', 'certified', 'sent')"
        ).fetchone()
        return int(row[0])

    def counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall()
        return {s: int(n) for s, n in rows}

    def rejected(self) -> list[tuple[Record, str]]:
        rows = self._db.execute(
            "SELECT nonce, poi, slot, reading, x, y, error FROM outbox WHERE state = 'rejected' "
            "ORDER BY nonce"
        ).fetchall()
        return [(self._record(r), str(r[6])) for r in rows]

    def confirmed(self) -> list[tuple[Record, int]]:
        rows = self._db.execute(
            "SELECT nonce, poi, slot, reading, x, y, record_id FROM outbox "
            "WHERE state = 'confirmed' ORDER BY nonce"
        ).fetchall()
        return [(self._record(r), int(r[6])) for r in rows]
