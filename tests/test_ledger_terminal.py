"""The MT client: outbox durability, idempotent resubmission, a real crash mid-protocol."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from chainsense.chain.embedded import EmbeddedChain
from chainsense.ledger.ca import CertificateAuthority
from chainsense.ledger.ca_client import CAClient
from chainsense.ledger.terminal import MobileTerminal
from chainsense.ledger.verify import verify_ledger
from test_ledger_support import World, free_port, make_world


@pytest.fixture
def world(tmp_path) -> World:
    return make_world(tmp_path)


def test_flush_confirms_everything_once(world: World, tmp_path) -> None:
    term = MobileTerminal(world.mts[0], tmp_path / "o.db", world.ledger, world.ca)
    for i in range(6):
        term.collect(poi=i % 2, slot=i, amount=1.5, x=2.0, y=3.0)
    report = term.flush()
    assert (report.certified, report.confirmed, report.pending, report.rejected) == (6, 6, 0, 0)
    assert report.gas_used > 6 * 21_000
    assert term.flush().confirmed == 0
    assert world.ledger.record_count() == 6
    assert [r.nonce for r, _ in term.confirmed()] == list(range(6))
    assert verify_ledger(world.ledger).ok == 6


def test_outbox_refuses_another_mt_or_ledger(world: World, tmp_path) -> None:
    MobileTerminal(world.mts[0], tmp_path / "o.db", world.ledger, world.ca).close()
    with pytest.raises(Exception, match="belongs to another MT"):
        MobileTerminal(world.mts[1], tmp_path / "o.db", world.ledger, world.ca)


def test_already_stored_counts_as_confirmation(world: World, tmp_path) -> None:
    term = MobileTerminal(world.mts[0], tmp_path / "o.db", world.ledger, world.ca)
    rec = term.collect(1, 1, 1.0, 1.0, 1.0)
    assert term.certify() == 1
    # the same record reaches the chain by another path (e.g. a send whose answer was lost)
    sig = term._db.execute("SELECT ca_signature FROM outbox").fetchone()[0]
    world.ledger.submit(rec, sig, world.mts[0])
    report = term.submit()
    assert (report.confirmed, report.already_stored, report.rejected) == (0, 1, 0)
    assert world.ledger.record_count() == 1


def test_unregistered_mt_is_rejected_with_reason(tmp_path) -> None:
    world = make_world(tmp_path)
    from chainsense.chain.keys import KeyPair

    stranger = KeyPair.derive("stranger", 0)
    world.chain.fund(stranger.address, 10**18)
    term = MobileTerminal(stranger, tmp_path / "s.db", world.ledger, world.ca)
    term.collect(1, 1, 1.0, 1.0, 1.0)
    report = term.flush()
    assert (report.rejected, report.pending) == (1, 0)
    assert "unknown_mt" in term.rejected()[0][1]
    assert world.ledger.record_count() == 0


def test_ca_down_keeps_records_queued(world: World, tmp_path) -> None:
    dead = CAClient(f"http://127.0.0.1:{free_port()}", timeout=1)
    term = MobileTerminal(world.mts[0], tmp_path / "o.db", world.ledger, dead)
    for i in range(3):
        term.collect(1, i, 1.0, 1.0, 1.0)
    report = term.flush()
    assert (report.confirmed, report.pending) == (0, 3)
    term.close()
    term = MobileTerminal(world.mts[0], tmp_path / "o.db", world.ledger, world.ca)
    assert term.flush().confirmed == 3


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from chainsense.ledger.ca import CertificateAuthority
    from chainsense.chain.embedded import EmbeddedChain
    from chainsense.chain.keys import KeyPair
    from chainsense.ledger.contract import deploy_ledger
    from chainsense.ledger.terminal import MobileTerminal

    tmp, kill_after = Path(sys.argv[1]), int(sys.argv[2])
    chain = EmbeddedChain()  # same deployer, nonce and code as the parent: same address
    ledger = deploy_ledger(chain, KeyPair.derive("test", 0, "ca").address)
    print(ledger.address, flush=True)
    ca = CertificateAuthority(KeyPair.derive("test", 0, "ca"), tmp / "ca.db", ledger.domain)

    class CrashAfterCountersign:
        calls = 0
        def countersign_many(self, items):
            done = []
            for record, sig in items:
                done.append(ca.countersign(record, sig))  # the CA has committed it
                CrashAfterCountersign.calls += 1
                if CrashAfterCountersign.calls == kill_after:
                    os.kill(os.getpid(), signal.SIGKILL)  # ...and the MT dies before storing it
            return done, None

    term = MobileTerminal(KeyPair.derive("test", 0), tmp / "mt.db", ledger, CrashAfterCountersign())
    for i in range(8):
        term.collect(poi=i, slot=i, amount=0.5 * i, x=1.0, y=2.0)
    term.flush()
    """
)


def test_crash_between_countersign_and_confirmation_loses_nothing(tmp_path) -> None:
    world = make_world(tmp_path, chain=EmbeddedChain())
    world.ca.close()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), "5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert proc.stdout.strip() == world.ledger.address
    ca = CertificateAuthority(world.ca_key, tmp_path / "ca.db", world.ledger.domain)
    assert ca.get(world.mts[0].address).last_nonce == 4  # the CA answered nonces 0..4
    term = MobileTerminal(world.mts[0], tmp_path / "mt.db", world.ledger, ca)
    # answers are written in groups: the 5 the CA gave died with the MT, unwritten
    assert term.counts() == {"signed": 8}
    report = term.flush()  # ...and the CA gives its stored countersignatures again
    assert (report.certified, report.confirmed, report.rejected, report.pending) == (8, 8, 0, 0)
    assert [s.record.nonce for s in world.ledger.records_of_mt(world.mts[0].address)] == list(
        range(8)
    )
    assert verify_ledger(world.ledger).ok == 8
    assert term.flush().confirmed == 0 and world.ledger.record_count() == 8
    assert os.path.exists(tmp_path / "mt.db")
