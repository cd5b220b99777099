"""One interface over Ethereum backends: an in-process EVM and JSON-RPC nodes with failover.

:class:`Chain` does what the ledger needs from any node: send locally signed transactions
(legacy or EIP-1559 gas, whichever the chain supports), wait for receipts, call views, fund
accounts and deploy the ledger contract. Backends only differ in how they reach a node:

* :class:`EmbeddedChain`: eth-tester + py-evm inside this process (default; nothing to start,
  a block per transaction);
* :class:`RpcChain`: one or more JSON-RPC endpoints (anvil, geth). Reads go round-robin over
  healthy endpoints; transactions go preferably to "follower" nodes; on a connection error or
  timeout the endpoint is benched for a while and the next one is tried. Re-sending the same
  signed transaction is harmless, so failover never double-spends a nonce.

  Nodes of one network import a block a moment apart, and a restarted node may be far behind
  while it resyncs. So :class:`RpcChain` also tracks each endpoint's head (``eth_blockNumber``,
  cached briefly): it prefers endpoints within ``lag_tolerance`` blocks of the best head seen,
  never sends a request to one below the block of the last transaction it confirmed ("read your
  writes"), and fails over instead of raising when a node that is behind answers with an error
  that stale state explains (``insufficient funds``, ``header not found``, ...).

Contract-level operations (submit, query, verify) live in :mod:`chainsense.ledger.contract`;
``Chain.deploy_ledger`` / ``Chain.ledger`` return that wrapper.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import requests
from eth_account import Account
from eth_utils.exceptions import ValidationError as EthValidationError
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    TransactionNotFound,
    Web3RPCError,
)
from web3.middleware import ExtraDataToPOAMiddleware

from chainsense.errors import ChainsenseError
from chainsense.ledger.keys import KeyPair, checksum, load_key

if TYPE_CHECKING:
    from chainsense.ledger.contract import Ledger

T = TypeVar("T")
Role = Literal["sealer", "follower", "unknown"]

_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.RequestException,  # connection refused/reset, timeout, HTTP 5xx
    ProviderConnectionError,
    ConnectionError,
    TimeoutError,
)
# what nodes answer when a transaction we re-send is already in their pool or mined
_ALREADY_KNOWN = ("already known", "known transaction", "already imported", "nonce too low")
# what a node answers when its state is behind the network's (a genuine refusal from a node at
# the best head is raised; from a node behind it, the request goes to the next endpoint)
_STALE_STATE = (
    "insufficient funds",
    "nonce too low",
    "header not found",
    "unknown block",
    "missing trie node",
)


class ChainError(ChainsenseError):
    """The chain could not be reached or refused a request."""


class RevertError(ChainError):
    """A transaction or call reverted; ``reason`` is the contract's message."""

    def __init__(self, reason: str, tx_hash: str | None = None) -> None:
        self.reason = reason
        self.tx_hash = tx_hash
        super().__init__(f"transaction reverted: {reason}")


@dataclass(frozen=True)
class TxResult:
    """Outcome of a mined transaction."""

    tx_hash: str
    block: int
    gas_used: int
    status: int
    logs: tuple[Any, ...] = ()
    contract_address: str | None = None


@dataclass
class Endpoint:
    """One JSON-RPC endpoint with its health state."""

    url: str
    role: Role = "unknown"
    name: str = ""
    w3: Web3 = field(init=False, repr=False)
    session: requests.Session = field(init=False, repr=False)
    down_until: float = 0.0
    failures: int = 0
    head: int = -1  # last block number it reported (-1: never asked)
    head_at: float = float("-inf")  # monotonic time of that answer

    def healthy(self, now: float) -> bool:
        return now >= self.down_until


