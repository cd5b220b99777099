"""A restarted follower that is still resyncing, on a real geth Clique network (1 sealer + 2
followers): the ledger client writes and reads through the network right after the restart,
without waiting, and gets neither an error nor a stale answer.

Slow (three geth processes, ~1 min); run by CI with ``-m slow``. Skipped when geth 1.13 is not
installed (scripts/install-geth.sh).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from chainsense import devnet as nw
from chainsense.chain.keys import KeyPair
from chainsense.chain.rpc import RpcChain
from chainsense.errors import ChainsenseError
from chainsense.ledger.ca import CertificateAuthority
from chainsense.ledger.config import connect_network
from chainsense.ledger.contract import Ledger, deploy_ledger
from chainsense.ledger.records import Record
from chainsense.ledger.terminal import MobileTerminal

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not nw.geth_available(), reason="geth 1.13 not installed"),
]


def _head(url: str) -> int | None:
    try:
        return int(nw.rpc_call(url, "eth_blockNumber", timeout=1.0), 16)
    except ChainsenseError:
        return None


def _collect(mt: MobileTerminal, slot: int, n: int) -> None:
    for k in range(n):
        mt.collect(poi=k, slot=slot, amount=1.0 + k, x=2.0, y=3.0)


def _check_reads(ledger: Ledger, expected: dict[int, Record], passes: int = 3) -> None:
    """Every read, whichever node serves it, reflects every confirmed record."""
    for _ in range(passes):
        assert ledger.record_count() == len(expected)
        for rid, rec in expected.items():
            assert ledger.get_record(rid).record == rec, rid
        by_mt: dict[str, int] = {}
        for rec in expected.values():
            by_mt[rec.mt] = by_mt.get(rec.mt, 0) + 1
        for mt, count in by_mt.items():
            assert len(ledger.records_of_mt(mt)) == count


def test_restarted_follower_is_avoided_until_it_has_caught_up(tmp_path: Path) -> None:
    d = tmp_path / "net"
    nw.up(d, nw.NetworkSpec(sealers=1, followers=2, period=1), timeout=120)
    try:
        chain, faucet = connect_network(d, timeout=3.0, cooldown=2.0)
        assert faucet is not None and chain.confirmations == 0  # receipts count at once
        # Deploy race: the contract is used straight away, through whichever node is next.
        ca_key = KeyPair.derive(11, 0, "ca")
        for _ in range(3):
            ledger = deploy_ledger(chain, ca_key.address, deployer=faucet)
            assert ledger.record_count() == 0 and ledger.ca_set().cas == (ca_key.address,)
        ca = CertificateAuthority(ca_key, tmp_path / "ca.sqlite", ledger.domain)
        keys = [KeyPair.derive(11, i, "mt") for i in range(2)]
        for k in keys:
            ca.register(k.address)
        chain.fund(keys[0].address, 10**18, faucet)
        old = MobileTerminal(keys[0], tmp_path / "mt0.sqlite", ledger, ca)
        _collect(old, 0, 3)
        assert old.flush().confirmed == 3

        # follower-1 crashes; meanwhile a new MT is funded and both submit.
        nw.kill_node(d, "follower-1")
        chain.fund(keys[1].address, 10**18, faucet)  # a block follower-1 has never seen
        new = MobileTerminal(keys[1], tmp_path / "mt1.sqlite", ledger, ca)
        for mt in (old, new):
            _collect(mt, 1, 2)
            assert mt.flush().confirmed == 2
        target = chain.block_number() + 4
        while chain.block_number() < target:  # let the network move on without it
            time.sleep(0.3)

        # Restart it and go on as soon as its RPC answers: no waiting for the resync.
        nw.start_node(d, "follower-1")
        url = nw.load(d).node("follower-1").rpc
        deadline = time.monotonic() + 60
        while (restarted_head := _head(url)) is None:
            assert time.monotonic() < deadline, "follower-1 RPC did not come back"
            time.sleep(0.1)
        best = max(h for h in (_head(n.rpc) for n in nw.load(d).nodes) if h is not None)
        assert restarted_head + 1 < best  # it really is behind right now
        skips_before = chain.lag_skips
        for mt in (new, old):  # writes prefer followers: follower-1 is first in line
            _collect(mt, 2, 3)
            report = mt.flush()
            assert (report.confirmed, report.pending, report.rejected) == (3, 0, 0)
        expected = {rid: rec for mt in (old, new) for rec, rid in mt.confirmed()}
        assert sorted(expected) == list(range(1, 14))
        _check_reads(ledger, expected)
        assert chain.lag_skips > skips_before  # the lagging node was stepped around

        # Once resynced it serves everything again, with the same content.
        nw.wait_ready(d, 90, names=["follower-1"], min_peers=1, min_head=1)
        alone = RpcChain([url], timeout=5.0)
        try:
            _check_reads(Ledger(alone, ledger.address), expected, passes=1)
        finally:
            alone.close()
        for mt in (old, new):
            assert mt.counts() == {"confirmed": len(mt.confirmed())}
            mt.close()
        ca.close()
        chain.close()
    finally:
        nw.down(d, wipe=True)
