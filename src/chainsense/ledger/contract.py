"""The deployed ledger contract seen from Python: submit, anchor, query and verify.

Works on any :class:`~chainsense.chain.base.Chain` backend. Every revert surfaces as a
:class:`~chainsense.chain.errors.RevertError` carrying the contract's reason (``duplicate
record``, ``bad CA signature``, ``nonce already used by this MT``, ...), raised by the dry run
before anything is sent. Stored records are read from their logs (``eth_getLogs`` on the
record's indexed topics: id, MT, PoI, slot), the contract keeping only each record's digest;
:mod:`chainsense.ledger.record_log` holds the formats.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
from chainsense.ledger.consortium import CASet, ca_set_arguments, split_signatures
from chainsense.ledger.merkle import MAX_DEPTH
from chainsense.ledger.outcomes import Anchor, BatchInfo, Submission
from chainsense.ledger.query_args import check_u32, check_uint, check_window
from chainsense.ledger.record_log import (
    MAX_RECORD_ID,
    StoredRecord,
    address_topic,
    decode_record_logs,
    id_topic,
    packed_fields,
    to_compact,
    uint_topic,
)
from chainsense.ledger.records import Domain, Record

__all__ = [
    "Anchor",
    "BatchInfo",
    "Ledger",
    "StoredRecord",
    "Submission",
    "deploy_ledger",
]

# gas limit of one submit with one CA signature: about 58k used (every field at its maximum),
# 2,100 more once an MT is revoked (the sender's revocation word); each further signature adds
# SUBMIT_GAS_PER_SIGNATURE at most. A node adds a transaction to a block only while its limit
# fits in the gas the block has left, so the limit stays close to the use (about 15% above it)
SUBMIT_GAS = 70_000
SUBMIT_GAS_PER_SIGNATURE = 10_000
MAX_SLOT_SPAN = 100_000
# values OR-ed in one topic position of one eth_getLogs call (ids of `records`, slots of
# `records_in_slots`), and blocks one call scans: every call's work on the node is bounded
TOPICS_PER_CALL = 1000
BLOCKS_PER_CALL = 50_000
DIGESTS_PER_CALL = 500  # the contract's MAX_DIGESTS


def _interface() -> Contract:
    art = load_artifact()
    return Web3().eth.contract(abi=art.abi)  # type: ignore[return-value]


def deploy_ledger(
    chain: Chain,
    ca_addresses: Sequence[str] | str,
    *,
    threshold: int = 1,
    deployer: KeyPair | None = None,
) -> Ledger:
    """Deploy a fresh ledger contract whose records need ``threshold`` (k) countersignatures
    from distinct CAs of ``ca_addresses`` (a single address: k = n = 1). No admin: later changes
    go through proposals approved by k CAs (:mod:`chainsense.ledger.governance`)."""
    art = load_artifact()
    cas = ca_set_arguments(ca_addresses, threshold)
    factory = Web3().eth.contract(abi=art.abi, bytecode=art.bytecode)
    data = factory.constructor(cas, threshold).data_in_transaction
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
        self._deploy_block: int | None = None

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

    def events(self, result: TxResult, name: str) -> list[dict[str, Any]]:
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

    @property
    def deploy_block(self) -> int:
        """The contract's creation block: where every log scan starts."""
        if self._deploy_block is None:
            self._deploy_block = int(self.view("DEPLOY_BLOCK"))
        return self._deploy_block

    def log_filter(self, topics: list[Any], from_block: int, to_block: int | str) -> dict[str, Any]:
        """The ``eth_getLogs`` filter of this contract's logs matching ``topics``."""
        low = max(from_block, self.deploy_block)
        to = to_block if isinstance(to_block, str) else hex(to_block)
        return {"address": self.address, "fromBlock": hex(low), "toBlock": to, "topics": topics}

    def get_logs(self, flt: dict[str, Any]) -> list[Any]:
        """One ``eth_getLogs`` call (every record query goes through here)."""
        return self.chain.get_logs(flt)

    def scan(self, topics: list[Any], from_block: int = 0) -> list[StoredRecord]:
        """Stored records whose log matches ``topics``, by id: one call per
        :data:`BLOCKS_PER_CALL` blocks from the contract's creation to the head."""
        head = self.chain.block_number()
        low = max(from_block, self.deploy_block)
        logs: list[Any] = []
        while low <= head:
            high = min(head, low + BLOCKS_PER_CALL - 1)
            logs.extend(self.get_logs(self.log_filter(topics, low, high)))
            low = high + 1
        return decode_record_logs(logs, self.domain)

    def _scan_any(self, position: int, values: Iterable[str]) -> list[StoredRecord]:
        """Records whose topic ``position`` is any of ``values``, :data:`TOPICS_PER_CALL` a call."""
        wanted = list(values)
        out: list[StoredRecord] = []
        for i in range(0, len(wanted), TOPICS_PER_CALL):
            topics: list[Any] = [None] * position + [wanted[i : i + TOPICS_PER_CALL]]
            out.extend(self.scan(topics))
        return out

    # --- per-record mode -----------------------------------------------------------------------
    def send_submit(
        self, record: Record, ca_signatures: bytes, sender: KeyPair, *, dry_run: bool | None = None
    ) -> str:
        """Send ``submit(record, ca_signatures)`` from ``sender``; returns the tx hash.

        ``ca_signatures``: k 65-byte signatures, concatenated in increasing signer order.

        The contract takes the record's MT from the sender; a record of another MT is refused
        here with the reason the contract gave when it compared them. ``dry_run``: as
        :meth:`Chain.send` (False for a record already checked off chain).
        """
        if record.mt != sender.address:
            raise RevertError("sender is not the record's MT")
        compact = [to_compact(sig) for sig in split_signatures(bytes(ca_signatures))]
        data = self.encode("submit", packed_fields(record), record.nonce, compact)
        gas = SUBMIT_GAS + SUBMIT_GAS_PER_SIGNATURE * (len(compact) - 1)
        return self.chain.send(sender, to=self.address, data=data, gas=gas, dry_run=dry_run)

    def finish_submit(self, record: Record, tx_hash: str) -> Submission:
        result = self.chain.wait(tx_hash)
        mine = [log for log in result.logs if checksum(log["address"]) == self.address]
        stored = decode_record_logs(mine, self.domain)
        if not stored:
            raise ChainError(f"submit: transaction {tx_hash} stored no record")
        return Submission(
            record_id=stored[0].record_id,
            digest=stored[0].digest,
            tx_hash=tx_hash,
            gas_used=result.gas_used,
            block=result.block,
        )

    def submit(self, record: Record, ca_signatures: bytes, sender: KeyPair) -> Submission:
        """Store one CA-countersigned record; sent by its MT. Reverts name the reason."""
        return self.finish_submit(record, self.send_submit(record, ca_signatures, sender))

    def record_id_of(self, record: Record | bytes) -> int:
        """Id of the record on chain; 0 when not stored.

        A record costs one view call and one log query on its MT, PoI and slot. A bare digest
        names no MT or nonce, so it costs a scan of every record log.
        """
        if isinstance(record, Record):
            stored = self.verify_stored(record)
            return 0 if stored is None else stored.record_id
        digest = bytes(record)
        return next((s.record_id for s in self.records() if s.digest == digest), 0)

    def stored_digest(self, mt: str, nonce: int) -> bytes:
        """The digest the contract keeps for (mt, nonce); 32 zero bytes when nothing is stored."""
        return bytes(self.view("stored_digest", checksum(mt, "mt"), nonce))

    def stored_digests(self, keys: Sequence[tuple[str, int]]) -> list[bytes]:
        """:meth:`stored_digest` of many (mt, nonce) pairs, 500 per view call."""
        words = [int(checksum(mt, "mt"), 16) << 64 | nonce for mt, nonce in keys]
        out: list[bytes] = []
        for i in range(0, len(words), DIGESTS_PER_CALL):
            out.extend(
                bytes(d) for d in self.view("stored_digests", words[i : i + DIGESTS_PER_CALL])
            )
        return out

    def is_stored(self, record: Record) -> bool:
        """The contract's own check that exactly ``record`` is stored (per-record mode)."""
        return bool(self.view("is_stored", record.as_tuple()))

    # --- queries -------------------------------------------------------------------------------
    def record_count(self) -> int:
        return int(self.view("record_count"))

    def get_record(self, record_id: int) -> StoredRecord:
        check_uint(record_id, "record id", low=1)
        found = self.scan([id_topic(record_id)]) if record_id <= MAX_RECORD_ID else []
        if not found:
            raise ChainsenseError(f"record id: {record_id}: no such record")
        return found[0]

    def records(self, start: int = 1, limit: int | None = None) -> list[StoredRecord]:
        """Records by id from ``start`` (1-based), at most ``limit`` of them."""
        check_uint(start, "start", low=1)
        total = self.record_count()
        end = total + 1 if limit is None else min(total + 1, start + check_uint(limit, "limit"))
        return self._scan_any(0, (id_topic(i) for i in range(start, end)))

    def records_of_mt(
        self, mt: str, start: int = 0, limit: int | None = None
    ) -> list[StoredRecord]:
        """The MT's records in submission order, from its ``start``-th (0-based)."""
        window = check_window(start, limit)
        return self.scan([None, address_topic(checksum(mt, "mt"))])[window]

    def records_of_poi(
        self, poi: int, start: int = 0, limit: int | None = None
    ) -> list[StoredRecord]:
        check_u32(poi, "poi")
        return self.scan([None, None, uint_topic(poi)])[check_window(start, limit)]

    def records_in_slots(self, first: int, last: int) -> list[StoredRecord]:
        """Records whose slot is in ``[first, last]``, by slot, then in submission order.

        One log query per 1000 slots of the range (the slots OR-ed in the slot topic): the
        node returns only the records found.
        """
        check_u32(first, "slot")
        check_u32(last, "slot")
        if last < first:
            raise ChainsenseError(f"slot range: last {last} < first {first}")
        if last - first + 1 > MAX_SLOT_SPAN:
            raise ChainsenseError(f"slot range: at most {MAX_SLOT_SPAN} slots per query")
        found = self._scan_any(3, (uint_topic(s) for s in range(first, last + 1)))
        return sorted(found, key=lambda s: (s.record.slot, s.record_id))

    def verify_stored(self, record: Record) -> StoredRecord | None:
        """The stored copy of exactly this record, or None: the contract's digest for the
        record's (MT, nonce) must be the record's, and its log must carry the same fields."""
        digest = record.digest(self.domain)
        if self.stored_digest(record.mt, record.nonce) != digest:
            return None
        topics = [None, address_topic(record.mt), uint_topic(record.poi), uint_topic(record.slot)]
        return next((s for s in self.scan(topics) if s.record == record), None)

    # --- batch mode ----------------------------------------------------------------------------
    def anchor_batch(self, root: bytes, size: int, ca_signatures: bytes, sender: KeyPair) -> Anchor:
        """Anchor a Merkle root of ``size`` records signed by k CAs (65-byte signatures,
        concatenated in increasing signer order), sent by the certified submitter."""
        compact = [to_compact(sig) for sig in split_signatures(bytes(ca_signatures))]
        data = self.encode("anchor_batch", bytes(root), size, compact)
        result = self.chain.transact(sender, to=self.address, data=data)
        events = self.events(result, "BatchAnchored")
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
        check_uint(root_id, "root id", low=1)
        try:
            rid, root, size, submitter = self.view("get_batch", root_id)
        except RevertError as exc:
            raise ChainsenseError(f"root id: {root_id}: {exc.reason}") from exc
        return BatchInfo(root_id=int(rid), root=bytes(root), size=int(size), submitter=submitter)

    def verify_inclusion(self, root_id: int, digest: bytes, proof: Sequence[bytes]) -> bool:
        """On-chain check that record digest ``digest`` is under anchored root ``root_id``."""
        check_uint(root_id, "root id")
        if len(proof) > MAX_DEPTH:
            return False
        return bool(
            self.view("verify_inclusion", root_id, bytes(digest), [bytes(p) for p in proof])
        )

    def verify_record(self, root_id: int, record: Record, proof: Sequence[bytes]) -> bool:
        """On-chain check that exactly ``record`` is in anchored batch ``root_id``."""
        check_uint(root_id, "root id")
        if len(proof) > MAX_DEPTH:
            return False
        return bool(
            self.view("verify_record", root_id, record.as_tuple(), [bytes(p) for p in proof])
        )

    # --- event log -----------------------------------------------------------------------------
    def logs(self, event: str, from_block: int = 0) -> list[dict[str, Any]]:
        """Decoded logs of the ABI event ``event`` (``CARotated``, ``BatchAnchored``, ...) with
        ``block``/``log_index`` added, in chain order. Stored records: :meth:`scan`."""

        ev = getattr(self._iface.events, event)()
        out = []
        for log in self.get_logs(self.log_filter([ev.topic], from_block, "latest")):
            args = dict(ev.process_log(log)["args"])
            out.append(args | {"block": log["blockNumber"], "log_index": log["logIndex"]})
        out.sort(key=lambda e: (e["block"], e["log_index"]))
        return out

    # --- the consortium ------------------------------------------------------------------------
    def ca_set(self) -> CASet:
        """The CAs in office (by increasing address) and k, the countersignatures a record or
        a batch root needs."""
        return CASet(tuple(str(a) for a in self.view("cas")), int(self.view("threshold")))

    def is_revoked(self, mt: str) -> bool:
        return bool(self.view("is_revoked", checksum(mt, "mt")))

    def onchain_digest(self, record: Record) -> bytes:
        """The contract's own EIP-712 digest of ``record`` (cross-checks the Python hashing)."""
        return bytes(self.view("record_digest", record.as_tuple()))
