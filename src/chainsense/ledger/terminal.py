"""The mobile terminal (MT) client: sign, get countersigned, submit, with a durable outbox.

Every record goes through the states ``signed -> certified -> sent -> confirmed`` in a SQLite
outbox; a record is marked ``sent`` *before* its transaction goes out, so a crash or a node
outage at any point loses nothing: on restart :meth:`MobileTerminal.flush` picks every
unconfirmed record up again. Retrying is idempotent end to end: the CA returns the stored
countersignature for an identical record, and before re-sending a ``sent`` record the client
asks the contract whether its digest is already stored, or waits for the old transaction if a
node still holds it (a "duplicate record" revert is recognised the same way).
Records the CA or the contract refuse for good are marked ``rejected`` with the reason.

Nonces are numbered from the outbox file, but the CA accepts only nonces above the last one it
countersigned for the MT, which other clients move too (another outbox file of the same MT, a
``ledger submit --batch``). A ``stale_nonce`` refusal is therefore no final answer for a record
that is only ``signed``: the CA answers a record it has countersigned before with its stored
countersignature, so a refused record was never countersigned; unless the contract already
holds its digest, the terminal asks the CA for the MT's last nonce and renumbers every
``signed`` record above it (in collection order, re-signed, in one write transaction), then
retries. A record with a CA signature is never renumbered: the signature covers its nonce.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from chainsense.chain.errors import ChainError
from chainsense.chain.keys import KeyPair
from chainsense.errors import ChainsenseError
from chainsense.ledger.ca import CAError, Countersignature
from chainsense.ledger.ca_client import CAUnavailableError
from chainsense.ledger.contract import Ledger
from chainsense.ledger.pipeline import Submitter, mark_rejected
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


OUTBOX_NONCE_LIMIT = 2**63
"""Nonces the outbox can hold: its ``nonce INTEGER PRIMARY KEY`` is a signed 64-bit integer
(the CA and the contract go up to 2**64 - 1)."""

STALE_RETRIES = 3
"""Renumber-and-retry rounds per :meth:`MobileTerminal.certify` when the CA's nonce keeps moving
(another client countersigning for the same MT at the same time); the rest stays queued."""

CERTIFY_GROUP = 256
"""Records sent to the CA(s) in one request, and their countersignatures written to the outbox in
one transaction (one fsync, not one a record)."""

_STALE_REJECTION = "CA: stale_nonce:*"  # a GLOB pattern: "_" is literal there, not in LIKE


class Countersigner(Protocol):
    """The CA as the MT sees it: the core object, the HTTP client or a k-of-n quorum."""

    def countersign_many(
        self, items: Sequence[tuple[Record, bytes]]
    ) -> tuple[list[Countersignature], CAError | None]:
        """Countersignatures of the items in order, up to the first refusal (and it)."""
        ...

    def last_nonce(self, address: str) -> int | None:
        """The last nonce countersigned for ``address`` (-1: none), None when unregistered."""
        ...


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
        # one thread at a time, but not always the one that opened it (sessions flush MTs in a
        # thread pool)
        self._db = sqlite3.connect(str(outbox), isolation_level=None, check_same_thread=False)
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
        #: sends and receipts of the certified records (window, on_confirmed hook: see there)
        self.pipeline = Submitter(self._db, key, ledger)
        # Versions before nonce renumbering marked a stale_nonce refusal as final. Such a record
        # was never countersigned (no CA signature): queue it again, certify() renumbers it.
        with write_transaction(self._db) as db:
            db.execute(
                "UPDATE outbox SET state = 'signed', error = NULL WHERE state = 'rejected' "
                "AND ca_signature IS NULL AND error GLOB ?",
                (_STALE_REJECTION,),
            )

    def close(self) -> None:
        self._db.close()

    # --- collecting --------------------------------------------------------------------------
    def next_nonce(self) -> int:
        row = self._db.execute("SELECT MAX(nonce) FROM outbox").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def collected(self) -> int:
        """How many records this outbox holds, in any state (one per :meth:`collect`)."""
        return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def collect(self, poi: int, slot: int, amount: float, x: float, y: float) -> Record:
        """Make, sign and store (durably) the record of one collection event.

        Its nonce follows the outbox's highest; :meth:`certify` renumbers it if the CA has
        countersigned higher nonces for this MT in the meantime.
        """
        with write_transaction(self._db) as db:
            nonce = self.next_nonce()
            if nonce >= OUTBOX_NONCE_LIMIT:
                raise ChainsenseError(
                    f"nonce: the next record of {self.key.address} would have nonce {nonce}; "
                    f"the outbox holds nonces below 2**63 ({OUTBOX_NONCE_LIMIT})"
                )
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

    def collect_many(self, events: Sequence[tuple[int, int, float, float, float]]) -> None:
        """:meth:`collect` for each ``(poi, slot, amount, x, y)``, in one write transaction."""
        with write_transaction(self._db) as db:
            first = self.next_nonce()
            rows = []
            for i, (poi, slot, amount, x, y) in enumerate(events):
                record = record_from_event(self.key.address, poi, slot, amount, x, y, first + i)
                digest = record.digest(self.domain)
                signature = self.key.sign_digest(digest)
                rows.append((*record.as_tuple()[1:6], record.nonce, digest, signature))
            if rows and rows[-1][5] >= OUTBOX_NONCE_LIMIT:
                raise ChainsenseError(
                    f"nonce: the records of {self.key.address} would reach nonce {rows[-1][5]}; "
                    f"the outbox holds nonces below 2**63 ({OUTBOX_NONCE_LIMIT})"
                )
            db.executemany(
                "INSERT INTO outbox(poi, slot, reading, x, y, nonce, digest, mt_signature, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'signed')",
                rows,
            )

    def _record(self, row: tuple[int, ...]) -> Record:
        nonce, poi, slot, reading, x, y = row[:6]
        return Record(self.key.address, poi, slot, reading, x, y, nonce)

    # --- protocol steps ----------------------------------------------------------------------
    def certify(self) -> int:
        """Ask the CA to countersign every signed record (in nonce order); returns how many.

        A ``stale_nonce`` refusal renumbers the signed records above the CA's last nonce and
        retries (see the module docstring); a refused record whose digest the contract already
        holds is marked confirmed instead.
        """
        return self._certify()[0]

    def _certify(self) -> tuple[int, int]:
        """:meth:`certify`; returns (countersigned, found already stored on chain).

        Countersignatures are written in groups (one transaction per :data:`CERTIFY_GROUP`, and
        before any renumbering, which must see them): a crash loses at most some answers,
        which the CA gives again for the same records.
        """
        answers: list[tuple[bytes, int]] = []
        try:
            return self._certify_rounds(answers)
        finally:
            self._save_certified(answers)

    def _save_certified(self, answers: list[tuple[bytes, int]]) -> None:
        if answers:
            with write_transaction(self._db) as db:
                db.executemany(
                    "UPDATE outbox SET ca_signature = ?, state = 'certified' WHERE nonce = ?",
                    answers,
                )
            answers.clear()

    def _certify_rounds(self, answers: list[tuple[bytes, int]]) -> tuple[int, int]:
        done = found = rounds = 0
        while True:
            rows = self._db.execute(
                "SELECT nonce, poi, slot, reading, x, y, mt_signature FROM outbox "
                "WHERE state = 'signed' ORDER BY nonce"
            ).fetchall()
            again = False
            for lo in range(0, len(rows), CERTIFY_GROUP):
                items = [(self._record(r), bytes(r[6])) for r in rows[lo : lo + CERTIFY_GROUP]]
                try:
                    signed, refusal = self.ca.countersign_many(items)
                except CAUnavailableError:
                    return done, found  # CA down: keep the rest queued
                answers.extend((cs.ca_signature, cs.record.nonce) for cs in signed)
                done += len(signed)
                self._save_certified(answers)
                if len(signed) == len(items):
                    continue
                if refusal is None:
                    return done, found  # too few CAs answered for the rest: keep it queued
                record = items[len(signed)][0]
                if refusal.code != "stale_nonce":
                    self._mark_rejected(record.nonce, f"CA: {refusal.code}: {refusal}")
                    again = True  # the records after it were not asked yet
                    break
                # The CA knows no record with this digest (it would have answered with its
                # countersignature), so this record was never countersigned: renumber it...
                try:
                    if self._stored_now(record, None):  # ...unless it is on chain already
                        found += 1
                        again = True
                        break
                except ChainError:
                    return done, found  # cannot tell: keep it queued
                if rounds == STALE_RETRIES:
                    return done, found  # the CA keeps moving: the rest stays queued
                rounds += 1
                try:
                    last = self.ca.last_nonce(self.key.address)
                except CAUnavailableError:
                    return done, found
                if last is None:  # unregistered since: the next flush's request says so
                    return done, found
                again = self._renumber(last) > 0
                if not again:
                    return done, found  # the CA's answers disagree: leave it queued
                break
            if not again:
                return done, found

    def _renumber(self, ca_last: int) -> int:
        """Give the ``signed`` records nonces above ``ca_last`` (the CA's last nonce for this MT)
        and above every other record of the outbox, keeping their order, and re-sign them (the
        MT signature covers the nonce); returns how many moved.

        Only records that are just signed move (a CA signature is bound to its nonce); a record
        moves only as far as needed. One write transaction: a crash leaves the old numbering or
        the new one. The updates go from the highest nonce down so that no new nonce meets one
        not yet moved.
        """
        with write_transaction(self._db) as db:
            top = db.execute("SELECT MAX(nonce) FROM outbox WHERE state != 'signed'").fetchone()[0]
            floor = ca_last if top is None else max(ca_last, int(top))
            rows = db.execute(
                "SELECT nonce, poi, slot, reading, x, y FROM outbox "
                "WHERE state = 'signed' ORDER BY nonce"
            ).fetchall()
            moves: list[tuple[Record, int]] = []
            for row in rows:
                record = self._record(row)
                new = max(record.nonce, floor + 1)
                if new != record.nonce:
                    moves.append((record, new))
                floor = new
            if moves and moves[-1][1] >= OUTBOX_NONCE_LIMIT:
                raise ChainsenseError(
                    f"nonce: the CA has countersigned up to nonce {ca_last} for "
                    f"{self.key.address}; {len(moves)} queued records would need nonces up to "
                    f"{moves[-1][1]}, but the outbox holds nonces below 2**63 "
                    f"({OUTBOX_NONCE_LIMIT}); they stay queued"
                )
            for record, new in reversed(moves):
                moved = dataclasses.replace(record, nonce=new)
                digest = moved.digest(self.domain)
                db.execute(
                    "UPDATE outbox SET nonce = ?, digest = ?, mt_signature = ? WHERE nonce = ?",
                    (new, digest, self.key.sign_digest(digest), record.nonce),
                )
        return len(moves)

    def submit(self) -> FlushReport:
        """Send every certified/sent record to the ledger and wait for the receipts (pipelined:
        see :mod:`chainsense.ledger.pipeline`)."""
        rows = self._db.execute(
            "SELECT nonce, poi, slot, reading, x, y, digest, ca_signature, state, tx_hash "
            "FROM outbox WHERE state IN ('certified', 'sent') ORDER BY nonce"
        ).fetchall()
        tally = self.pipeline.run(
            [(self._record(r), bytes(r[6]), bytes(r[7]), r[8], r[9]) for r in rows]
        )
        return FlushReport(
            0, tally.confirmed, tally.already_stored, tally.rejected, self.pending(), tally.gas_used
        )

    def flush(self) -> FlushReport:
        """:meth:`certify` then :meth:`submit`; connection problems leave records queued.

        ``rejected`` counts refusals by the CA and by the contract in this flush.
        """
        before = self.counts().get("rejected", 0)
        certified, found = self._certify()
        report = self.submit()
        rejected = self.counts().get("rejected", 0) - before
        return FlushReport(
            certified,
            report.confirmed,
            report.already_stored + found,
            rejected,
            report.pending,
            report.gas_used,
        )

    def _stored_now(self, record: Record, tx_hash: str | None) -> bool:
        return self.pipeline.stored_now(record, tx_hash)

    def _mark_rejected(self, nonce: int, reason: str) -> None:
        mark_rejected(self._db, nonce, reason)

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
