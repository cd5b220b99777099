"""The certificate authority: MT registry, signature + freshness checks, countersigning.

Plain Python core over a SQLite registry; the HTTP face is ``ca_api.build_app`` (FastAPI, in
:mod:`chainsense.ledger.ca_api`). Protocol step 3: the CA accepts a record only from a
registered MT whose EIP-712 signature over the record is valid and whose nonce is fresh
(strictly above the last one the CA countersigned for that MT), then signs the same digest.
Re-sending an identical, already countersigned record returns the stored countersignature, so
an MT that crashed after the CA answered can retry safely; a *different* record with an old
nonce is a replay and refused. Every failed check changes nothing. Given a view of the MTs
revoked on chain (:class:`chainsense.ledger.revoked.RevokedMTs`), the CA refuses their records
too (``mt_revoked``), batches included: the contract only guards the per-record path.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence, Set
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chainsense.chain.keys import KeyPair, SignatureError, checksum, in_threads, recover_bytes
from chainsense.errors import ChainsenseError
from chainsense.ledger.ca_metadata import (
    MAX_METADATA_BYTES,
    CAError,
    check_metadata,
    stored_metadata,
)
from chainsense.ledger.merkle import MerkleTree
from chainsense.ledger.records import Domain, Record, batch_struct_hash
from chainsense.ledger.sqlite_tx import write_transaction

MAX_BATCH = 100_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mts (
    address TEXT PRIMARY KEY,
    metadata TEXT NOT NULL,
    registered_at REAL NOT NULL,
    last_nonce INTEGER NOT NULL DEFAULT -1
);
CREATE TABLE IF NOT EXISTS countersigned (
    digest BLOB PRIMARY KEY,
    mt TEXT NOT NULL,
    nonce INTEGER NOT NULL,
    signature BLOB,          -- NULL when the record was certified inside a batch
    batch_root BLOB
);
CREATE TABLE IF NOT EXISTS batches (
    root BLOB PRIMARY KEY,
    size INTEGER NOT NULL,
    submitter TEXT NOT NULL,
    signature BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


_INT64_LIMIT = 2**63


def _nonce_sql(nonce: int) -> int | bytes:
    """A uint64 nonce as SQLite can store it and order it.

    SQLite integers are signed 64-bit. Nonces below 2**63 stay plain INTEGERs (so registries
    written before larger nonces were supported are read as they are); larger ones are stored as
    8-byte big-endian BLOBs. SQLite orders every INTEGER before every BLOB and BLOBs bytewise,
    so ``ORDER BY``/``MAX`` still follow numeric order over the whole range (and -1, "none").
    """
    return nonce if nonce < _INT64_LIMIT else nonce.to_bytes(8, "big")


def _nonce_py(value: int | bytes) -> int:
    """Inverse of :func:`_nonce_sql`."""
    return int.from_bytes(value, "big") if isinstance(value, bytes) else int(value)


@dataclass(frozen=True)
class MTInfo:
    address: str
    metadata: dict[str, Any]
    last_nonce: int


@dataclass(frozen=True)
class Countersignature:
    """The CA's answer for one record: Sign_sk_CA(H(u))."""

    record: Record
    digest: bytes
    ca_signature: bytes


@dataclass(frozen=True)
class BatchCertificate:
    """CA signature over (root, size, submitter) of a Merkle tree of certified records."""

    records: tuple[Record, ...]
    tree: MerkleTree
    submitter: str
    ca_signature: bytes

    @property
    def root(self) -> bytes:
        return self.tree.root

    @property
    def size(self) -> int:
        return self.tree.size

    def proof(self, index: int) -> list[bytes]:
        return self.tree.proof(index)


