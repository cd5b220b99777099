"""RpcChain endpoint selection against real anvil nodes at different heights.

Two independent anvil nodes stand in for two nodes of one network, one of them behind: a node
whose head trails is avoided, a confirmed write is only read back from nodes that hold its
block, and an error that stale state explains fails over instead of surfacing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from chainsense.chain.errors import ChainError
from chainsense.chain.keys import KeyPair
from chainsense.chain.rpc import RpcChain
from chainsense.errors import ChainsenseError
from test_ledger_support import Anvil

ETH = 10**18


def mine(url: str, blocks: int) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "anvil_mine", "params": [hex(blocks)]}
    assert "error" not in httpx.post(url, json=body, timeout=10).json()


def head(url: str) -> int:
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
    return int(httpx.post(url, json=body, timeout=10).json()["result"], 16)


@pytest.fixture
def nodes() -> Iterator[tuple[Anvil, Anvil]]:
    """``behind`` at block 0 and ``ahead`` at block 5."""
    behind, ahead = Anvil().start(), Anvil().start()
    try:
        mine(ahead.url, 5)
        yield behind, ahead
    finally:
        behind.stop()
        ahead.stop()


def test_reads_go_to_the_endpoint_at_the_best_head(nodes) -> None:
    behind, ahead = nodes
    chain = RpcChain([behind.url, ahead.url], head_ttl=0)
    try:
        assert [chain.block_number() for _ in range(6)] == [5] * 6  # never the stale node
        assert chain.lag_skips >= 3 and chain.best_head == 5
        mine(behind.url, 10)  # the other node overtakes: reads follow it
        assert {chain.block_number() for _ in range(4)} == {10}
        assert chain.heads() == {behind.url: 10, ahead.url: 5}
    finally:
        chain.close()


def test_a_lagging_endpoint_still_serves_when_it_is_the_only_one_left(nodes) -> None:
    behind, ahead = nodes
    chain = RpcChain([behind.url, ahead.url], head_ttl=0, cooldown=30)
    try:
        assert chain.block_number() == 5
        ahead.stop()
        assert chain.block_number() == 0  # behind the network, but better than no answer
        assert chain.failovers >= 1
    finally:
        chain.close()


def test_reads_after_a_confirmed_write_only_come_from_nodes_holding_its_block(nodes) -> None:
    behind, ahead = nodes
    recipient = KeyPair.derive("chain-endpoints", 0).address
    # A large tolerance makes both nodes equally acceptable, so only "read your writes"
    # keeps the node without the transaction out.
    fresh = RpcChain([behind.url, ahead.url], lag_tolerance=10**6)
    try:
        assert {fresh.block_number() for _ in range(4)} == {0, 5}  # both serve reads
    finally:
        fresh.close()
    chain = RpcChain([(ahead.url, "follower"), (behind.url, "sealer")], lag_tolerance=10**6)
    try:
        result = chain.fund(recipient, ETH)  # written to the follower: block 6 there
        assert result.block == 6 and chain.min_block == 6
        assert head(behind.url) == 0  # the other node never saw it
        assert [chain.balance(recipient) for _ in range(8)] == [ETH] * 8
    finally:
        chain.close()


def test_a_stale_refusal_fails_over_and_a_genuine_one_is_raised(nodes) -> None:
    behind, ahead = nodes
    payer = KeyPair.derive("chain-endpoints", 1)
    payee = KeyPair.derive("chain-endpoints", 2).address
    only_ahead = RpcChain([ahead.url])
    only_ahead.fund(payer.address, ETH)  # funded on the node that is ahead only
    # The node that is behind comes first for writes (a follower) and is not considered
    # lagging by head, so its "insufficient funds" is what the client sees first.
    chain = RpcChain([(behind.url, "follower"), (ahead.url, "sealer")], lag_tolerance=10**6)
    try:
        result = chain.transact(payer, to=payee, value=12345, gas=21_000)
        assert chain.failovers >= 1 and chain.lag_skips >= 1
        assert result.block > 5 and only_ahead.balance(payee) == 12345
        assert chain.balance(payee) == 12345  # read back from the node holding the write
        broke = KeyPair.derive("chain-endpoints", 3)  # funded nowhere: a real refusal
        with pytest.raises(ChainError, match=r"(?i)insufficient funds"):
            chain.transact(broke, to=payee, value=1, gas=21_000)
    finally:
        chain.close()
        only_ahead.close()


def test_require_block_waits_for_a_node_to_import_it(nodes) -> None:
    behind, _ = nodes
    chain = RpcChain([behind.url], sync_timeout=20)
    try:
        chain.require_block(3)
        timer = threading.Timer(0.3, mine, args=(behind.url, 3))
        timer.start()
        try:
            assert chain.block_number() >= 3  # waited until the node had block 3
        finally:
            timer.join()
        chain.sync_timeout = 0.2
        chain.require_block(10_000)
        started = time.monotonic()
        with pytest.raises(ChainError, match="block 10000"):
            chain.block_number()
        assert time.monotonic() - started < 15  # gave up, did not hang
    finally:
        chain.close()


def test_require_latest_pins_reads_to_the_best_head(nodes) -> None:
    behind, ahead = nodes
    chain = RpcChain([behind.url, ahead.url], lag_tolerance=10**6)
    try:
        assert chain.require_latest() == 5 and chain.min_block == 5
        assert {chain.block_number() for _ in range(4)} == {5}
    finally:
        chain.close()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"lag_tolerance": -1}, "lag_tolerance"),
        ({"lag_tolerance": True}, "lag_tolerance"),
        ({"head_ttl": -0.1}, "head_ttl"),
        ({"sync_timeout": float("nan")}, "sync_timeout"),
    ],
)
def test_bad_settings_are_refused_by_name(kwargs, field) -> None:
    with pytest.raises(ChainsenseError, match=field):
        RpcChain(["http://127.0.0.1:1"], **kwargs)


def test_require_block_refuses_nonsense() -> None:
    chain = RpcChain(["http://127.0.0.1:1"])
    for bad in (-1, 1.5, True):
        with pytest.raises(ChainsenseError, match="block"):
            chain.require_block(bad)  # type: ignore[arg-type]
    chain.close()
