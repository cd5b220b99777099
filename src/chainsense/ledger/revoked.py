"""The MTs revoked on chain, as a CA sees them: a cached set, refreshed from ``MTRevoked`` events.

A CA asks for every request it countersigns, so the set must be cheap: it is re-read at most once
per ``interval`` seconds, and only the events of blocks it has not read yet (one ``eth_getLogs``
per refresh, not one call per record). Revocations are permanent in the contract, so the set only
grows. When a refresh fails (the node is unreachable) the last set read stays in use and the
next request tries again: the contract still refuses the MT's own submits and the verifier flags
batch entries signed after a revocation, so a CA briefly behind the chain weakens nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from chainsense.chain.keys import checksum
from chainsense.errors import ChainsenseError
from chainsense.ledger.contract import Ledger
from chainsense.ledger.governance import revocations


class RevokedMTs:
    """Callable view of the MTs revoked in ``ledger`` (checksummed addresses)."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not interval >= 0:
            raise ChainsenseError(f"interval: must be >= 0 seconds, got {interval}")
        self.ledger = ledger
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._revoked: frozenset[str] = frozenset()
        self._from_block = 0
        self._read_at = float("-inf")
        #: refreshes that reached the chain (tests and benchmarks count the RPC cost with it)
        self.refreshes = 0
        self._refresh()  # the first read must work: a CA that cannot see the chain says so now

    def __call__(self) -> frozenset[str]:
        with self._lock:
            if self._clock() - self._read_at >= self.interval:
                try:
                    self._refresh()
                except ChainsenseError:
                    self._read_at = self._clock()  # keep the last set; retry after interval
        return self._revoked

    def _refresh(self) -> None:
        head = self.ledger.chain.block_number()
        found = {checksum(r.mt, "mt") for r in revocations(self.ledger, self._from_block)}
        self._revoked = self._revoked | found
        self._from_block = head + 1  # events after head are read again next time: a set
        self._read_at = self._clock()
        self.refreshes += 1
