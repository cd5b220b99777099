"""What the contract's write calls return: a stored record, an anchored root, a batch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Submission:
    """Result of submitting one record: its id and digest on chain, the transaction and its gas."""

    record_id: int
    digest: bytes
    tx_hash: str | None
    gas_used: int
    block: int | None


@dataclass(frozen=True)
class Anchor:
    """Result of anchoring one batch root."""

    root_id: int
    root: bytes
    size: int
    tx_hash: str
    gas_used: int
    block: int


@dataclass(frozen=True)
class BatchInfo:
    root_id: int
    root: bytes
    size: int
    submitter: str