def _revert_reason(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    for prefix in ("execution reverted: ", "execution reverted:", "revert: "):
        if prefix in message:
            message = message.split(prefix, 1)[1]
    return message.strip().strip("'\"") or "reverted without a reason"


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

    def __init__(self) -> None:
        self._nonces: dict[str, int] = {}
        self._lock = threading.Lock()
        self._chain_id: int | None = None
        self._eip1559: bool | None = None

    # --- transport -----------------------------------------------------------------------
    def _run(self, fn: Callable[[Web3], T], *, write: bool = False) -> T:
        raise NotImplementedError

    def call(self, fn: Callable[[Web3], T]) -> T:
        """Run a read-only ``fn(w3)`` on a healthy endpoint (with failover)."""
        return self._run(fn)

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
        """EIP-1559 fees when the chain has a base fee (London), else a legacy gas price."""
        if self._eip1559 is False:
            return {"gasPrice": int(self._run(lambda w3: w3.eth.gas_price))}
        base = self._run(lambda w3: w3.eth.get_block("latest")).get("baseFeePerGas")
        self._eip1559 = base is not None
        if base is None:
            return self._fees()
        tip = 10**9
        return {"maxFeePerGas": 2 * int(base) + tip, "maxPriorityFeePerGas": tip}

    def _next_nonce(self, address: str) -> int:
        with self._lock:
            chain_nonce = int(
                self._run(lambda w3: w3.eth.get_transaction_count(address, "pending"))
            )
            nonce = max(chain_nonce, self._nonces.get(address, 0))
            self._nonces[address] = nonce + 1
            return nonce

    def forget_nonce(self, address: str) -> None:
        """Drop the local nonce cache (after a failed send the node's count is the truth)."""
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
            raise RevertError(_revert_reason(exc)) from exc
        except Web3RPCError as exc:
            if "revert" in str(exc).lower():
                raise RevertError(_revert_reason(exc)) from exc
            raise ChainError(f"transaction refused by the node: {_revert_reason(exc)}") from exc
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
    ) -> str:
        """Sign (locally) and send a transaction; returns its hash without waiting.

        ``sender=None`` uses the node's unlocked dev account (anvil, embedded) via
        ``eth_sendTransaction``. A dry run first (the gas estimate, or one ``eth_call`` when
        ``gas`` is given) refuses a transaction that would revert, with the contract's reason,
        before anything is sent.
        """
        data_hex = HexBytes(data).to_0x_hex()
        frm = sender.address if sender is not None else self.dev_account()
        base: dict[str, Any] = {"from": frm, "value": value, "data": data_hex}
        if to is not None:
            base["to"] = checksum(to)
        if gas is None:
            gas = int(self.estimate(base) * self.gas_margin) + 10_000
        elif self.dry_run_before_send:
            self.dry_run(base)
        tx = base | {"gas": gas, "chainId": self.chain_id} | self._fees()
        if sender is None:
            tx_hash = self._run(lambda w3: w3.eth.send_transaction(tx), write=True)  # type: ignore[arg-type]
            return HexBytes(tx_hash).to_0x_hex()
        tx["nonce"] = self._next_nonce(frm)
        del tx["from"]
        raw = Account.sign_transaction(tx, sender.private_key)
        tx_hash = HexBytes(raw.hash).to_0x_hex()

        def _send(w3: Web3) -> None:
            try:
                w3.eth.send_raw_transaction(raw.raw_transaction)
            except Web3RPCError as exc:
                if any(s in str(exc).lower() for s in _ALREADY_KNOWN) and _known(w3, tx_hash):
                    return  # a previous attempt (maybe via another endpoint) got through
                raise

        try:
            self._run(_send, write=True)
        except Exception:
            self.forget_nonce(frm)
            raise
        return tx_hash

    def tx_known(self, tx_hash: str) -> bool:
        """Whether a node knows the transaction (in its pool or mined)."""
        return bool(self._run(lambda w3: _known(w3, tx_hash)))

    def wait(self, tx_hash: str, timeout: float | None = None) -> TxResult:
        """Wait for a receipt (and :attr:`confirmations` blocks on top of it); a failed
        transaction raises :class:`RevertError` with the reason."""
        limit = self.receipt_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
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
            if time.monotonic() > deadline:
                depth = f" and {self.confirmations} blocks on top" if self.confirmations else ""
                raise ChainError(f"transaction {tx_hash}: no receipt{depth} after {limit:g} s")
            time.sleep(self.poll_interval)
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
            call = {"from": tx["from"], "to": tx["to"], "data": tx["input"], "value": tx["value"]}
            self._run(lambda w3: w3.eth.call(call, block - 1))  # type: ignore[arg-type]
        except (ContractLogicError, Web3RPCError) as exc:
            return _revert_reason(exc)
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

    # --- the ledger contract ---------------------------------------------------------------
    def deploy_ledger(self, ca_address: str, deployer: KeyPair | None = None) -> Ledger:
        """Deploy the ledger contract with ``ca_address`` as CA; the deployer becomes admin."""
        from chainsense.ledger.contract import deploy_ledger

        return deploy_ledger(self, ca_address, deployer)

    def ledger(self, address: str) -> Ledger:
        """Wrapper of an already deployed ledger contract (checks there is code)."""
        from chainsense.ledger.contract import Ledger

        return Ledger(self, address)

    def close(self) -> None:
        """Release resources (HTTP sessions); the object is unusable afterwards."""


