"""``eth_getLogs`` for the embedded chain at the cost of the logs it returns.

eth-tester answers ``eth_getLogs`` by fetching the receipt of every transaction in range, and
finds each one by scanning the chain backwards from its head: one query over 200 one-transaction
blocks took 8-16 s. :class:`LogIndex` reads each new block's receipts once, straight from py-evm's
database, keeps the logs in memory in chain order and filters them there, with the semantics of
geth's filter (address, block range, topics with ``None`` for any and lists for any-of).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Any

from eth_utils import to_checksum_address
from hexbytes import HexBytes
from web3.datastructures import AttributeDict

from chainsense.chain.errors import ChainError


def _topic(value: Any) -> bytes:
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
    if len(raw) != 32:
        raise ChainError(f"log filter: a topic must be 32 bytes, got {len(raw)}")
    return raw


def _topic_sets(topics: Sequence[Any]) -> list[frozenset[bytes] | None]:
    """Per position: None (any) or the set of accepted topics."""
    out: list[frozenset[bytes] | None] = []
    for position in topics:
        if position is None:
            out.append(None)
        elif isinstance(position, list | tuple):
            out.append(frozenset(_topic(t) for t in position) or None)
        else:
            out.append(frozenset((_topic(position),)))
    return out


class LogIndex:
    """The logs of a py-evm chain (``eth_tester``'s backend chain), indexed as blocks appear."""

    def __init__(self, evm_chain: Any) -> None:
        self._chain = evm_chain
        self._logs: list[AttributeDict[str, Any]] = []
        self._log_blocks: list[int] = []  # block number of each log (for bisecting a range)
        self._hashes: list[bytes] = []  # hash of every indexed block, by number

    def _catch_up(self) -> int:
        """Index the blocks mined since the last call; returns the head's number."""
        head = int(self._chain.get_canonical_head().block_number)
        if self._hashes and (
            len(self._hashes) > head + 1
            or self._chain.get_canonical_block_hash(len(self._hashes) - 1) != self._hashes[-1]
        ):  # a reverted snapshot replaced blocks: start over
            self._logs, self._log_blocks, self._hashes = [], [], []
        for number in range(len(self._hashes), head + 1):
            block = self._chain.get_canonical_block_by_number(number)
            log_index = 0
            receipts = block.get_receipts(self._chain.chaindb)
            for tx_index, (tx, receipt) in enumerate(
                zip(block.transactions, receipts, strict=True)
            ):
                for log in receipt.logs:
                    self._logs.append(
                        AttributeDict(
                            {
                                "address": to_checksum_address(log.address),
                                "topics": [HexBytes(t.to_bytes(32)) for t in log.topics],
                                "data": HexBytes(log.data),
                                "blockNumber": number,
                                "blockHash": HexBytes(block.hash),
                                "transactionHash": HexBytes(tx.hash),
                                "transactionIndex": tx_index,
                                "logIndex": log_index,
                                "removed": False,
                            }
                        )
                    )
                    self._log_blocks.append(number)
                    log_index += 1
            self._hashes.append(bytes(block.hash))
        return head

    def query(self, flt: Mapping[str, Any]) -> list[AttributeDict[str, Any]]:
        """The logs matching an ``eth_getLogs`` filter, in chain order."""
        head = self._catch_up()
        low = _block(flt.get("fromBlock", "latest"), head)
        high = _block(flt.get("toBlock", "latest"), head)
        address = flt.get("address")
        wanted = None if address is None else to_checksum_address(address)
        topics = _topic_sets(flt.get("topics") or [])
        start = bisect.bisect_left(self._log_blocks, low)
        end = bisect.bisect_right(self._log_blocks, high)
        out = []
        for log in self._logs[start:end]:
            if wanted is not None and log["address"] != wanted:
                continue
            if len(log["topics"]) < len(topics):
                continue
            if all(s is None or bytes(t) in s for s, t in zip(topics, log["topics"], strict=False)):
                out.append(log)
        return out


def _block(value: Any, head: int) -> int:
    if value in ("latest", "pending", "safe", "finalized"):
        return head
    if value == "earliest":
        return 0
    if isinstance(value, str):
        return int(value, 16)
    return int(value)
