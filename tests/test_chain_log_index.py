"""The embedded chain's log index answers ``eth_getLogs`` exactly as eth-tester's own (slow) one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chainsense.chain.errors import ChainError
from chainsense.ledger import governance
from chainsense.ledger.record_log import address_topic, id_topic, uint_topic
from test_ledger_support import World, make_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    w = make_world(tmp_path_factory.mktemp("logs"))
    for n in range(12):
        rec, sig = w.certified(mt=n % 3, nonce=n, poi=n % 4, slot=n // 2)
        w.ledger.submit(rec, sig, w.mts[n % 3])
    # other events of the contract in between
    governance.propose_ca_set(w.ledger, [w.mts[2].address], 1, w.ca_key)
    return w


def _key(log: Any) -> tuple[Any, ...]:
    return (
        log["blockNumber"],
        log["logIndex"],
        log["address"],
        tuple(bytes(t) for t in log["topics"]),
        bytes(log["data"]),
        bytes(log["transactionHash"]),
    )


def _filters(world: World) -> list[dict[str, Any]]:
    ledger = world.ledger
    mt = address_topic(world.mts[1].address)
    return [
        {"fromBlock": "0x0", "toBlock": "latest"},
        ledger.log_filter([], 0, "latest"),
        ledger.log_filter([id_topic(5)], 0, "latest"),
        ledger.log_filter([[id_topic(i) for i in (1, 3, 99)]], 0, "latest"),
        ledger.log_filter([None, mt], 0, "latest"),
        ledger.log_filter([None, None, uint_topic(2)], 0, "latest"),
        ledger.log_filter([None, mt, None, [uint_topic(s) for s in range(3)]], 0, "latest"),
        ledger.log_filter([None, None, None, None, None], 0, "latest"),  # more than any log has
        ledger.log_filter([], ledger.deploy_block + 4, ledger.deploy_block + 7),
        {"address": world.mts[0].address, "fromBlock": "earliest", "toBlock": "latest"},
    ]


def test_index_answers_like_eth_tester(world: World) -> None:
    chain = world.chain
    for flt in _filters(world):
        mine = chain.get_logs(flt)
        theirs = chain.call(lambda w3, f=flt: w3.eth.get_logs(f))
        assert [_key(x) for x in mine] == [_key(x) for x in theirs], flt
    # records, the deployment's CA set, then Proposed, Approved, Executed and the new set
    assert len(chain.get_logs(_filters(world)[1])) == 12 + 1 + 4


def test_index_follows_new_blocks_and_reverted_snapshots(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    flt = w.ledger.log_filter([], 0, "latest")
    before = len(w.chain.get_logs(flt))
    snapshot = w.chain.tester.take_snapshot()
    rec, sig = w.certified()
    w.ledger.submit(rec, sig, w.mts[0])
    assert len(w.chain.get_logs(flt)) == before + 1
    w.chain.tester.revert_to_snapshot(snapshot)
    w.chain.tester.mine_blocks(3)  # the same heights again, without the record
    assert len(w.chain.get_logs(flt)) == before


def test_malformed_topic_is_refused_by_name(world: World) -> None:
    with pytest.raises(ChainError, match="topic must be 32 bytes"):
        world.chain.get_logs(world.ledger.log_filter(["0x1234"], 0, "latest"))
