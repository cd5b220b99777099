"""The throughput load (benchmarks/bench_chain_tps.py), short: a few hundred records from 16 MTs
on a real 3-sealer + 1-follower geth network, every one confirmed once and verified."""

from __future__ import annotations

import os
from collections import Counter

import pytest

from chainsense import devnet as network
from chainsense.chain.embedded import EmbeddedChain
from chainsense.errors import ChainsenseError
from chainsense.experiments.chain_tps import run_load
from chainsense.ledger.config import LedgerConfig, connect_network
from chainsense.ledger.session import LedgerSession
from chainsense.sim.events import synthetic_events

MTS = 16
RECORDS = 320


@pytest.mark.slow
def test_load_on_a_geth_network_confirms_and_verifies_every_record(tmp_path) -> None:
    if not network.geth_available():
        if os.environ.get("CI"):
            pytest.fail("geth is missing in CI: run scripts/install-geth.sh")
        pytest.skip("geth 1.13 not installed (scripts/install-geth.sh); CI unset")
    netdir = tmp_path / "net"
    with network.running(netdir, network.NetworkSpec(sealers=3, followers=1, period=1)):
        chain, faucet = connect_network(netdir)
        try:
            cfg = LedgerConfig(mode="record")
            session = LedgerSession(MTS, tmp_path / "ledger", chain=chain, funder=faucet, cfg=cfg)
            events = synthetic_events(RECORDS, MTS, pois=20, seed=3)
            report = run_load(session, events, send_rate=200, label="3+1")
            assert (report.records, report.confirmed, report.verified) == (RECORDS,) * 3
            assert report.success_ratio == 1.0
            assert 0 < report.latency_p50_s <= report.latency_p99_s <= report.latency_max_s
            assert report.throughput > 0 and report.gas_per_record > 21_000
            stored = session.ledger.records()
            assert len(stored) == RECORDS  # nothing stored twice
            per_mt = Counter(s.record.mt for s in stored)
            assert set(per_mt.values()) == {RECORDS // MTS}
            for key in session.mt_keys:  # each MT's nonces 0..19, once each
                nonces = sorted(s.record.nonce for s in session.ledger.records_of_mt(key.address))
                assert nonces == list(range(RECORDS // MTS))
            session.close()
        finally:
            chain.close()


def test_load_refuses_batch_sessions_and_bad_rates(tmp_path) -> None:
    batch = LedgerSession(2, tmp_path / "b", chain=EmbeddedChain(), cfg=LedgerConfig(mode="batch"))
    with pytest.raises(ChainsenseError, match="per-record mode"):
        run_load(batch, synthetic_events(4, 2), send_rate=10, label="x")
    batch.close()
    per = LedgerSession(2, tmp_path / "r", chain=EmbeddedChain(), cfg=LedgerConfig(mode="record"))
    with pytest.raises(ChainsenseError, match="send_rate"):
        run_load(per, synthetic_events(4, 2), send_rate=-1, label="x")
    with pytest.raises(ChainsenseError, match=r"event\.mt"):
        run_load(per, synthetic_events(4, 3), send_rate=10, label="x")
    report = run_load(per, synthetic_events(6, 2), send_rate=0, label="burst")
    assert (report.confirmed, report.verified, report.send_rate) == (6, 6, 0.0)
    per.close()
