"""The ledger on a real geth Clique network (`chainsense network up`): both modes, and failover
when the follower that takes the transactions is killed mid-run."""

from __future__ import annotations

import os

import pytest

from chainsense import devnet as network
from chainsense.ledger.config import LedgerConfig, open_chain
from chainsense.ledger.session import LedgerSession
from chainsense.sim.events import CollectionEvent


def _event(mt: int, poi: int, slot: int, amount: float, x: float, y: float) -> CollectionEvent:
    return CollectionEvent(slot=slot, mt=mt, poi=poi, amount=amount, x=x, y=y)


@pytest.mark.slow
def test_session_on_geth_network_survives_a_killed_follower(tmp_path) -> None:
    if not network.geth_available():
        if os.environ.get("CI"):
            pytest.fail("geth is missing in CI: run scripts/install-geth.sh")
        pytest.skip("geth 1.13 not installed (scripts/install-geth.sh); CI unset")
    netdir = tmp_path / "net"
    info = network.up(netdir, network.NetworkSpec(sealers=1, followers=2, period=1))
    try:
        cfg = LedgerConfig(backend="network", network=str(netdir), rpc_timeout=3, rpc_cooldown=5)
        chain, faucet = open_chain(cfg)
        assert faucet is not None and chain.chain_id == info.chain_id
        session = LedgerSession(
            3, tmp_path / "rec", chain=chain, funder=faucet, cfg=LedgerConfig(mode="record")
        )
        events = [_event(i % 3, i % 4, i, 0.5 * i, 1.0, 2.0) for i in range(6)]
        report = session.submit_events(events)
        assert report.confirmed == 6
        follower = next(n for n in info.nodes if n.role == "follower")
        network.kill_node(netdir, follower.name)
        report = session.submit_events([_event(i % 3, 1, 100 + i, 1.0, 1.0, 1.0) for i in range(6)])
        assert report.confirmed == 6
        assert chain.failovers >= 1
        check = session.verify()
        assert (check.checked, check.ok) == (12, 12)
        batch = LedgerSession(
            3, tmp_path / "bat", chain=chain, funder=faucet, cfg=LedgerConfig(batch_size=250)
        )
        report = batch.submit_events([_event(i % 3, i % 7, i, 1.0, 2.0, 3.0) for i in range(500)])
        assert (report.confirmed, report.transactions) == (500, 2)
        assert batch.verify().ok == 500
    finally:
        network.down(netdir, wipe=True)
