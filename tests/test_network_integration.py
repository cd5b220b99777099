"""A real geth Clique network: 3 sealers + 1 follower, the ledger on it, a node killed mid-run.

Slow (starts four geth processes, ~1-2 min); run by CI with ``-m slow``. Skipped when geth 1.13 is
not installed (scripts/install-geth.sh).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chainsense import devnet as nw
from chainsense.chain.keys import KeyPair
from chainsense.chain.rpc import RpcChain
from chainsense.ledger.ca import CertificateAuthority
from chainsense.ledger.config import connect_network
from chainsense.ledger.contract import Ledger, deploy_ledger
from chainsense.ledger.terminal import MobileTerminal

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not nw.geth_available(), reason="geth 1.13 not installed"),
]


def _records_on(url: str, address: str, ids: dict[int, object]) -> int:
    """How many of ``ids`` the node at ``url`` returns unchanged."""
    chain = RpcChain([url], timeout=5.0)
    try:
        ledger = Ledger(chain, address)
        return sum(ledger.get_record(rid).record == rec for rid, rec in ids.items())
    finally:
        chain.close()


def test_four_nodes_submit_via_follower_kill_a_sealer_lose_nothing(tmp_path: Path) -> None:
    d = tmp_path / "net"
    info = nw.up(d, nw.NetworkSpec(sealers=3, followers=1, period=1), timeout=120)
    try:
        assert (d / "faucet.key").stat().st_mode & 0o777 == 0o600
        for n in info.nodes:
            assert n.rpc.startswith("http://127.0.0.1:")
            if n.role == "sealer":
                assert (d / n.datadir / "password.txt").stat().st_mode & 0o777 == 0o600
        st = nw.status(d)
        # Ready means a peer each and one chain; the static mesh completes on its own.
        assert all(s.alive and (s.peers or 0) >= 1 and (s.head or 0) >= 2 for s in st)
        # Block 1 waited for the genesis' start-up grace, so no sealer was handed a block before
        # its miner ran (geth drops those; sealers each on a block 1 of their own deadlock).
        genesis_time = int(json.loads((d / "genesis.json").read_text())["timestamp"], 16)
        first = [nw.rpc_call(n.rpc, "eth_getBlockByNumber", ["0x1", False]) for n in info.nodes]
        assert len({b["hash"] for b in first}) == 1
        assert int(first[0]["timestamp"], 16) >= genesis_time + 1
        for n in info.nodes:
            if n.role == "sealer":
                assert "discarded propagated block" not in (d / n.datadir / "geth.log").read_text()

        chain, faucet = connect_network(d, timeout=3.0, cooldown=2.0)
        # Writes prefer the follower, as in the paper's deployment.
        assert chain._order(write=True)[0].role == "follower"
        ca_key = KeyPair.derive(7, 0, "ca")
        ledger = deploy_ledger(chain, ca_key.address, deployer=faucet)
        ca = CertificateAuthority(ca_key, tmp_path / "ca.sqlite", ledger.domain)
        mt_key = KeyPair.derive(7, 0, "mt")
        ca.register(mt_key.address)
        chain.fund(mt_key.address, 10**18, faucet)
        mt = MobileTerminal(mt_key, tmp_path / "outbox.sqlite", ledger, ca)

        for k in range(4):
            mt.collect(poi=k, slot=0, amount=1.0 + k, x=1.0, y=2.0)
        assert mt.flush().confirmed == 4

        # Crash a sealer mid-run: 2 of 3 sealers keep sealing, submissions go on.
        head_before = max(s.head or 0 for s in nw.status(d))
        nw.kill_node(d, "sealer-2")
        assert not nw.status(d)[1].alive
        for k in range(4, 10):
            mt.collect(poi=k, slot=1, amount=1.0 + k, x=3.0, y=4.0)
            mt.flush()
        deadline = time.monotonic() + 60
        while mt.pending() and time.monotonic() < deadline:
            mt.flush()
            time.sleep(0.5)
        assert mt.pending() == 0
        assert mt.counts() == {"confirmed": 10}
        live_heads = [s.head for s in nw.status(d) if s.alive]
        assert min(h or 0 for h in live_heads) > head_before  # still sealing without sealer-2

        expected = {rid: rec for rec, rid in mt.confirmed()}
        assert sorted(expected) == list(range(1, 11))
        assert ledger.record_count() == 10  # no duplicates either
        for node in nw.load(d).nodes:
            if node.name != "sealer-2":
                assert _records_on(node.rpc, ledger.address, expected) == 10, node.name

        # Restart the crashed sealer: it resyncs and serves every record.
        nw.start_node(d, "sealer-2")
        nw.wait_ready(d, 90, names=["sealer-2"], min_peers=1, min_head=1)
        assert _records_on(nw.load(d).node("sealer-2").rpc, ledger.address, expected) == 10
        mt.close()
        ca.close()
        chain.close()
    finally:
        pids = [n.pid for n in nw.load(d).nodes]
        nw.down(d, wipe=True)
    assert not d.exists()
    assert not any(nw.pid_alive(p) for p in pids)


def test_cli_up_status_down(tmp_path: Path) -> None:
    d = tmp_path / "cli-net"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "chainsense", "network", *args, "--dir", str(d)],
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, "COLUMNS": "200"},
        )

    up = cli("up", "--sealers", "1", "--followers", "1")
    try:
        assert up.returncode == 0, up.stderr
        assert "follower-1" in up.stdout
        pids = [n.pid for n in nw.load(d).nodes]
        assert all(nw.pid_alive(p) for p in pids)
        again = cli("up")  # a second `up` on a live network is refused, nothing touched
        assert again.returncode == 2 and "not empty" in again.stderr
        st = cli("status")
        assert st.returncode == 0 and "sealer-1" in st.stdout and "yes" in st.stdout
    finally:
        down = cli("down")
    assert down.returncode == 0 and "data kept" in down.stdout
    assert d.is_dir() and not any(nw.pid_alive(p) for p in pids)
    st = cli("status")
    assert st.returncode == 0 and "no" in st.stdout
    assert cli("down", "--wipe").returncode == 0
    assert not d.exists()