class CertificateAuthority:
    """CA core bound to one key, one registry database and one EIP-712 domain (chain+contract)."""

    def __init__(
        self,
        key: KeyPair,
        db_path: str | Path,
        domain: Domain,
        revoked: Callable[[], Set[str]] | None = None,
    ) -> None:
        self.key = key
        self.domain = domain
        #: the MTs revoked on chain (checksummed), asked once per request; None: no chain view
        self.revoked = revoked
        self.db_path = str(db_path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._bind(key.address, domain)

    def _bind(self, address: str, domain: Domain) -> None:
        """A registry belongs to one CA key and domain: refuse to mix them up silently."""
        want = {"ca": address, "chain_id": str(domain.chain_id), "contract": domain.contract}
        have = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if not have:
            self._db.executemany("INSERT INTO meta VALUES (?, ?)", list(want.items()))
            return
        for k, v in want.items():
            if have.get(k) != v:
                raise ChainsenseError(
                    f"ca db: {Path(self.db_path).name} belongs to {k}={have.get(k)}, not {v}"
                )

    @property
    def address(self) -> str:
        return self.key.address

    def close(self) -> None:
        self._db.close()

    # --- registry -----------------------------------------------------------------------------
    def register(self, address: str, metadata: dict[str, Any] | None = None) -> MTInfo:
        """Add an MT (idempotent; re-registering keeps its nonce and replaces the metadata)."""
        addr = _address(address, "address")
        meta = {} if metadata is None else metadata
        if not isinstance(meta, dict):
            raise CAError("bad_input", "metadata", "must be a JSON object")
        check_metadata(meta)  # before anything is written: what is stored can always be served
        text = json.dumps(meta, sort_keys=True, allow_nan=False)
        if len(text) > MAX_METADATA_BYTES:
            raise CAError("bad_input", "metadata", f"larger than {MAX_METADATA_BYTES} bytes")
        with self._lock:
            self._db.execute(
                "INSERT INTO mts(address, metadata, registered_at) VALUES (?, ?, ?) "
                "ON CONFLICT(address) DO UPDATE SET metadata = excluded.metadata",
                (addr, text, time.time()),
            )
        info = self.get(addr)
        assert info is not None
        return info

    def get(self, address: str) -> MTInfo | None:
        addr = _address(address, "address")
        with self._lock:
            row = self._db.execute(
                "SELECT metadata, last_nonce FROM mts WHERE address = ?", (addr,)
            ).fetchone()
        if row is None:
            return None
        return MTInfo(address=addr, metadata=stored_metadata(row[0]), last_nonce=_nonce_py(row[1]))

    def last_nonce(self, address: str) -> int | None:
        """The last nonce countersigned for the MT (-1: none yet), None when not registered."""
        info = self.get(address)
        return None if info is None else info.last_nonce

    def mt_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM mts").fetchone()[0])

    # --- countersigning -----------------------------------------------------------------------
    def _revoked_now(self) -> Set[str]:
        return frozenset() if self.revoked is None else self.revoked()

    @staticmethod
    def _refuse_revoked(record: Record, revoked: Set[str], field: str) -> None:
        if record.mt in revoked:
            raise CAError("mt_revoked", f"{field}.mt", f"{record.mt} is revoked on chain")

    def _check_signature(self, record: Record, signature: bytes, field: str) -> bytes:
        digest = record.digest(self.domain)
        try:
            signer = recover_bytes(digest, signature)
        except SignatureError as exc:
            raise CAError("bad_signature", field, str(exc).split(": ", 1)[-1]) from exc
        if signer != bytes.fromhex(record.mt[2:]):
            raise CAError("bad_signature", field, f"not signed by the record's MT {record.mt}")
        return digest

    def _check_item(self, item: tuple[int, tuple[Record, bytes]]) -> bytes:
        i, (record, signature) = item
        return self._check_signature(record, signature, f"items[{i}].signature")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken before reading what it checks: several CA processes
        on one registry cannot both accept the same nonce."""
        with self._lock, write_transaction(self._db) as db:
            yield db

    def countersign(self, record: Record, mt_signature: bytes) -> Countersignature:
        """Verify (registered, signed by record.mt, fresh nonce) and countersign one record."""
        self._refuse_revoked(record, self._revoked_now(), "record")
        digest = self._check_signature(record, mt_signature, "signature")
        with self._write() as db:
            return self._countersign_in(db, record, digest, "record")

    def countersign_many(
        self, items: Sequence[tuple[Record, bytes]]
    ) -> tuple[list[Countersignature], CAError | None]:
        """:meth:`countersign` of each item in order, in one write transaction (one commit for
        all, not one a record), up to the first refusal: the countersignatures of the items
        before it, and the refusal (None when every item was countersigned). Fields in a
        refusal are named ``items[i]....``."""
        if len(items) > MAX_BATCH:
            raise CAError("bad_input", "items", f"more than {MAX_BATCH} records")
        checked = in_threads(self._try_item, list(enumerate(items)))
        revoked = self._revoked_now()
        done: list[Countersignature] = []
        with self._write() as db:
            for i, ((record, _), digest) in enumerate(zip(items, checked, strict=True)):
                if isinstance(digest, CAError):
                    return done, digest
                try:
                    self._refuse_revoked(record, revoked, f"items[{i}].record")
                    done.append(self._countersign_in(db, record, digest, f"items[{i}].record"))
                except CAError as exc:
                    return done, exc
        return done, None

    def _try_item(self, item: tuple[int, tuple[Record, bytes]]) -> bytes | CAError:
        try:
            return self._check_item(item)
        except CAError as exc:
            return exc

    def _countersign_in(
        self, db: sqlite3.Connection, record: Record, digest: bytes, field: str
    ) -> Countersignature:
        """The checks and the write of one countersignature inside a write transaction."""
        row = db.execute("SELECT last_nonce FROM mts WHERE address = ?", (record.mt,)).fetchone()
        if row is None:
            raise CAError("unknown_mt", f"{field}.mt", f"{record.mt} is not registered")
        done = db.execute(
            "SELECT signature FROM countersigned WHERE digest = ?", (digest,)
        ).fetchone()
        if done is not None:
            if done[0] is None:
                raise CAError("duplicate", field, "already certified inside a batch")
            return Countersignature(record, digest, bytes(done[0]))
        last = _nonce_py(row[0])
        if record.nonce <= last:
            raise CAError(
                "stale_nonce",
                f"{field}.nonce",
                f"{record.nonce} is not above the last countersigned nonce {last}",
            )
        ca_sig = self.key.sign_digest(digest)
        nonce = _nonce_sql(record.nonce)
        db.execute(
            "INSERT INTO countersigned(digest, mt, nonce, signature) VALUES (?, ?, ?, ?)",
            (digest, record.mt, nonce, ca_sig),
        )
        db.execute("UPDATE mts SET last_nonce = ? WHERE address = ?", (nonce, record.mt))
        return Countersignature(record, digest, ca_sig)

    def countersign_batch(
        self, items: Sequence[tuple[Record, bytes]], submitter: str
    ) -> BatchCertificate:
        """Verify every record like :meth:`countersign`, then sign the Merkle root for submitter.

        All or nothing: one bad item (named by its index) refuses the whole batch and changes
        nothing. Within a batch each MT's nonces must increase in the given order. Sending the
        identical batch again returns the same certificate.
        """
        submitter = _address(submitter, "submitter")
        if not items:
            raise CAError("bad_input", "items", "empty batch")
        if len(items) > MAX_BATCH:
            raise CAError("bad_input", "items", f"more than {MAX_BATCH} records")
        revoked = self._revoked_now()
        for i, (record, _) in enumerate(items):
            self._refuse_revoked(record, revoked, f"items[{i}].record")
        digests = in_threads(self._check_item, list(enumerate(items)))  # the first bad one raises
        tree = MerkleTree.build(digests)
        records = tuple(r for r, _ in items)
        with self._write() as db:
            known = db.execute(
                "SELECT size, submitter, signature FROM batches WHERE root = ?", (tree.root,)
            ).fetchone()
            if known is not None:
                if known[1] != submitter:
                    raise CAError(
                        "duplicate", "items", "batch already certified for another submitter"
                    )
                return BatchCertificate(records, tree, submitter, bytes(known[2]))
            last = self._last_nonces({r.mt for r in records})
            for i, record in enumerate(records):
                if record.mt not in last:
                    raise CAError(
                        "unknown_mt", f"items[{i}].record.mt", f"{record.mt} is not registered"
                    )
                if record.nonce <= last[record.mt]:
                    raise CAError(
                        "stale_nonce",
                        f"items[{i}].record.nonce",
                        f"{record.nonce} is not above {last[record.mt]}",
                    )
                last[record.mt] = record.nonce
            if len(set(digests)) != len(digests):
                raise CAError("duplicate", "items", "the same record appears twice")
            ca_sig = self.key.sign_digest(
                self.domain.digest(batch_struct_hash(tree.root, tree.size, submitter))
            )
            try:
                db.executemany(
                    "INSERT INTO countersigned(digest, mt, nonce, batch_root) VALUES (?, ?, ?, ?)",
                    [
                        (d, r.mt, _nonce_sql(r.nonce), tree.root)
                        for d, r in zip(digests, records, strict=True)
                    ],
                )
            except sqlite3.IntegrityError as exc:
                raise CAError("duplicate", "items", "a record was already certified") from exc
            db.executemany(
                "UPDATE mts SET last_nonce = ? WHERE address = ?",
                [(_nonce_sql(n), a) for a, n in last.items()],
            )
            db.execute(
                "INSERT INTO batches VALUES (?, ?, ?, ?)", (tree.root, tree.size, submitter, ca_sig)
            )
        return BatchCertificate(records, tree, submitter, ca_sig)

    def _last_nonces(self, addresses: set[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        addrs = sorted(addresses)
        for i in range(0, len(addrs), 500):
            chunk = addrs[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for a, n in self._db.execute(
                f"SELECT address, last_nonce FROM mts WHERE address IN ({marks})", chunk
            ):
                out[a] = _nonce_py(n)
        return out


def _address(value: Any, field: str) -> str:
    try:
        return checksum(value, field)
    except ChainsenseError as exc:
        raise CAError("bad_input", field, "not a 0x-prefixed 20-byte hex address") from exc
