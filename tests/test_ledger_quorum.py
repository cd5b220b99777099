"""An MT gathering k countersignatures from n real CA services over HTTP.

Three CA services (the real app, each with its own key and registry, on loopback ports), k = 2:
collection goes on while one CA is down, records stay queued (none rejected, none lost) while
two are, and go through once one comes back; batches and whole sessions work the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chainsense.chain.embedded import EmbeddedChain
from chainsense.chain.keys import KeyPair
from chainsense.ledger.batch import submit_batch, verify_offchain
from chainsense.ledger.ca import CertificateAuthority
from chainsense.ledger.ca_client import CAClient, CAUnavailableError
from chainsense.ledger.ca_quorum import CAQuorum
from chainsense.ledger.ca_server import CAServer
from chainsense.ledger.config import LedgerConfig
from chainsense.ledger.session import LedgerSession
from chainsense.ledger.terminal import MobileTerminal
from chainsense.ledger.verify import verify_ledger
from chainsense.sim.events import synthetic_events
from test_ledger_consortium import Consortium, make_consortium


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Consortium, list[CAServer], CAQuorum]]:
    org = make_consortium(tmp_path)
    servers = [CAServer(ca).start() for ca in org.cas]
    clients = [CAClient(s.url, timeout=2.0) for s in servers]
    quorum = CAQuorum(clients, 2, org.ledger.domain, [k.address for k in org.ca_keys])
    try:
        yield org, servers, quorum
    finally:
        quorum.close()
        for c in clients:
            c.close()
        for s in servers:
            s.stop()


def _collect(term: MobileTerminal, n: int, first_slot: int = 0) -> None:
    term.collect_many([(i % 5, first_slot + i, 0.5, 1.0, 2.0) for i in range(n)])


def test_collection_goes_on_with_a_ca_down_and_waits_without_k(served, tmp_path: Path) -> None:
    org, servers, quorum = served
    term = MobileTerminal(org.mts[0], tmp_path / "mt.outbox", org.ledger, quorum)
    _collect(term, 10)
    assert term.flush().confirmed == 10
    servers[0].stop()  # one organisation's CA is down: 2 of 3 still answer
    _collect(term, 10, 10)
    report = term.flush()
    assert (report.confirmed, report.rejected, report.pending) == (10, 0, 0)
    port = servers[1].port
    servers[1].stop()  # now only one answers: nothing can be certified, nothing is lost
    _collect(term, 5, 20)
    report = term.flush()
    assert (report.certified, report.confirmed, report.rejected, report.pending) == (0, 0, 0, 5)
    servers[1] = CAServer(org.cas[1], port=port).start()  # back, with its registry
    report = term.flush()
    assert (report.confirmed, report.rejected, report.pending) == (5, 0, 0)
    check = verify_ledger(org.ledger)
    assert (check.total, check.ok, check.failures) == (25, 25, [])
    stored = org.ledger.records_of_mt(org.mts[0].address)
    assert [s.record.nonce for s in stored] == list(range(25))
    assert all(len(s.ca_signatures) == 2 for s in stored)


def test_a_ca_that_refuses_is_outvoted(served, tmp_path: Path) -> None:
    """An MT unknown to one CA (its registry lost it): the other two certify."""
    org, _servers, quorum = served
    org.cas[2]._db.execute("DELETE FROM mts WHERE address = ?", (org.mts[1].address,))
    term = MobileTerminal(org.mts[1], tmp_path / "mt1.outbox", org.ledger, quorum)
    _collect(term, 4)
    assert term.flush().confirmed == 4


def test_a_refusal_by_too_many_cas_rejects_with_the_reason(served, tmp_path: Path) -> None:
    org, _servers, quorum = served
    for ca in org.cas[:2]:
        ca._db.execute("DELETE FROM mts WHERE address = ?", (org.mts[1].address,))
    term = MobileTerminal(org.mts[1], tmp_path / "mt1.outbox", org.ledger, quorum)
    _collect(term, 2)
    report = term.flush()
    assert (report.confirmed, report.rejected) == (0, 2)
    assert all("CA: unknown_mt" in why for _, why in term.rejected())


def test_answers_from_outside_the_set_or_twice_from_one_ca_do_not_count(
    served, tmp_path: Path
) -> None:
    """A service with a key outside the CA set, and one CA reached twice: their answers are
    dropped before the contract sees them, so records wait instead of being refused."""
    org, servers, _quorum = served
    outsider = CertificateAuthority(
        KeyPair.derive("outsider", 0), tmp_path / "o.db", org.ledger.domain
    )
    outsider.register(org.mts[0].address)
    with CAServer(outsider) as rogue:
        urls = [servers[0].url, servers[0].url, rogue.url]
        clients = [CAClient(u, timeout=2.0) for u in urls]
        quorum = CAQuorum(clients, 2, org.ledger.domain, org.ledger.ca_set().cas)
        term = MobileTerminal(org.mts[0], tmp_path / "mt.outbox", org.ledger, quorum)
        _collect(term, 3)
        report = term.flush()
        assert (report.certified, report.rejected, report.pending) == (0, 0, 3)
        quorum.close()
        clients.append(CAClient(servers[1].url, timeout=2.0))
        quorum = CAQuorum(clients, 2, org.ledger.domain, org.ledger.ca_set().cas)
        term.ca = quorum
        assert term.flush().confirmed == 3
        quorum.close()
        for c in clients:
            c.close()
    assert verify_ledger(org.ledger).ok == 3


def test_a_batch_root_needs_k_cas_and_survives_one_down(served, tmp_path: Path) -> None:
    org, servers, quorum = served
    mt = org.mts[0]
    recs = [org.record(nonce=i, slot=i) for i in range(50)]
    items = [(r, mt.sign_digest(r.digest(org.ledger.domain))) for r in recs]
    servers[2].stop()
    out = submit_batch(org.ledger, quorum, mt, tmp_path / "b.json", lambda: items)
    assert out.anchored and all(verify_offchain(org.ledger, out.bundle))
    servers[0].stop()
    more = [org.record(nonce=100 + i) for i in range(3)]
    items = [(r, mt.sign_digest(r.digest(org.ledger.domain))) for r in more]
    with pytest.raises(CAUnavailableError, match="fewer than 2 of 3 CAs answered"):
        submit_batch(org.ledger, quorum, mt, tmp_path / "c.json", lambda: items)
    assert not (tmp_path / "c.json").exists() and org.ledger.batch_count() == 1


@pytest.mark.parametrize("mode", ["record", "batch"])
def test_a_session_of_three_organisations_with_k_2(tmp_path: Path, mode: str) -> None:
    cfg = LedgerConfig(mode=mode, batch_size=40, threshold=2)
    session = LedgerSession(3, tmp_path / "s", chain=EmbeddedChain(), cfg=cfg, orgs=3)
    try:
        assert len(session.servers) == 3 and session.ledger.ca_set().threshold == 2
        report = session.submit_events(synthetic_events(90, 3))
        assert (report.confirmed, report.rejected) == (90, 0)
        check = session.verify()
        assert (check.checked, check.ok, check.failures) == (90, 90, ())
    finally:
        session.close()
