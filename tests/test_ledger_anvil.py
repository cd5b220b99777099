"""Integration against a real anvil node started here: deploy, submit, query, verify, failover,
node outage with restart, and a transaction left in the pool by a dead client."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from chainsense.chain.errors import ChainError
from chainsense.chain.rpc import RpcChain
from chainsense.ledger import batch as batching
from chainsense.ledger.terminal import MobileTerminal
from chainsense.ledger.verify import verify_ledger
from test_ledger_support import Anvil, free_port, make_world


@pytest.fixture
def anvil(tmp_path):
    node = Anvil(state=tmp_path / "anvil-state.json").start()
    yield node
    node.stop()


class _BadGateway(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.send_response(502)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def bad_gateway():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BadGateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_full_protocol_with_failover(anvil, bad_gateway, tmp_path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    chain = RpcChain([dead, bad_gateway, anvil.url], timeout=2, cooldown=30)
    assert chain.chain_id == 31337
    world = make_world(tmp_path, chain=chain)
    assert chain.failovers >= 2  # refused and 502 endpoints were tried, benched, skipped since
    assert [e.failures for e in chain.endpoints[:2]] == [1, 1]
    term = MobileTerminal(world.mts[0], tmp_path / "o.db", world.ledger, world.ca)
    for i in range(5):
        term.collect(poi=i % 2, slot=i, amount=1.0 + i, x=3.5, y=4.5)
    report = term.flush()
    assert (report.confirmed, report.pending) == (5, 0)
    assert len(world.ledger.records_of_poi(0)) == 3
    assert [s.record.slot for s in world.ledger.records_in_slots(1, 3)] == [1, 2, 3]
    assert verify_ledger(world.ledger).ok == 5
    agg = world.mts[1]
    items = []
    for n in range(20):
        rec = world.record(mt=2, nonce=n, slot=100 + n)
        items.append((rec, world.mts[2].sign_digest(rec.digest(world.ledger.domain))))
    cert = world.ca.countersign_batch(items, agg.address)
    anchor = batching.anchor(world.ledger, cert, agg)
    bundle = batching.make_bundle(world.ledger, cert, anchor.root_id)
    assert all(batching.verify_onchain(world.ledger, bundle))


def test_node_outage_then_restart_loses_nothing(anvil, tmp_path) -> None:
    chain = RpcChain([anvil.url], timeout=2, cooldown=0.1)
    world = make_world(tmp_path, chain=chain)
    term = MobileTerminal(world.mts[0], tmp_path / "o.db", world.ledger, world.ca)
    for i in range(4):
        term.collect(poi=1, slot=i, amount=1.0, x=1.0, y=1.0)
    assert term.certify() == 4
    anvil.stop()  # the node goes away (state dumped to disk)
    report = term.submit()
    assert (report.confirmed, report.pending) == (0, 4)
    with pytest.raises(ChainError, match="no JSON-RPC endpoint reachable"):
        world.ledger.record_count()
    anvil.start()  # same port, state reloaded
    report = term.flush()
    assert (report.confirmed, report.pending) == (4, 0)
    assert world.ledger.record_count() == 4


def test_sent_but_unmined_then_client_restart(anvil, tmp_path) -> None:
    chain = RpcChain([anvil.url], timeout=2)
    world = make_world(tmp_path, chain=chain)
    _rpc(anvil, "evm_setAutomine", False)
    chain.receipt_timeout = 0.3
    term = MobileTerminal(world.mts[0], tmp_path / "o.db", world.ledger, world.ca)
    for i in range(3):
        term.collect(poi=1, slot=i, amount=1.0, x=1.0, y=1.0)
    report = term.flush()  # sent, but nothing is mined: receipts time out
    assert (report.confirmed, report.pending) == (0, 3)
    assert term.counts() == {"sent": 3}
    term.close()
    restarted = MobileTerminal(world.mts[0], tmp_path / "o.db", world.ledger, world.ca)
    _rpc(anvil, "evm_mine")
    report = restarted.flush()  # the old transactions are recognised, nothing is sent twice
    assert report.confirmed + report.already_stored == 3 and report.pending == 0
    assert world.ledger.record_count() == 3


def test_confirmations_wait_for_blocks_on_top(anvil, tmp_path) -> None:
    chain = RpcChain([anvil.url], timeout=2)
    world = make_world(tmp_path, chain=chain)
    chain.confirmations = 1
    rec, sig = world.certified()
    tx_hash = world.ledger.send_submit(rec, sig, world.mts[0])
    mined_at = _mined_block(anvil, tx_hash)
    with pytest.raises(ChainError, match="no receipt and 1 blocks on top"):
        chain.wait(tx_hash, timeout=0.5)  # mined, but nothing on top yet
    _rpc(anvil, "evm_mine")
    assert chain.wait(tx_hash, timeout=5).block == mined_at


def _mined_block(node: Anvil, tx_hash: str) -> int:
    """The block anvil mined ``tx_hash`` in, read from its receipt: automining can finish just
    after the send returns, so the head read at once may still be the block before."""
    for _ in range(50):
        receipt = _rpc(node, "eth_getTransactionReceipt", tx_hash)
        if receipt:
            return int(receipt["blockNumber"], 16)
        time.sleep(0.1)
    raise AssertionError(f"{tx_hash} was not mined within 5 s")


def _rpc(node: Anvil, method: str, *params: object) -> Any:
    """One JSON-RPC call to the node; its result (None for an error)."""
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return httpx.post(node.url, json=body).json().get("result")


def test_a_transaction_the_node_lost_is_handed_over_again(anvil, tmp_path) -> None:
    """A node that loses a sent transaction from its pool (as one killed with it does) leaves
    a nonce gap: the sender's later transactions cannot be mined. While receipts are awaited,
    the client hands the lost one over again (the same signed bytes) and the gap closes."""
    chain = RpcChain([anvil.url], timeout=2)
    world = make_world(tmp_path, chain=chain)
    _rpc(anvil, "evm_setAutomine", False)
    chain.rebroadcast_after = 0.3
    sent = [
        world.ledger.send_submit(*world.certified(nonce=n, slot=n), world.mts[0]) for n in range(3)
    ]
    _rpc(anvil, "anvil_dropTransaction", sent[0])
    _rpc(anvil, "evm_setIntervalMining", 1)
    assert chain.collect_receipts(sent, timeout=30) == 3
    assert chain.rebroadcasts >= 1
    assert world.ledger.record_count() == 3