class EmbeddedChain(Chain):
    """In-process EVM (eth-tester + py-evm): one block per transaction, funded dev accounts.

    Gas is free here and every EVM run costs ~25 ms of Python, so transactions with a given gas
    limit skip the dry run: a revert is mined as a failed transaction and explained by replay.
    """

    dry_run_before_send = False

    def __init__(self) -> None:
        super().__init__()
        from eth_tester import EthereumTester, PyEVMBackend
        from web3 import EthereumTesterProvider

        self.tester = EthereumTester(PyEVMBackend())
        self.w3 = Web3(EthereumTesterProvider(self.tester))
        self._run_lock = threading.Lock()

    def _run(self, fn: Callable[[Web3], T], *, write: bool = False) -> T:
        from eth_tester.exceptions import TransactionFailed

        with self._run_lock:  # py-evm is not thread-safe
            try:
                return fn(self.w3)
            except TransactionFailed as exc:  # eth-tester's form of a revert
                raise RevertError(_revert_reason(exc)) from exc

    def __repr__(self) -> str:
        return "EmbeddedChain()"


class _Failed:
    """Marker: the endpoint did not answer usefully; try the next one."""


_FAILED = _Failed()


class RpcChain(Chain):
    """JSON-RPC endpoints with failover, round-robin reads and head tracking.

    ``endpoints`` are URLs or ``(url, role)`` pairs; ``timeout`` bounds each request so that a
    hung node is detected; a failed endpoint is benched ``cooldown`` seconds. An endpoint more
    than ``lag_tolerance`` blocks below the best head seen is used only when no other answers;
    heads are re-read after ``head_ttl`` seconds. Every request goes to an endpoint whose head
    is at least :attr:`min_block` (raised by every confirmed transaction, or by
    :meth:`require_block`); when none is, requests wait up to ``sync_timeout`` seconds for one.
    """

    def __init__(
        self,
        endpoints: Sequence[str | tuple[str, Role]],
        *,
        timeout: float = 5.0,
        cooldown: float = 2.0,
        names: Sequence[str] | None = None,
        lag_tolerance: int = 1,
        head_ttl: float = 0.5,
        sync_timeout: float = 15.0,
    ) -> None:
        super().__init__()
        if not endpoints:
            raise ChainsenseError("endpoints: at least one JSON-RPC URL is needed")
        if (
            isinstance(lag_tolerance, bool)
            or not isinstance(lag_tolerance, int)
            or lag_tolerance < 0
        ):
            raise ChainsenseError(f"lag_tolerance: must be an integer >= 0, got {lag_tolerance!r}")
        for label, value in (("head_ttl", head_ttl), ("sync_timeout", sync_timeout)):
            if not value >= 0:
                raise ChainsenseError(f"{label}: must be >= 0 seconds, got {value!r}")
        self.timeout = timeout
        self.cooldown = cooldown
        self.lag_tolerance = lag_tolerance
        self.head_ttl = head_ttl
        self.sync_timeout = sync_timeout
        self.endpoints: list[Endpoint] = []
        for i, spec in enumerate(endpoints):
            url, role = (spec, "unknown") if isinstance(spec, str) else spec
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ChainsenseError(f"endpoints[{i}]: not an http(s) URL: {url!r}")
            ep = Endpoint(url=url, role=role, name=names[i] if names else url)
            ep.session = requests.Session()  # ours, so that close() can release it
            ep.w3 = Web3(
                HTTPProvider(
                    url,
                    request_kwargs={"timeout": timeout},
                    session=ep.session,
                    exception_retry_configuration=None,
                )
            )
            # Clique (geth PoA) headers carry 97 bytes of extraData that web3 refuses unless
            # this middleware is installed; it is a no-op on other chains.
            ep.w3.middleware_onion.inject(ExtraDataToPOAMiddleware, name="chainsense_poa", layer=0)
            self.endpoints.append(ep)
        self._rr = itertools.count()
        self.failovers = 0
        #: requests steered away from an endpoint because its head was behind
        self.lag_skips = 0
        #: highest head any endpoint reported (or that a receipt proved)
        self.best_head = -1
        #: every request goes to an endpoint whose head is at least this block
        self.min_block = 0

    # --- read your writes ------------------------------------------------------------------
    def require_block(self, block: int) -> None:
        """From now on, only use endpoints that have imported ``block`` (e.g. another client's
        write); the requirement only ever rises."""
        if isinstance(block, bool) or not isinstance(block, int) or block < 0:
            raise ChainsenseError(f"block: must be an integer >= 0, got {block!r}")
        self.min_block = max(self.min_block, block)
        self.best_head = max(self.best_head, block)

    def require_latest(self) -> int:
        """Ask every endpoint for its head and require the best one: later reads see at least
        everything the most advanced node had now. Returns that block."""
        errors: list[str] = []
        for ep in self.endpoints:
            self._probe(ep, errors)
        if self.best_head < 0:
            raise ChainError("no JSON-RPC endpoint reachable (" + "; ".join(errors) + ")")
        self.require_block(self.best_head)
        return self.best_head

    def heads(self) -> dict[str, int | None]:
        """Fresh head of every endpoint by name (None: unreachable)."""
        out: dict[str, int | None] = {}
        for ep in self.endpoints:
            out[ep.name] = self._probe(ep, [])
        return out

    def _seen_block(self, block: int) -> None:
        self.require_block(block)

    # --- endpoint selection ----------------------------------------------------------------
    def _order(self, write: bool) -> list[Endpoint]:
        now = time.monotonic()
        start = next(self._rr) % len(self.endpoints)
        ring = self.endpoints[start:] + self.endpoints[:start]
        if write:  # followers first: sealers keep sealing, as in the paper's deployment
            ring.sort(key=lambda e: e.role != "follower")
        healthy = [e for e in ring if e.healthy(now)]
        benched = sorted((e for e in ring if not e.healthy(now)), key=lambda e: e.down_until)
        return healthy + benched  # when all are benched, still try them (soonest back first)

    def _bench(self, ep: Endpoint, exc: BaseException, errors: list[str]) -> None:
        ep.failures += 1
        ep.down_until = time.monotonic() + self.cooldown
        self.failovers += 1
        errors.append(f"{ep.name}: {type(exc).__name__}")

    def _probe(self, ep: Endpoint, errors: list[str]) -> int | None:
        """Ask ``ep`` for its head (benching it when it does not answer)."""
        try:
            head = int(ep.w3.eth.block_number)
        except (*_CONNECTION_ERRORS, Web3RPCError, ValueError) as exc:
            self._bench(ep, exc, errors)
            return None
        ep.head, ep.head_at = head, time.monotonic()
        self.best_head = max(self.best_head, head)
        return head

    def _refresh(self, errors: list[str]) -> None:
        """Re-read the heads older than ``head_ttl`` of healthy endpoints, so that the best head
        is known before an endpoint is chosen (a cheap ``eth_blockNumber`` each)."""
        now = time.monotonic()
        for ep in self.endpoints:
            if ep.healthy(now) and now - ep.head_at > self.head_ttl:
                self._probe(ep, errors)

    def _head(self, ep: Endpoint, need: int, errors: list[str]) -> int | None:
        """``ep``'s head, re-read when older than ``head_ttl`` or below ``need`` (a node that
        has just imported the block of our receipt is there already)."""
        if ep.head < need or time.monotonic() - ep.head_at > self.head_ttl:
            return self._probe(ep, errors)
        return ep.head

    def _behind(self, ep: Endpoint) -> bool:
        """Whether ``ep`` is below the best head of all endpoints (asked afresh: rare path)."""
        for other in self.endpoints:
            if other.healthy(time.monotonic()):
                self._probe(other, [])
        return ep.head < self.best_head

    def _attempt(self, ep: Endpoint, fn: Callable[[Web3], T], errors: list[str]) -> T | _Failed:
        try:
            result = fn(ep.w3)
        except _CONNECTION_ERRORS as exc:
            self._bench(ep, exc, errors)
            return _FAILED
        except Web3RPCError as exc:
            message = str(exc).lower()
            if any(s in message for s in _STALE_STATE) and self._behind(ep):
                self.failovers += 1
                self.lag_skips += 1
                ep.head_at = float("-inf")  # ask again before using it next time
                errors.append(f"{ep.name}: behind at block {ep.head} ({_revert_reason(exc)})")
                return _FAILED
            raise
        ep.failures = 0
        return result

    def _run(self, fn: Callable[[Web3], T], *, write: bool = False) -> T:
        deadline = time.monotonic() + self.sync_timeout
        while True:
            need = self.min_block
            errors: list[str] = []
            self._refresh(errors)
            lagging: list[Endpoint] = []
            short: list[str] = []  # endpoints that lack our latest confirmed block
            for ep in self._order(write):
                head = self._head(ep, need, errors)
                if head is None:
                    continue
                if head < need:
                    short.append(f"{ep.name}: at block {head}")
                    self.lag_skips += 1
                    continue
                if head + self.lag_tolerance < self.best_head:
                    lagging.append(ep)  # behind the network: last resort
                    self.lag_skips += 1
                    continue
                result = self._attempt(ep, fn, errors)
                if not isinstance(result, _Failed):
                    return result
            for ep in lagging:  # holds our writes, just not the newest blocks of others
                result = self._attempt(ep, fn, errors)
                if not isinstance(result, _Failed):
                    return result
            if not short or time.monotonic() > deadline:
                break
            time.sleep(self.poll_interval)  # a node will import the block a moment later
        detail = "; ".join(errors + short)
        if short:
            raise ChainError(f"no JSON-RPC endpoint has block {need} yet ({detail})")
        raise ChainError("no JSON-RPC endpoint reachable (" + detail + ")")

    def close(self) -> None:
        for ep in self.endpoints:
            ep.session.close()

    def __repr__(self) -> str:
        return f"RpcChain({[e.url for e in self.endpoints]!r})"


