"""The deployed ledger contract seen from Python: submit, anchor, query and verify.

Works on any :class:`~chainsense.chain.base.Chain` backend. Every revert surfaces as a
:class:`~chainsense.chain.errors.RevertError` carrying the contract's reason (``duplicate
record``, ``bad CA signature``, ``sender is not the record's MT``, ...), raised by the gas
estimate before anything is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from chainsense.chain.base import Chain, TxResult
from chainsense.chain.errors import ChainError, RevertError, revert_reason
from chainsense.chain.keys import KeyPair, checksum
from chainsense.errors import ChainsenseError
from chainsense.ledger.artifacts import load_artifact
from chainsense.ledger.merkle import MAX_DEPTH
from chainsense.ledger.records import Domain, Record

PAGE = 100  # the contract's MAX_PAGE
SLOT_COUNTS = 1024  # the contract's MAX_SLOT_COUNTS: slots counted by one `slot_counts` call
# gas limit of one submit: measured 301,525 for a record with a new MT, PoI and slot (all
# counters cold); the limit only has to cover the worst case, unused gas is not charged
SUBMIT_GAS = 400_000
MAX_SLOT_SPAN = 100_000


@dataclass(frozen=True)
class StoredRecord:
    """A record as stored on chain, with its id and EIP-712 digest."""

    record_id: int
    digest: bytes
    record: Record


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


def _interface() -> Contract:
    art = load_artifact()
    return Web3().eth.contract(abi=art.abi)  # type: ignore[return-value]


def _stored(raw: Sequence[Any]) -> StoredRecord:
    rid, digest, mt, poi, slot, reading, x, y, nonce = raw
    return StoredRecord(
        record_id=int(rid),
        digest=bytes(digest),
        record=Record(mt=mt, poi=poi, slot=slot, reading=reading, x=x, y=y, nonce=nonce),
    )


def deploy_ledger(chain: Chain, ca_address: str, deployer: KeyPair | None = None) -> Ledger:
    """Deploy a fresh ledger contract with ``ca_address`` as CA; the deployer becomes admin."""
    art = load_artifact()
    ca = checksum(ca_address, "ca_address")
    factory = Web3().eth.contract(abi=art.abi, bytecode=art.bytecode)
    data = factory.constructor(ca).data_in_transaction
    result = chain.transact(deployer, to=None, data=data)
    if not result.contract_address:
        raise ChainError(f"deploy: transaction {result.tx_hash} created no contract")
    ledger = Ledger(chain, result.contract_address)
    ledger.deploy_result = result
    return ledger


class Ledger:
    """Bound ledger contract at ``address`` on ``chain``."""

    def __init__(self, chain: Chain, address: str) -> None:
        self.chain = chain
        self.address = checksum(address, "contract")
        self._iface = _interface()
        self._contracts: dict[int, Contract] = {}
        self._encoders: dict[str, tuple[bytes, list[str]]] = {}
        self.deploy_result: TxResult | None = None
        if not chain.code_at(self.address):
            raise ChainsenseError(f"contract: no code at {self.address} on this chain")
        self.domain = Domain(chain.chain_id, self.address)

    # --- plumbing ------------------------------------------------------------------------------
    def _bound(self, w3: Web3) -> Contract:
        c = self._contracts.get(id(w3))
        if c is None:
            c = w3.eth.contract(address=self.address, abi=self._iface.abi)  # type: ignore[call-overload]
            self._contracts[id(w3)] = c
        return c

    def view(self, fn: str, *args: Any) -> Any:
        """Call a view function (with the backend's failover)."""
        try:
            return self.chain.call(lambda w3: getattr(self._bound(w3).functions, fn)(*args).call())
        except ContractLogicError as exc:
            raise RevertError(revert_reason(exc)) from exc

    def encode(self, fn: str, *args: Any) -> str:
        """Calldata of ``fn(*args)``: selector + eth_abi encoding (web3's ``encode_abi`` costs
        ~2.5 ms a call, as much as the rest of a submit on the client), web3 for overloads."""
        spec = self._encoders.get(fn)
        if spec is None:
            abi = self._iface.abi
            entries = [e for e in abi if e.get("type") == "function" and e["name"] == fn]
            if len(entries) != 1:
                return self._iface.encode_abi(fn, args=list(args))
            spec = (function_abi_to_4byte_selector(entries[0]), get_abi_input_types(entries[0]))
            self._encoders[fn] = spec
        selector, types = spec
        return "0x" + (selector + abi_encode(types, args)).hex()

    def _events(self, result: TxResult, name: str) -> list[dict[str, Any]]:
        event = getattr(self._iface.events, name)()
        out = []
        for log in result.logs:
            if checksum(log["address"]) != self.address:
                continue
            try:
                out.append(dict(event.process_log(log)["args"]))
            except Exception:  # another event of this contract
                continue
        return out

    # --- per-record mode -----------------------------------------------------------------------
    def send_submit(
        self, record: Record, ca_signature: bytes, sender: KeyPair, *, dry_run: bool | None = None
    ) -> str:
        """Send ``submit(record, ca_signature)`` from ``sender``; returns the tx hash.
        ``dry_run``: as :meth:`Chain.send` (False for a record already checked off chain)."""
        data = self.encode("submit", record.as_tuple(), bytes(ca_signature))
        return self.chain.send(sender, to=self.address, data=data, gas=SUBMIT_GAS, dry_run=dry_run)

    def finish_submit(self, record: Record, tx_hash: str) -> Submission:
        result = self.chain.wait(tx_hash)
        events = self._events(result, "RecordStored")
        if not events:
            raise ChainError(f"submit: transaction {tx_hash} stored no record")
        return Submission(
            record_id=int(events[0]["record_id"]),
            digest=bytes(events[0]["digest"]),
            tx_hash=tx_hash,
            gas_used=result.gas_used,
            block=result.block,
        )

    def submit(self, record: Record, ca_signature: bytes, sender: KeyPair) -> Submission:
        """Store one CA-countersigned record; sent by its MT. Reverts name the reason."""
        return self.finish_submit(record, self.send_submit(record, ca_signature, sender))

    def record_id_of(self, record: Record | bytes) -> int:
        """Id of the record (or of its digest) on chain; 0 when not stored."""
        digest = record.digest(self.domain) if isinstance(record, Record) else bytes(record)
        return int(self.view("record_id_of", digest))

    # --- queries -------------------------------------------------------------------------------
    def record_count(self) -> int:
        return int(self.view("record_count"))

    def get_record(self, record_id: int) -> StoredRecord:
        _check_uint(record_id, "record id", low=1)
        try:
            return _stored(self.view("get_record", record_id))
        except RevertError as exc:
            raise ChainsenseError(f"record id: {record_id}: {exc.reason}") from exc

    def _paged(self, fn: str, args: tuple[Any, ...], start: int, end: int) -> list[StoredRecord]:
        """Entries ``start`` (inclusive) to ``end`` (exclusive) of a paged view, ``PAGE`` a call."""
        out: list[StoredRecord] = []
        pos = start
        while pos < end:
            page = self.view(fn, *args, pos, min(PAGE, end - pos))
            if not page:
                break
            out.extend(_stored(r) for r in page)
            pos += len(page)
        return out

    def records(self, start: int = 1, limit: int | None = None) -> list[StoredRecord]:
        """Records by id from ``start`` (1-based), at most ``limit`` of them."""
        _check_uint(start, "start", low=1)
        total = self.record_count()
        end = total + 1 if limit is None else min(total + 1, start + _check_uint(limit, "limit"))
        return self._paged("records", (), start, end)

    def _window(self, kind: str, key: Any, start: int, limit: int | None) -> tuple[int, int]:
        """``(start, end)`` of a query by ``kind`` (``mt``, ``poi``) with range-checked bounds."""
        _check_uint(start, "start")
        total = int(self.view(f"{kind}_record_count", key))
        return start, total if limit is None else min(total, start + _check_uint(limit, "limit"))

    def records_of_mt(
        self, mt: str, start: int = 0, limit: int | None = None
    ) -> list[StoredRecord]:
        addr = checksum(mt, "mt")
        return self._paged("records_of_mt", (addr,), *self._window("mt", addr, start, limit))

    def records_of_poi(
        self, poi: int, start: int = 0, limit: int | None = None
    ) -> list[StoredRecord]:
        _check_u32(poi, "poi")
        return self._paged("records_of_poi", (poi,), *self._window("poi", poi, start, limit))

    def records_in_slots(self, first: int, last: int) -> list[StoredRecord]:
        """Records whose slot is in ``[first, last]``, by slot, then in submission order.

        One ``slot_counts`` call per 1024 slots of the range, then ``records_of_slot`` pages
        (100 records each) only for the slots that hold records: 100,000 empty slots cost 98
        view calls (they cost 100,000 when every slot was asked for its count).
        """
        _check_u32(first, "slot")
        _check_u32(last, "slot")
        if last < first:
            raise ChainsenseError(f"slot range: last {last} < first {first}")
        if last - first + 1 > MAX_SLOT_SPAN:
            raise ChainsenseError(f"slot range: at most {MAX_SLOT_SPAN} slots per query")
        out: list[StoredRecord] = []
        slot = first
        while slot <= last:
            try:
                counts = self.view("slot_counts", slot, last - slot + 1)
            except RevertError:
                if slot != first:
                    raise
                # a ledger deployed before `slot_counts` existed has no such function
                return self._records_in_slots_walk(first, last)
            if not counts:  # cannot happen: slot <= last < 2^32 and count >= 1
                raise ChainError(f"slot_counts({slot}, ...) returned no count")
            for offset, total in enumerate(counts):
                if total:
                    out.extend(self._paged("records_of_slot", (slot + offset,), 0, int(total)))
            slot += len(counts)
        return out

    def _records_in_slots_walk(self, first: int, last: int) -> list[StoredRecord]:
        """The per-slot walk: one ``slot_record_count`` call for every slot of the range, then
        its pages (for ledgers without ``slot_counts``; the reference in tests and benchmark)."""
        out: list[StoredRecord] = []
        for slot in range(first, last + 1):
            total = int(self.view("slot_record_count", slot))
            out.extend(self._paged("records_of_slot", (slot,), 0, total))
        return out

    def verify_stored(self, record: Record) -> StoredRecord | None:
        """The stored copy of exactly this record, or None (digest lookup + field comparison)."""
        digest = record.digest(self.domain)
        rid = self.record_id_of(digest)
        if rid == 0:
            return None
        stored = self.get_record(rid)
        if stored.record != record or stored.digest != digest:
            return None
        return stored

    # --- batch mode ----------------------------------------------------------------------------
    def anchor_batch(self, root: bytes, size: int, ca_signature: bytes, sender: KeyPair) -> Anchor:
        """Anchor a CA-signed Merkle root of ``size`` records, sent by the certified submitter."""
        data = self.encode("anchor_batch", bytes(root), size, bytes(ca_signature))
        result = self.chain.transact(sender, to=self.address, data=data)
        events = self._events(result, "BatchAnchored")
        if not events:
            raise ChainError(f"anchor: transaction {result.tx_hash} anchored nothing")
        return Anchor(
            root_id=int(events[0]["root_id"]),
            root=bytes(root),
            size=size,
            tx_hash=result.tx_hash,
            gas_used=result.gas_used,
            block=result.block,
        )

    def batch_count(self) -> int:
        return int(self.view("batch_count"))

    def root_id_of(self, root: bytes) -> int:
        return int(self.view("root_id_of", bytes(root)))

    def get_batch(self, root_id: int) -> BatchInfo:
        _check_uint(root_id, "root id", low=1)
        try:
            rid, root, size, submitter = self.view("get_batch", root_id)
        except RevertError as exc:
            raise ChainsenseError(f"root id: {root_id}: {exc.reason}") from exc
        return BatchInfo(root_id=int(rid), root=bytes(root), size=int(size), submitter=submitter)

    def verify_inclusion(self, root_id: int, digest: bytes, proof: Sequence[bytes]) -> bool:
        """On-chain check that record digest ``digest`` is under anchored root ``root_id``."""
        _check_uint(root_id, "root id")
        if len(proof) > MAX_DEPTH:
            return False
        return bool(
            self.view("verify_inclusion", root_id, bytes(digest), [bytes(p) for p in proof])
        )

    def verify_record(self, root_id: int, record: Record, proof: Sequence[bytes]) -> bool:
        """On-chain check that exactly ``record`` is in anchored batch ``root_id``."""
        _check_uint(root_id, "root id")
        if len(proof) > MAX_DEPTH:
            return False
        return bool(
            self.view("verify_record", root_id, record.as_tuple(), [bytes(p) for p in proof])
        )

    # --- event log -----------------------------------------------------------------------------
    def logs(self, event: str, from_block: int = 0) -> list[dict[str, Any]]:
        """Decoded logs of ``event`` with ``block``/``log_index`` added, in chain order."""

        def fetch(w3: Web3) -> list[Any]:
            ev = getattr(self._bound(w3).events, event)
            return list(ev().get_logs(from_block=from_block, to_block="latest"))

        out = []
        for log in self.chain.call(fetch):
            out.append(
                dict(log["args"]) | {"block": log["blockNumber"], "log_index": log["logIndex"]}
            )
        out.sort(key=lambda e: (e["block"], e["log_index"]))
        return out

    # --- administration ------------------------------------------------------------------------
    def ca(self) -> str:
        return str(self.view("ca"))

    def admin(self) -> str:
        return str(self.view("admin"))

    def set_ca(self, new_ca: str, admin: KeyPair | None) -> TxResult:
        """Rotate the CA (admin only); emits ``CARotated``."""
        data = self.encode("set_ca", checksum(new_ca, "new_ca"))
        return self.chain.transact(admin, to=self.address, data=data)

    def onchain_digest(self, record: Record) -> bytes:
        """The contract's own EIP-712 digest of ``record`` (cross-checks the Python hashing)."""
        return bytes(self.view("record_digest", record.as_tuple()))


def _check_uint(value: int, name: str, low: int = 0) -> int:
    """``value`` if it is an integer in ``[low, 2^256)`` (what a uint256 argument takes)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 2**256:
        raise ChainsenseError(f"{name}: must be an integer in [{low}, 2^256), got {value!r}")
    return value


def _check_u32(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise ChainsenseError(f"{name}: must be an integer in [0, 2^32), got {value!r}")
