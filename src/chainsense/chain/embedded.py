"""The embedded backend: eth-tester + py-evm inside this process (nothing to start)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.exceptions import TransactionFailed
from web3 import EthereumTesterProvider, Web3

from chainsense.chain.base import Chain
from chainsense.chain.errors import RevertError, revert_reason
from chainsense.chain.log_index import LogIndex

T = TypeVar("T")


class EmbeddedChain(Chain):
    """In-process EVM (eth-tester + py-evm): one block per transaction, funded dev accounts.

    Gas is free here and every EVM run costs ~25 ms of Python, so transactions with a given gas
    limit skip the dry run: a revert is mined as a failed transaction and explained by replay.
    """

    dry_run_before_send = False

    def __init__(self) -> None:
        super().__init__()
        self.tester = EthereumTester(PyEVMBackend())
        self.w3 = Web3(EthereumTesterProvider(self.tester))
        self._run_lock = threading.Lock()
        self._log_index = LogIndex(self.tester.backend.chain)

    def _run(self, fn: Callable[[Web3], T], *, write: bool = False) -> T:
        with self._run_lock:  # py-evm is not thread-safe
            try:
                return fn(self.w3)
            except TransactionFailed as exc:  # eth-tester's form of a revert
                raise RevertError(revert_reason(exc)) from exc

    def get_logs(self, flt: Mapping[str, Any]) -> list[Any]:
        """``eth_getLogs`` from an in-memory index (eth-tester's own is quadratic in blocks)."""
        with self._run_lock:
            return list(self._log_index.query(flt))

    def __repr__(self) -> str:
        return "EmbeddedChain()"
