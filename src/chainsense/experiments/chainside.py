"""Put the same sensing records on a geth network (through the ledger client) and in SQL rows.

Both groups of the availability experiment must hold identical data: the records are stored
on chain first (CA-countersigned, sent by their MTs, as in the paper), and the ids and digests
the contract assigned become the SQL table's rows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from chainsense.errors import ChainsenseError
from chainsense.ledger import network
from chainsense.ledger.artifacts import load_artifact
from chainsense.ledger.contract import Ledger, StoredRecord
from chainsense.ledger.keys import KeyPair
from chainsense.ledger.records import Record

MT_FUNDING_WEI = 10**18


@dataclass(frozen=True)
class PublishedData:
    """The ledger's address and every stored record, in id order."""

    contract: str
    records: tuple[StoredRecord, ...]

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


def publish(directory: str | Path, count: int, seed: int = 0, n_mts: int = 4) -> PublishedData:
    """Deploy the ledger on the network in ``directory`` and store ``count`` records on it."""
    if count < 1:
        raise ChainsenseError(f"records: must be >= 1, got {count}")
    chain, faucet = network.connect(directory, timeout=10.0)
    try:
        if faucet is None:
            raise ChainsenseError("network: the network file names no faucet key")
        ca = KeyPair.derive(seed, 0, "ca")
        mts = [KeyPair.derive(seed, i, "mt") for i in range(n_mts)]
        ledger = network.deploy_ledger(chain, ca.address, faucet)
        for mt in mts:
            chain.fund(mt.address, MT_FUNDING_WEI, faucet)
        records = make_records(count, seed, mts)
        by_mt = {mt.address: mt for mt in mts}
        # Send everything first, then collect receipts: a few blocks instead of one per record.
        hashes = [
            ledger.send_submit(r, ca.sign_digest(r.digest(ledger.domain)), by_mt[r.mt])
            for r in records
        ]
        subs = [ledger.finish_submit(r, h) for r, h in zip(records, hashes, strict=True)]
        abi = load_artifact().abi
        network.wait_everywhere(  # every node must serve every record before measuring
            chain,
            lambda w3: (
                w3.eth.contract(address=ledger.address, abi=abi).functions.record_count().call()
                >= count
            ),
            f"{count} records",
        )
        stored = tuple(
            StoredRecord(s.record_id, s.digest, r) for s, r in zip(subs, records, strict=True)
        )
        return PublishedData(ledger.address, tuple(sorted(stored, key=lambda s: s.record_id)))
    finally:
        chain.close()


def open_ledger(directory: str | Path, contract: str, timeout: float) -> Ledger:
    """A ledger client (failover over every node) bound to an already deployed contract."""
    chain, _ = network.connect(directory, timeout=timeout, cooldown=1.0)
    return Ledger(chain, contract)
