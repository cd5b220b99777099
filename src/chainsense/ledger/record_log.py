"""The contract's per-record wire formats: packed submit arguments and the record log.

A stored record lives in one storage word (its digest, keyed by MT and nonce) and in one log:
topic 0 = ``RECORD_LOG_TAG | record id``, topic 1 = MT, topic 2 = PoI, topic 3 = slot, data =
``reading << 192 | x << 128 | y << 64 | nonce`` followed by the CA signatures (64-byte EIP-2098
compact form each). This module encodes the arguments, builds ``eth_getLogs`` topic filters and
decodes logs back into :class:`StoredRecord` values; it knows no chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chainsense.chain.errors import RevertError
from chainsense.chain.hashing import keccak
from chainsense.chain.keys import checksum
from chainsense.ledger.records import Domain, Record

_ID_BITS = 64
MAX_RECORD_ID = 2**_ID_BITS - 1
# the contract's RECORD_LOG_TAG: keccak of the log's name and types, low 64 bits cleared
RECORD_LOG_TAG = (
    int.from_bytes(keccak(b"RecordStored(uint64,address,uint32,uint32,uint256,bytes)"))
    & ~MAX_RECORD_ID
    & (2**256 - 1)
)
_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
_M64 = 2**64 - 1
_SIGNATURE_BYTES = 64


@dataclass(frozen=True)
class StoredRecord:
    """A record as stored on chain: its id, EIP-712 digest, and where its log is.

    ``ca_signatures`` are the 65-byte ``r || s || v`` signatures the log carries (one today).
    """

    record_id: int
    digest: bytes
    record: Record
    block: int | None = None
    tx_hash: str | None = None
    log_index: int | None = None
    ca_signatures: tuple[bytes, ...] = ()


def packed_fields(record: Record) -> int:
    """``poi << 224 | slot << 192 | reading << 128 | x << 64 | y``: the submit's first word."""
    return (
        record.poi << 224 | record.slot << 192 | record.reading << 128 | record.x << 64 | record.y
    )


def to_compact(signature: bytes) -> tuple[bytes, bytes]:
    """65-byte ``r || s || v`` -> EIP-2098 ``(r, vs)``.

    A signature the compact form cannot carry is refused here with the reason the contract gave
    when it took 65 bytes (the terminal treats both alike: the record is rejected).
    """
    if len(signature) != 65:
        raise RevertError("CA signature must be 65 bytes")
    v = signature[64] + 27 if signature[64] < 27 else signature[64]
    if v not in (27, 28):
        raise RevertError("bad signature v")
    s = int.from_bytes(signature[32:64])
    if s > _HALF_N:
        raise RevertError("non-canonical signature s")
    return signature[:32], ((v - 27) << 255 | s).to_bytes(32)


def from_compact(r: bytes, vs: bytes) -> bytes:
    """EIP-2098 ``(r, vs)`` -> 65-byte ``r || s || v``."""
    word = int.from_bytes(vs)
    return r + (word & (2**255 - 1)).to_bytes(32) + bytes((27 + (word >> 255),))


def id_topic(record_id: int) -> str:
    return _hex_word(RECORD_LOG_TAG | record_id)


def address_topic(address: str) -> str:
    return "0x" + "00" * 12 + checksum(address)[2:].lower()


def uint_topic(value: int) -> str:
    return _hex_word(value)


def _hex_word(value: int) -> str:
    return "0x" + value.to_bytes(32).hex()


def _word(value: Any) -> bytes:
    """A topic or data chunk as bytes, whatever the backend returned (HexBytes, hex str)."""
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


def decode_record_log(log: Any, domain: Domain) -> StoredRecord | None:
    """The stored record a log describes, or None when the log is another event of the contract."""
    topics = [_word(t) for t in log["topics"]]
    if len(topics) != 4:
        return None
    head = int.from_bytes(topics[0])
    if head & ~MAX_RECORD_ID != RECORD_LOG_TAG:
        return None
    data = _word(log["data"])
    if len(data) < 32 or (len(data) - 32) % _SIGNATURE_BYTES:
        return None
    packed = int.from_bytes(data[:32])
    record = Record(
        mt=checksum("0x" + topics[1][12:].hex()),
        poi=int.from_bytes(topics[2]),
        slot=int.from_bytes(topics[3]),
        reading=packed >> 192,
        x=(packed >> 128) & _M64,
        y=(packed >> 64) & _M64,
        nonce=packed & _M64,
    )
    signatures = tuple(
        from_compact(data[i : i + 32], data[i + 32 : i + 64])
        for i in range(32, len(data), _SIGNATURE_BYTES)
    )
    tx_hash = log.get("transactionHash")
    return StoredRecord(
        record_id=head & MAX_RECORD_ID,
        digest=record.digest(domain),
        record=record,
        block=None if log.get("blockNumber") is None else int(log["blockNumber"]),
        tx_hash=None if tx_hash is None else "0x" + _word(tx_hash).hex(),
        log_index=None if log.get("logIndex") is None else int(log["logIndex"]),
        ca_signatures=signatures,
    )


def decode_record_logs(logs: Sequence[Any], domain: Domain) -> list[StoredRecord]:
    """Every record log among ``logs``, by record id (other events are skipped)."""
    out = [s for s in (decode_record_log(log, domain) for log in logs) if s is not None]
    out.sort(key=lambda s: s.record_id)
    return out