@dataclass(frozen=True)
class NetworkFile:
    """What a ``network.json`` tells a client: chain id, endpoints with roles, faucet key."""

    chain_id: int
    endpoints: tuple[tuple[str, Role], ...]
    names: tuple[str, ...]
    faucet_keyfile: Path | None


def read_network_file(path: str | Path) -> NetworkFile:
    """Parse the file ``chainsense network up`` writes (or its directory); names bad fields."""
    p = Path(path)
    if p.is_dir():
        p = p / "network.json"
    if not p.is_file():
        raise ChainsenseError(f"network file: not found: {p}")
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ChainsenseError(f"network file: {p.name} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ChainsenseError("network file: must hold a JSON object")
    chain_id = data.get("chain_id")
    if not isinstance(chain_id, int) or isinstance(chain_id, bool):
        raise ChainsenseError("network file: chain_id must be an integer")
    nodes = data.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise ChainsenseError("network file: nodes must be a non-empty list")
    endpoints: list[tuple[str, Role]] = []
    names: list[str] = []
    for i, node in enumerate(nodes):
        if not isinstance(node, dict) or not isinstance(node.get("rpc"), str):
            raise ChainsenseError(f"network file: nodes[{i}].rpc must be a URL string")
        role = node.get("role", "unknown")
        if role not in ("sealer", "follower", "unknown"):
            raise ChainsenseError(f"network file: nodes[{i}].role must be sealer or follower")
        endpoints.append((node["rpc"], role))
        names.append(str(node.get("name", node["rpc"])))
    faucet = data.get("faucet") or {}
    keyfile = faucet.get("keyfile") if isinstance(faucet, dict) else None
    return NetworkFile(
        chain_id=chain_id,
        endpoints=tuple(endpoints),
        names=tuple(names),
        faucet_keyfile=(p.parent / keyfile) if keyfile else None,
    )


def chain_from_network_file(
    path: str | Path, *, timeout: float = 5.0, cooldown: float = 2.0
) -> tuple[RpcChain, KeyPair | None]:
    """An :class:`RpcChain` over every node of a network file, and its faucet key (if any).

    With several sealers a transaction counts as confirmed one block deep (Clique can replace
    an out-of-turn block). Raises when the nodes report a different chain id than the file says.
    """
    info = read_network_file(path)
    chain = RpcChain(info.endpoints, timeout=timeout, cooldown=cooldown, names=info.names)
    sealers = sum(1 for _, role in info.endpoints if role == "sealer")
    chain.confirmations = 1 if sealers > 1 else 0  # Clique: an out-of-turn block can be replaced
    if chain.chain_id != info.chain_id:
        raise ChainsenseError(
            f"network file: chain_id {info.chain_id} but the nodes report {chain.chain_id}"
        )
    faucet = load_key(info.faucet_keyfile) if info.faucet_keyfile else None
    return chain, faucet
