"""The JSON-RPC backend: one or more nodes (anvil, geth) with failover and head tracking.

Reads go round-robin over healthy endpoints; transactions go preferably to "follower" nodes; on a
connection error or timeout the endpoint is benched for a while and the next one is tried.
Re-sending the same signed transaction is harmless, so failover never double-spends a nonce.

Nodes of one network import a block a moment apart, and a restarted node may be far behind while
it resyncs. So :class:`RpcChain` also tracks each endpoint's head (``eth_blockNumber``, cached
briefly): it prefers endpoints within ``lag_tolerance`` blocks of the best head seen, never sends
a request to one below the block of the last transaction it confirmed ("read your writes"), and
fails over instead of raising when a node that is behind answers with an error that stale state
explains (``insufficient funds``, ``header not found``, ...).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import requests
from requests.adapters import HTTPAdapter
from web3 import HTTPProvider, Web3
from web3._utils.method_formatters import receipt_formatter
from web3.exceptions import ProviderConnectionError, Web3RPCError
from web3.middleware import ExtraDataToPOAMiddleware
from web3.types import RPCEndpoint

from chainsense.chain.base import Chain
from chainsense.chain.errors import ChainError, revert_reason
from chainsense.errors import ChainsenseError

T = TypeVar("T")
Role = Literal["sealer", "follower", "unknown"]

_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.RequestException,  # connection refused/reset, timeout, HTTP 5xx
    ProviderConnectionError,
    ConnectionError,
    TimeoutError,
)
# what a node answers when its state is behind the network's (a genuine refusal from a node at
# the best head is raised; from a node behind it, the request goes to the next endpoint)
_STALE_STATE = (
    "insufficient funds",
    "nonce too low",
    "header not found",
    "unknown block",
    "missing trie node",
)


POOL_SIZE = 32
"""HTTP connections kept open per endpoint (requests keeps 10 by default: more threads than
that would open and drop a connection a request)."""

RECEIPT_BATCH = 500
"""Receipts asked for in one JSON-RPC batch (geth answers at most 1,000 calls a batch)."""


def _batch_receipts(w3: Web3, tx_hashes: list[str]) -> tuple[int, list[Any]]:
    """The node's head and the receipt (None: not mined) of each hash, in one HTTP request."""
    calls: list[tuple[RPCEndpoint, Any]] = [(RPCEndpoint("eth_blockNumber"), [])]
    calls += [(RPCEndpoint("eth_getTransactionReceipt"), [h]) for h in tx_hashes]
    answers = w3.provider.make_batch_request(calls)  # type: ignore[attr-defined]
    if not isinstance(answers, list) or len(answers) != len(calls):
        raise ChainError(f"receipts: the node refused a batch request ({answers!r:.200})")
    for answer in answers:
        if "error" in answer:
            raise ChainError(f"receipts: {answer['error']!r:.200}")
    head = int(answers[0]["result"], 16)
    return head, [
        None if a["result"] is None else receipt_formatter(a["result"]) for a in answers[1:]
    ]


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
            # one kept-alive connection per thread that sends (sessions flush MTs in parallel)
            ep.session.mount("http://", HTTPAdapter(pool_maxsize=POOL_SIZE))
            ep.session.mount("https://", HTTPAdapter(pool_maxsize=POOL_SIZE))
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
                errors.append(f"{ep.name}: behind at block {ep.head} ({revert_reason(exc)})")
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

    def _confirmed_receipts(self, tx_hashes: Sequence[str]) -> list[Any]:
        """One JSON-RPC batch per :data:`RECEIPT_BATCH` hashes: ``eth_blockNumber`` first, then
        the receipts (a node answers a batch in order, so each receipt is read after that head).
        """
        out: list[Any] = []
        for lo in range(0, len(tx_hashes), RECEIPT_BATCH):
            chunk = list(tx_hashes[lo : lo + RECEIPT_BATCH])
            head, receipts = self._run(lambda w3, chunk=chunk: _batch_receipts(w3, chunk))
            self.best_head = max(self.best_head, head)
            for receipt in receipts:
                deep = receipt is not None and receipt["blockNumber"] + self.confirmations <= head
                out.append(receipt if deep else None)
        return out

    def close(self) -> None:
        for ep in self.endpoints:
            ep.session.close()

    def __repr__(self) -> str:
        return f"RpcChain({[e.url for e in self.endpoints]!r})"
