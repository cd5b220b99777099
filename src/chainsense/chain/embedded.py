"""The embedded backend: eth-tester + py-evm inside this process (nothing to start)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from eth._utils.address import generate_contract_address
from eth.abc import SignedTransactionAPI
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.exceptions import TransactionFailed
from eth_utils import to_checksum_address
from eth_utils.exceptions import ValidationError as EthValidationError
from hexbytes import HexBytes
from web3 import EthereumTesterProvider, Web3
from web3.datastructures import AttributeDict

from chainsense.chain.base import Chain
from chainsense.chain.errors import ChainError, RevertError, revert_reason
from chainsense.chain.log_index import LogIndex

T = TypeVar("T")

BLOCK_GAS_LIMIT = 200_000_000
"""Gas per block of the embedded chain: hundreds of records a block (mainnet's 30M would cut a
pipeline of 240k-gas submits into blocks of 125). Not more: eth-tester caps a gas estimate at
the block's limit and wants the sender to afford that much gas."""


class EmbeddedChain(Chain):
    """In-process EVM (eth-tester + py-evm) with funded dev accounts.

    Locally signed transactions wait in a pool and are mined together, one block for all (split
    by :data:`BLOCK_GAS_LIMIT`), as soon as anything reads the chain: a receipt, a view, a nonce.
    A pipeline of sends thus pays py-evm's per-block cost (state root, tries, persisting) once,
    not once a transaction, and every reader still sees every transaction sent before it.
    A transaction the EVM refuses outright (bad nonce, unaffordable gas) is dropped from its
    block and its receipt wait fails at once with the reason.

    Gas is free here and every EVM run costs milliseconds of Python, so transactions with a
    given gas limit skip the dry run: a revert is mined as a failed transaction and explained by
    replay.
    """

    dry_run_before_send = False

    def __init__(self) -> None:
        super().__init__()
        genesis = PyEVMBackend.generate_genesis_params(overrides={"gas_limit": BLOCK_GAS_LIMIT})
        self.tester = EthereumTester(PyEVMBackend(genesis_parameters=genesis))
        self.w3 = Web3(EthereumTesterProvider(self.tester))
        self._run_lock = threading.RLock()
        self._log_index = LogIndex(self.tester.backend.chain)
        self._pool: list[SignedTransactionAPI] = []
        self._dropped: dict[str, str] = {}
        # receipts of the blocks mined here, built at mining time: eth-tester decodes a
        # transaction's whole block to find one receipt, which costs a block of N transactions
        # N^2 work; each is handed out once, then eth-tester answers
        self._mined: dict[str, AttributeDict[str, Any]] = {}

    def _run(self, fn: Callable[[Web3], T], *, write: bool = False) -> T:
        with self._run_lock:  # py-evm is not thread-safe
            self._mine_pool()
            try:
                return fn(self.w3)
            except TransactionFailed as exc:  # eth-tester's form of a revert
                raise RevertError(revert_reason(exc)) from exc

    def get_logs(self, flt: Mapping[str, Any]) -> list[Any]:
        """``eth_getLogs`` from an in-memory index (eth-tester's own is quadratic in blocks);
        pooled transactions are mined first, as for every other read."""
        with self._run_lock:
            self._mine_pool()
            return list(self._log_index.query(flt))

    def _send_raw(self, raw: bytes, tx_hash: str) -> None:
        with self._run_lock:
            chain = self.tester.backend.chain
            self._pool.append(chain.get_vm().get_transaction_builder().decode(raw))

    def _receipt(self, tx_hash: str) -> Any:
        with self._run_lock:
            self._mine_pool()
            receipt = self._mined.pop(tx_hash, None)
        if receipt is not None:
            return receipt
        receipt = super()._receipt(tx_hash)
        if receipt is None and tx_hash in self._dropped:
            raise ChainError(f"transaction {tx_hash} dropped: {self._dropped[tx_hash]}")
        return receipt

    def _confirmed_receipts(self, tx_hashes: Sequence[str]) -> list[Any]:
        """Every receipt after one mining of the pool (not one a hash: with MTs sending from
        several threads, each lookup would otherwise mine a block of whatever came in since)."""
        with self._run_lock:
            self._mine_pool()
            return [self._receipt(h) for h in tx_hashes]

    def pending(self) -> int:
        """Transactions sent but not mined yet (the next read mines them)."""
        return len(self._pool)

    def _mine_pool(self) -> None:
        """Mine the pooled transactions: blocks of as many as the gas limit allows."""
        txs, self._pool = self._pool, []
        block: list[SignedTransactionAPI] = []
        gas = 0
        for tx in txs:
            if block and gas + tx.gas > BLOCK_GAS_LIMIT:
                self._mine(block)
                block, gas = [], 0
            block.append(tx)
            gas += tx.gas
        if block:
            self._mine(block)

    def _mine(self, txs: list[SignedTransactionAPI]) -> None:
        """One block of ``txs``; when the EVM refuses one, each is mined alone and the refused
        ones are dropped (rare: a nonce gap after a failed send, an unfunded sender)."""
        try:
            self._mine_block(txs)
        except EthValidationError as exc:
            if len(txs) == 1:
                self._dropped["0x" + txs[0].hash.hex()] = str(exc)
                return
            for tx in txs:
                self._mine([tx])

    def _mine_block(self, txs: list[SignedTransactionAPI]) -> None:
        # what eth-tester's mine_blocks passes: post-merge, a random mix hash stands in for
        # prevrandao
        result, receipts, _ = self.tester.backend.chain.mine_all(txs, mix_hash=os.urandom(32))
        header = result.imported_block.header
        gas_before = log_index = 0
        for index, (tx, receipt) in enumerate(zip(txs, receipts, strict=True)):
            tx_hash = HexBytes(tx.hash)
            logs = []
            for log in receipt.logs:
                logs.append(
                    AttributeDict(
                        {
                            "address": to_checksum_address(log.address),
                            "topics": [HexBytes(t.to_bytes(32, "big")) for t in log.topics],
                            "data": HexBytes(log.data),
                            "logIndex": log_index,
                            "transactionIndex": index,
                            "transactionHash": tx_hash,
                            "blockHash": HexBytes(header.hash),
                            "blockNumber": header.block_number,
                            "removed": False,
                        }
                    )
                )
                log_index += 1
            created = None
            if not tx.to:
                created = to_checksum_address(generate_contract_address(tx.sender, tx.nonce))
            self._mined[tx_hash.to_0x_hex()] = AttributeDict(
                {
                    "transactionHash": tx_hash,
                    "transactionIndex": index,
                    "blockHash": HexBytes(header.hash),
                    "blockNumber": header.block_number,
                    "gasUsed": receipt.gas_used - gas_before,
                    "status": 1 if receipt.state_root == b"\x01" else 0,
                    "logs": logs,
                    "contractAddress": created,
                }
            )
            gas_before = receipt.gas_used

    def __repr__(self) -> str:
        return "EmbeddedChain()"
