"""The backend interface: what the ledger needs from any Ethereum node.

:class:`Chain` sends locally signed transactions (legacy or EIP-1559 gas, whichever the chain
supports), waits for receipts, calls views and funds accounts. Backends differ only in how they
reach a node (:meth:`Chain._run`): :mod:`chainsense.chain.embedded` runs an EVM in this process,
:mod:`chainsense.chain.rpc` talks JSON-RPC to nodes with failover. Contracts are the business of
the layers above (``chainsense.ledger.contract``); this package knows none.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from eth_account import Account
from eth_utils.exceptions import ValidationError as EthValidationError
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError

from chainsense.chain.errors import ChainError, RevertError, revert_reason
from chainsense.chain.keys import KeyPair, checksum
from chainsense.errors import ChainsenseError

T = TypeVar("T")
UNMINED_KEPT = 65_536  # signed transactions kept for a rebroadcast (beyond: the oldest dropped)
# what nodes answer when a transaction we re-send is already in their pool or mined
_ALREADY_KNOWN = ("already known", "known transaction", "already imported", "nonce too low")


@dataclass(frozen=True)
class TxResult:
    """Outcome of a mined transaction."""

    tx_hash: str
    block: int
    gas_used: int
    status: int
    logs: tuple[Any, ...] = ()
    contract_address: str | None = None


def _known(w3: Web3, tx_hash: str) -> bool:
    try:
        w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        return True
    except TransactionNotFound:
        return False


class Chain:
    """Backend-independent operations; subclasses provide :meth:`_run` (a call with failover)."""

    #: extra gas on top of the estimate (estimates are exact on the same state, but a
    #: transaction can land after others that change storage warmth)
    gas_margin = 1.25
    receipt_timeout = 120.0
    poll_interval = 0.05
    #: execute a transaction as a call before sending it, so that a revert costs no gas and
    #: its reason comes back at once (a mined failure is explained by replaying it instead)
    dry_run_before_send = True
    #: blocks required on top of a transaction's block before it counts as confirmed
    confirmations = 0
    #: seconds without a new receipt after which the transactions still awaited are handed to
    #: a node again, as the same signed bytes: a node that dies with them in its pool takes them
    #: along, and every later transaction of the sender then waits behind the nonce gap
    rebroadcast_after = 5.0

    #: seconds a fee quote is reused: ``maxFeePerGas`` is twice the base fee, which a block
    #: raises by at most 12.5 %, so a quote stays valid for several blocks
    fee_ttl = 1.0

    def __init__(self) -> None:
        self._nonces: dict[str, int] = {}
        self._lock = threading.Lock()
        self._chain_id: int | None = None
        self._eip1559: bool | None = None
        self._fee_quote: tuple[float, dict[str, int]] | None = None
        # receipts found confirmed by collect_receipts, handed out once by wait()
        self._collected: dict[str, Any] = {}
        # signed transactions sent and not yet seen mined, for a rebroadcast (oldest first)
        self._unmined: dict[str, bytes] = {}
        self.rebroadcasts = 0  # transactions handed to a node again (see rebroadcast_after)

    # --- transport -----------------------------------------------------------------------
    def _run(self, fn: Callable[[Web3], T], *, write: bool = False) -> T:
        raise NotImplementedError

    def call(self, fn: Callable[[Web3], T]) -> T:
        """Run a read-only ``fn(w3)`` on a healthy endpoint (with failover)."""
        return self._run(fn)

    def get_logs(self, flt: Mapping[str, Any]) -> list[Any]:
        """``eth_getLogs`` with ``flt`` (address, fromBlock, toBlock, topics), in chain order."""
        return list(self._run(lambda w3: w3.eth.get_logs(flt)))  # type: ignore[arg-type]

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self._run(lambda w3: w3.eth.chain_id))
        return self._chain_id

    def block_number(self) -> int:
        return int(self._run(lambda w3: w3.eth.block_number))

    def balance(self, address: str) -> int:
        addr = checksum(address)
        return int(self._run(lambda w3: w3.eth.get_balance(addr)))

    def code_at(self, address: str) -> bytes:
        addr = checksum(address)
        return bytes(self._run(lambda w3: w3.eth.get_code(addr)))

    def dev_account(self) -> str:
        """The node's first unlocked account (anvil and the embedded chain have funded ones)."""
        accounts = self._run(lambda w3: w3.eth.accounts)
        if not accounts:
            raise ChainError("funder: the node has no unlocked account; pass a funder key")
        return str(accounts[0])

    # --- transactions --------------------------------------------------------------------
    def _fees(self) -> dict[str, int]:
        """:meth:`_quote_fees`, reused for :attr:`fee_ttl` seconds (one query, not one a send)."""
        now = time.monotonic()
        quote = self._fee_quote
        if quote is None or now - quote[0] > self.fee_ttl:
            quote = (now, self._quote_fees())
            self._fee_quote = quote
        return quote[1]

    def _quote_fees(self) -> dict[str, int]:
        """EIP-1559 fees when the chain has a base fee (London), else a legacy gas price."""
        if self._eip1559 is False:
            return {"gasPrice": int(self._run(lambda w3: w3.eth.gas_price))}
        base = self._run(lambda w3: w3.eth.get_block("latest")).get("baseFeePerGas")
        self._eip1559 = base is not None
        if base is None:
            return self._quote_fees()
        tip = 10**9
        return {"maxFeePerGas": 2 * int(base) + tip, "maxPriorityFeePerGas": tip}

    def _next_nonce(self, address: str) -> int:
        """The next transaction nonce of ``address``: asked of the node (pending count) once,
        then counted here, so that a pipeline of sends costs no round trip each."""
        with self._lock:
            nonce = self._nonces.get(address)
            if nonce is None:
                nonce = int(self._run(lambda w3: w3.eth.get_transaction_count(address, "pending")))
            self._nonces[address] = nonce + 1
            return nonce

    def forget_nonce(self, address: str) -> None:
        """Drop the local nonce count: the node's pending count is asked again at the next send
        (after a failed send, or before resending what a node may have dropped)."""
        with self._lock:
            self._nonces.pop(address, None)

    def estimate(self, tx: dict[str, Any]) -> int:
        """Gas estimate; a reverting transaction raises :class:`RevertError` with its reason."""
        return int(self._dry(lambda w3: w3.eth.estimate_gas(tx)))  # type: ignore[arg-type]

    def dry_run(self, tx: dict[str, Any]) -> None:
        """Execute ``tx`` as a call (one EVM run, cheaper than an estimate) to surface reverts."""
        self._dry(lambda w3: w3.eth.call(tx))  # type: ignore[arg-type]

    def _dry(self, fn: Callable[[Web3], T]) -> T:
        try:
            return self._run(fn)
        except ContractLogicError as exc:
            raise RevertError(revert_reason(exc)) from exc
        except Web3RPCError as exc:
            if "revert" in str(exc).lower():
                raise RevertError(revert_reason(exc)) from exc
            raise ChainError(f"transaction refused by the node: {revert_reason(exc)}") from exc
        except EthValidationError as exc:  # eth-tester: e.g. sender cannot afford the gas
            raise ChainError(f"transaction refused by the node: {exc}") from exc

    def send(
        self,
        sender: KeyPair | None,
        *,
        to: str | None,
        data: bytes | str = b"",
        value: int = 0,
        gas: int | None = None,
        dry_run: bool | None = None,
    ) -> str:
        """Sign (locally) and send a transaction; returns its hash without waiting.

        ``sender=None`` uses the node's unlocked dev account (anvil, embedded) via
        ``eth_sendTransaction``. A dry run first (the gas estimate, or one ``eth_call`` when
        ``gas`` is given) refuses a transaction that would revert, with the contract's reason,
        before anything is sent; ``dry_run=False`` skips the ``eth_call`` (for a caller that
        has checked the transaction itself: a revert is then mined and explained by replay),
        ``None`` follows :attr:`dry_run_before_send`.
        """
        data_hex = HexBytes(data).to_0x_hex()
        frm = sender.address if sender is not None else self.dev_account()
        base: dict[str, Any] = {"from": frm, "value": value, "data": data_hex}
        if to is not None:
            base["to"] = checksum(to)
        if gas is None:
            gas = int(self.estimate(base) * self.gas_margin) + 10_000
        elif self.dry_run_before_send if dry_run is None else dry_run:
            self.dry_run(base)
        tx = base | {"gas": gas, "chainId": self.chain_id} | self._fees()
        if sender is None:
            tx_hash = self._run(lambda w3: w3.eth.send_transaction(tx), write=True)  # type: ignore[arg-type]
            return HexBytes(tx_hash).to_0x_hex()
        tx["nonce"] = self._next_nonce(frm)
        del tx["from"]
        raw = Account.sign_transaction(tx, sender.private_key)
        tx_hash = HexBytes(raw.hash).to_0x_hex()
        try:
            self._send_raw(bytes(raw.raw_transaction), tx_hash)
        except Exception:
            self.forget_nonce(frm)
            raise
        with self._lock:
            self._unmined[tx_hash] = bytes(raw.raw_transaction)
            if len(self._unmined) > UNMINED_KEPT:  # ones never mined (replaced, dropped)
                del self._unmined[next(iter(self._unmined))]
        return tx_hash

    def _rebroadcast(self, tx_hashes: Sequence[str]) -> None:
        """Hand the signed transactions of ``tx_hashes`` to a node again (counted in
        :attr:`rebroadcasts`). Best effort: a node holding one answers "already known" (fine),
        and one that cannot be sent now is tried again at the next rebroadcast."""
        for tx_hash in tx_hashes:
            raw = self._unmined.get(tx_hash)
            if raw is None:
                continue
            try:
                self._send_raw(raw, tx_hash)
                self.rebroadcasts += 1
            except (ChainsenseError, Web3RPCError, ValueError):
                continue

    def _send_raw(self, raw: bytes, tx_hash: str) -> None:
        """Hand a signed transaction to a node (``eth_sendRawTransaction``)."""

        def _send(w3: Web3) -> None:
            try:
                w3.eth.send_raw_transaction(raw)
            except Web3RPCError as exc:
                if any(s in str(exc).lower() for s in _ALREADY_KNOWN) and _known(w3, tx_hash):
                    return  # a previous attempt (maybe via another endpoint) got through
                raise

        self._run(_send, write=True)

    def tx_known(self, tx_hash: str) -> bool:
        """Whether a node knows the transaction (in its pool or mined)."""
        return bool(self._run(lambda w3: _known(w3, tx_hash)))

    def wait(self, tx_hash: str, timeout: float | None = None) -> TxResult:
        """Wait for a receipt (and :attr:`confirmations` blocks on top of it); a failed
        transaction raises :class:`RevertError` with the reason."""
        limit = self.receipt_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        receipt = self._collected.pop(tx_hash, None)
        quiet_since = time.monotonic()
        while receipt is None:
            receipt = self._receipt(tx_hash)
            if receipt is not None and self.confirmations:
                # on a chain with several sealers a block can be replaced: accept the receipt
                # once enough blocks are on top and it is still the one the node reports
                if self.block_number() >= int(receipt["blockNumber"]) + self.confirmations:
                    again = self._receipt(tx_hash)
                    if again is not None and again["blockHash"] == receipt["blockHash"]:
                        break
            elif receipt is not None:
                break
            receipt = None
            now = time.monotonic()
            if now > deadline:
                depth = f" and {self.confirmations} blocks on top" if self.confirmations else ""
                raise ChainError(f"transaction {tx_hash}: no receipt{depth} after {limit:g} s")
            if now - quiet_since > self.rebroadcast_after:
                self._rebroadcast([tx_hash])
                quiet_since = now
            time.sleep(self.poll_interval)
        with self._lock:  # (the eviction in send() iterates the dict)
            self._unmined.pop(tx_hash, None)
        result = TxResult(
            tx_hash=tx_hash,
            block=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
            status=int(receipt["status"]),
            logs=tuple(receipt["logs"]),
            contract_address=receipt.get("contractAddress"),
        )
        self._seen_block(result.block)
        if result.status != 1:
            raise RevertError(self._failure_reason(tx_hash, result.block), tx_hash)
        return result

    def collect_receipts(self, tx_hashes: Sequence[str], timeout: float | None = None) -> int:
        """Wait until each of ``tx_hashes`` has a receipt with :attr:`confirmations` blocks on
        top, asking for all outstanding ones in one round (:meth:`_receipts_now`) per poll
        instead of one :meth:`wait` loop per transaction; stops at ``timeout`` (default
        :attr:`receipt_timeout`). The next :meth:`wait` of each hash takes its receipt from
        here. Returns how many were found."""
        limit = self.receipt_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        todo = [h for h in dict.fromkeys(tx_hashes) if h not in self._collected]
        found = len(tx_hashes) - len(todo)
        quiet_since = time.monotonic()
        while todo:
            left = []
            for tx_hash, receipt in zip(todo, self._confirmed_receipts(todo), strict=True):
                if receipt is None:
                    left.append(tx_hash)
                else:
                    self._collected[tx_hash] = receipt
                    with self._lock:
                        self._unmined.pop(tx_hash, None)
                    found += 1
            now = time.monotonic()
            if len(left) < len(todo):
                quiet_since = now
            elif left and now - quiet_since > self.rebroadcast_after:
                self._rebroadcast(left)  # lost with a dead node's pool? fill the gap
                quiet_since = now
            todo = left
            if todo and now > deadline:
                break
            if todo:
                time.sleep(self.poll_interval)
        return found

    def _confirmed_receipts(self, tx_hashes: Sequence[str]) -> list[Any]:
        """The receipt of each hash that has :attr:`confirmations` blocks on top, else None.

        The head is read first: a receipt read after a head at least ``confirmations`` blocks
        above its block is the canonical one (what :meth:`wait` checks by reading it twice).
        """
        head = self.block_number()
        out = []
        for tx_hash in tx_hashes:
            receipt = self._receipt(tx_hash)
            deep = receipt is not None and int(receipt["blockNumber"]) + self.confirmations <= head
            out.append(receipt if deep else None)
        return out

    def _seen_block(self, block: int) -> None:
        """A transaction of ours is confirmed in ``block`` (RpcChain reads from there on)."""

    def _receipt(self, tx_hash: str) -> Any:
        try:
            return self._run(lambda w3: w3.eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]
        except TransactionNotFound:
            return None

    def _failure_reason(self, tx_hash: str, block: int) -> str:
        """Replay a failed transaction as a call on the state before its block to get the reason."""
        try:
            tx = self._run(lambda w3: w3.eth.get_transaction(tx_hash))  # type: ignore[arg-type]
            call = {
                "from": tx["from"],
                "to": tx["to"],
                "data": tx["input"],
                "value": tx["value"],
                "gas": tx["gas"],  # not the block's limit, which the sender may not afford
            }
            self._run(lambda w3: w3.eth.call(call, block - 1))  # type: ignore[arg-type]
        except (ContractLogicError, Web3RPCError) as exc:
            return revert_reason(exc)
        except ChainsenseError:
            raise
        except Exception as exc:  # replay impossible (pruned state): report what we know
            return f"status 0 ({type(exc).__name__})"
        return "status 0 (out of gas or state changed since)"

    def transact(
        self,
        sender: KeyPair | None,
        *,
        to: str | None,
        data: bytes | str = b"",
        value: int = 0,
        gas: int | None = None,
    ) -> TxResult:
        """:meth:`send` then :meth:`wait`."""
        return self.wait(self.send(sender, to=to, data=data, value=value, gas=gas))

    def fund(self, address: str, wei: int, funder: KeyPair | None = None) -> TxResult:
        """Send ``wei`` to ``address`` from ``funder`` (or the node's dev account)."""
        if wei <= 0:
            raise ChainsenseError(f"amount: must be positive, got {wei}")
        return self.transact(funder, to=checksum(address), value=wei, gas=21_000)

    def close(self) -> None:
        """Release resources (HTTP sessions); the object is unusable afterwards."""
