"""Put the same sensing records on a chain (through the ledger client) and in SQL rows.

Both groups of the availability experiment must hold identical data: the records are stored
on chain first (CA-countersigned, sent by their MTs, as in the paper), and the ids and digests
the contract assigned become the SQL table's rows. The ledger client only reads from nodes that
hold the block of its last confirmed write, so nothing here waits for nodes to catch up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from chainsense.chain.base import Chain
from chainsense.chain.keys import KeyPair
from chainsense.errors import ChainsenseError
from chainsense.ledger.config import connect_network
from chainsense.ledger.contract import Ledger, StoredRecord, deploy_ledger
from chainsense.ledger.records import Record

MT_FUNDING_WEI = 10**18


@dataclass(frozen=True)
class PublishedData:
    """The ledger's address, every stored record in id order, and the block holding the last
    one (a reader that requires it sees them all)."""

    contract: str
    records: tuple[StoredRecord, ...]
    block: int

    def sql_rows(self) -> list[tuple[object, ...]]:
        """Rows in :data:`chainsense.experiments.sqlserver.COLUMNS` order."""
        return [sql_row(s) for s in self.records]


def sql_row(s: StoredRecord) -> tuple[object, ...]:
    r = s.record
    return (s.record_id, r.mt, r.poi, r.slot, r.reading, r.x, r.y, r.nonce, "0x" + s.digest.hex())


def make_records(count: int, seed: int, mts: list[KeyPair]) -> list[Record]:
    """``count`` plausible records spread over ``mts`` (fixed-point readings and positions)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        mt = mts[i % len(mts)]
        out.append(
            Record(
                mt=mt.address,
                poi=rng.randrange(0, 256),
                slot=i // len(mts),
                reading=rng.randrange(0, 10**6),
                x=rng.randrange(0, 10**8),
                y=rng.randrange(0, 10**8),
                nonce=i // len(mts),
            )
        )
    return out


def publish(
    chain: Chain, funder: KeyPair | None, count: int, seed: int = 0, n_mts: int = 4
) -> PublishedData:
    """Deploy the ledger on ``chain`` (paid by ``funder``; None: the node's dev account) and
    store ``count`` records on it, each CA-countersigned and sent by its MT."""
    if count < 1:
        raise ChainsenseError(f"records: must be >= 1, got {count}")
    ca = KeyPair.derive(seed, 0, "ca")
    mts = [KeyPair.derive(seed, i, "mt") for i in range(n_mts)]
    ledger = deploy_ledger(chain, ca.address, deployer=funder)
    for mt in mts:
        chain.fund(mt.address, MT_FUNDING_WEI, funder)
    records = make_records(count, seed, mts)
    by_mt = {mt.address: mt for mt in mts}
    # Send everything first, then collect receipts: a few blocks instead of one per record.
    hashes = [
        ledger.send_submit(r, ca.sign_digest(r.digest(ledger.domain)), by_mt[r.mt]) for r in records
    ]
    subs = [ledger.finish_submit(r, h) for r, h in zip(records, hashes, strict=True)]
    stored = tuple(
        StoredRecord(s.record_id, s.digest, r) for s, r in zip(subs, records, strict=True)
    )
    return PublishedData(
        ledger.address,
        tuple(sorted(stored, key=lambda s: s.record_id)),
        max(s.block or 0 for s in subs),
    )


def open_ledger(
    directory: str | Path, contract: str, timeout: float, min_block: int | None = None
) -> Ledger:
    """A ledger client (failover over every node) bound to an already deployed contract.

    It reads only from nodes that have ``min_block`` (default: the best head any node has now,
    so everything published before this call is visible whichever node answers).
    """
    chain, _ = connect_network(directory, timeout=timeout, cooldown=1.0)
    try:
        if min_block is None:
            chain.require_latest()
        else:
            chain.require_block(min_block)
        return Ledger(chain, contract)
    except BaseException:
        chain.close()
        raise
