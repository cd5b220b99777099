"""An MT's per-record submission, pipelined: many transactions in flight, receipts collected
together, outbox writes grouped, one dry run per terminal instead of one a record.

The outbox guarantee of :mod:`chainsense.ledger.terminal` holds chunk by chunk: a chunk of
certified records is marked ``sent`` in one write transaction *before* any of its transactions
goes out, their hashes are stored in one transaction after, and the confirmations of a chunk in
one transaction once its receipts are in. A crash anywhere leaves records ``sent`` (with or
without a hash), which the next flush settles one by one: stored on chain, still in a node's
pool, or sent again. Nothing is lost (the state moves forward only after the chain has the
record) and nothing is stored twice (the contract refuses a duplicate digest).

Two chunks of :data:`SEND_WINDOW` transactions are in flight at most: the next chunk goes out
while the previous one is mined, and a node's transaction pool never holds more than
``2 * SEND_WINDOW`` transactions of one MT.

The dry run (``eth_call``) that surfaces a revert before sending is made for the first record
of a terminal only (it checks the contract and its ABI once); later records skip it when their
CA signatures are, off chain, k signatures by distinct CAs of the set the contract has in office
(read once a flush): the CAs have already checked the MT signature and the nonce, so a revert is
then a rare race (a record stored meanwhile by another path, the CA set changed or the MT
revoked meanwhile), mined as a failed transaction and settled from the contract's reason like
any revert.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from chainsense.chain.errors import ChainError, RevertError
from chainsense.chain.keys import KeyPair
from chainsense.ledger.contract import Ledger
from chainsense.ledger.records import Record
from chainsense.ledger.sqlite_tx import write_transaction

SEND_WINDOW = 128
"""Transactions an MT sends in one chunk (geth keeps up to its ``--txpool.accountslots`` of one
account executable when the pool is full; the network's nodes are configured for more)."""

OutboxRow = tuple[Record, bytes, bytes, str, str | None]
"""(record, digest, CA signature, state, tx hash) of a ``certified`` or ``sent`` record."""

ConfirmHook = Callable[[Sequence[Record]], None]


@dataclass
class Tally:
    confirmed: int = 0
    already_stored: int = 0
    rejected: int = 0
    gas_used: int = 0


@dataclass
class _Chunk:
    flights: list[tuple[Record, str]] = field(default_factory=list)


# --- outbox writes (shared with the terminal) -------------------------------------------------
def mark_confirmed(db: sqlite3.Connection, rows: Sequence[tuple[int, int, str | None]]) -> None:
    """Mark ``(nonce, record id, tx hash)`` rows confirmed, in one write transaction."""
    if not rows:
        return
    with write_transaction(db):
        db.executemany(
            "UPDATE outbox SET state = 'confirmed', record_id = ?, tx_hash = ?, error = NULL "
            "WHERE nonce = ?",
            [(rid, tx_hash, nonce) for nonce, rid, tx_hash in rows],
        )


def mark_rejected(db: sqlite3.Connection, nonce: int, reason: str) -> None:
    with write_transaction(db):
        db.execute(
            "UPDATE outbox SET state = 'rejected', error = ? WHERE nonce = ?", (reason, nonce)
        )


class Submitter:
    """Submits one MT's certified and sent records (see the module docstring)."""

    def __init__(
        self,
        db: sqlite3.Connection,
        key: KeyPair,
        ledger: Ledger,
        *,
        window: int = SEND_WINDOW,
        on_confirmed: ConfirmHook | None = None,
    ) -> None:
        self.db = db
        self.key = key
        self.ledger = ledger
        self.window = window
        self.on_confirmed = on_confirmed
        self.dry_run_done = False
        self.tally = Tally()

    # --- settling one record -------------------------------------------------------------
    def stored_now(self, record: Record, tx_hash: str | None) -> bool:
        """Whether the contract holds ``record`` already (then it is marked confirmed)."""
        rid = self.ledger.record_id_of(record)
        if rid:
            mark_confirmed(self.db, [(record.nonce, rid, tx_hash)])
            self._confirmed([record])
            return True
        return False

    def settle_revert(self, record: Record, tx_hash: str | None, exc: RevertError) -> None:
        """A reverted submit: stored after all (an earlier attempt landed: "duplicate record"),
        or rejected with the contract's reason."""
        if self.stored_now(record, tx_hash):
            self.tally.already_stored += 1
        else:
            mark_rejected(self.db, record.nonce, f"contract: {exc.reason}")
            self.tally.rejected += 1

    def _confirmed(self, records: Sequence[Record]) -> None:
        if self.on_confirmed is not None and records:
            self.on_confirmed(records)

    # --- the pipeline ----------------------------------------------------------------------
    def run(self, rows: Sequence[OutboxRow]) -> Tally:
        """Submit ``rows`` (in nonce order); a node outage leaves the rest queued. Returns
        what this run did."""
        self.tally = Tally()
        self.ledger.chain.forget_nonce(self.key.address)  # a node may have dropped old ones
        try:
            ca_set = self.ledger.ca_set()
        except ChainError:
            return self.tally  # no node reachable: everything stays queued
        fresh: list[tuple[Record, bytes, bool]] = []
        waiting = _Chunk()
        for record, digest, ca_sig, state, old_hash in rows:
            if state == "certified":
                fresh.append((record, ca_sig, ca_set.check(digest, ca_sig) is None))
                continue
            try:  # an earlier attempt may have reached the chain
                if self.stored_now(record, old_hash):
                    self.tally.already_stored += 1
                elif old_hash and self.ledger.chain.tx_known(old_hash):
                    waiting.flights.append((record, old_hash))  # still in a pool: wait for it
                else:
                    fresh.append((record, ca_sig, ca_set.check(digest, ca_sig) is None))
            except ChainError:
                return self.tally
        previous = waiting
        for lo in range(0, len(fresh), self.window):
            chunk, down = self._send(fresh[lo : lo + self.window])
            self._settle(previous)
            previous = chunk
            if down:
                break  # no node reachable: the rest stays queued for the next flush
        self._settle(previous)
        return self.tally

    def _send(self, items: Sequence[tuple[Record, bytes, bool]]) -> tuple[_Chunk, bool]:
        """Mark ``items`` sent (one transaction), send them, store their hashes (one more)."""
        with write_transaction(self.db) as db:
            sent = [(r.nonce,) for r, _, _ in items]
            db.executemany("UPDATE outbox SET state = 'sent' WHERE nonce = ?", sent)
        chunk = _Chunk()
        down = False
        for record, ca_sig, trusted in items:
            dry_run = None if not trusted or not self.dry_run_done else False
            try:
                tx_hash = self.ledger.send_submit(record, ca_sig, self.key, dry_run=dry_run)
            except RevertError as exc:
                self.settle_revert(record, None, exc)
                continue
            except ChainError:
                down = True
                break
            self.dry_run_done = self.dry_run_done or trusted
            chunk.flights.append((record, tx_hash))
        with write_transaction(self.db) as db:
            db.executemany(
                "UPDATE outbox SET tx_hash = ? WHERE nonce = ?",
                [(tx_hash, r.nonce) for r, tx_hash in chunk.flights],
            )
        return chunk, down

    def _settle(self, chunk: _Chunk) -> None:
        """Collect the chunk's receipts in one round, then confirm them in one transaction."""
        if not chunk.flights:
            return
        chain = self.ledger.chain
        try:
            chain.collect_receipts([h for _, h in chunk.flights])
        except ChainError:
            return  # they stay 'sent'; the next flush asks the chain again
        done: list[tuple[int, int, str | None]] = []
        records: list[Record] = []
        for record, tx_hash in chunk.flights:
            try:
                result = self.ledger.finish_submit(record, tx_hash)
            except RevertError as exc:
                self.settle_revert(record, tx_hash, exc)
                continue
            except ChainError:
                continue  # stays 'sent'
            done.append((record.nonce, result.record_id, tx_hash))
            records.append(record)
            self.tally.gas_used += result.gas_used
        mark_confirmed(self.db, done)
        self.tally.confirmed += len(done)
        self._confirmed(records)
