"""CAs refuse the records of an MT revoked on chain (issue 18): single, many and batch.

Embedded chain, three organisations' CAs with k = 2, each given :class:`RevokedMTs` over the
ledger. After two CAs revoke an MT, its batches are refused with ``mt_revoked`` (the contract
alone guards only the per-record path), the other MT is still served, and a terminal asking the
consortium over HTTP rejects the revoked MT's queued records with the reason instead of retrying.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chainsense.ledger import governance
from chainsense.ledger.ca import CertificateAuthority
from chainsense.ledger.ca_client import CAClient
from chainsense.ledger.ca_metadata import CAError
from chainsense.ledger.ca_quorum import CAQuorum
from chainsense.ledger.ca_server import CAServer
from chainsense.ledger.records import Record
from chainsense.ledger.revoked import RevokedMTs
from chainsense.ledger.terminal import MobileTerminal
from test_ledger_consortium import Consortium, make_consortium


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _with_view(org: Consortium, tmp: Path, view: RevokedMTs) -> list[CertificateAuthority]:
    for ca in org.cas:
        ca.close()
    cas = [
        CertificateAuthority(k, tmp / f"ca{i}.db", org.ledger.domain, view)
        for i, k in enumerate(org.ca_keys)
    ]
    org.cas = cas
    return cas


def _revoke(org: Consortium, mt: str) -> None:
    step = governance.propose_revocation(org.ledger, mt, org.ca_keys[0])
    assert governance.approve(org.ledger, step.proposal, org.ca_keys[1]).executed


def _items(org: Consortium, mt: int, nonces: range) -> list[tuple[Record, bytes]]:
    out = []
    for n in nonces:
        rec = org.record(mt=mt, nonce=n)
        out.append((rec, org.mts[mt].sign_digest(rec.digest(org.ledger.domain))))
    return out


@pytest.fixture
def org(tmp_path: Path) -> Consortium:
    return make_consortium(tmp_path)


def test_a_revoked_mt_is_refused_in_batches_single_and_many(
    org: Consortium, tmp_path: Path
) -> None:
    view = RevokedMTs(org.ledger, interval=0)
    ca = _with_view(org, tmp_path, view)[0]
    submitter = org.mts[1].address
    assert ca.countersign_batch(_items(org, 0, range(0, 3)), submitter).size == 3
    _revoke(org, org.mts[0].address)
    with pytest.raises(CAError) as refused:
        ca.countersign_batch(_items(org, 1, range(0, 2)) + _items(org, 0, range(3, 5)), submitter)
    assert (refused.value.code, refused.value.field) == ("mt_revoked", "items[2].record.mt")
    assert ca.last_nonce(org.mts[1].address) == -1  # the refused batch changed nothing
    assert ca.countersign_batch(_items(org, 1, range(0, 2)), submitter).size == 2
    rec, sig = _items(org, 0, range(5, 6))[0]
    with pytest.raises(CAError, match="revoked on chain") as single:
        ca.countersign(rec, sig)
    assert single.value.code == "mt_revoked"
    done, refusal = ca.countersign_many(_items(org, 1, range(2, 4)) + _items(org, 0, range(6, 7)))
    assert len(done) == 2 and refusal is not None
    assert (refusal.code, refusal.field) == ("mt_revoked", "items[2].record.mt")
    assert ca.last_nonce(org.mts[0].address) == 2  # nothing of the revoked MT after revocation


def test_the_revoked_set_is_read_at_most_once_per_interval(org: Consortium, tmp_path: Path) -> None:
    clock = Clock()
    view = RevokedMTs(org.ledger, interval=1.0, clock=clock)
    ca = _with_view(org, tmp_path, view)[0]
    _revoke(org, org.mts[0].address)
    items = _items(org, 0, range(0, 1))
    assert ca.countersign_many(items)[1] is None  # within the interval: the cached set
    for n in range(1, 50):
        ca.countersign_many(_items(org, 1, range(n, n + 1)))
    assert view.refreshes == 1  # 50 requests, no chain read
    clock.now = 1.0
    done, refusal = ca.countersign_many(_items(org, 0, range(1, 2)))
    assert (done, refusal and refusal.code) == ([], "mt_revoked")
    assert view.refreshes == 2 and view() == frozenset({org.mts[0].address})
    assert view.refreshes == 2


def test_a_terminal_rejects_a_revoked_mts_records_through_the_quorum(
    org: Consortium, tmp_path: Path
) -> None:
    cas = _with_view(org, tmp_path, RevokedMTs(org.ledger, interval=0))
    servers = [CAServer(ca).start() for ca in cas]
    clients = [CAClient(s.url) for s in servers]
    quorum = CAQuorum(clients, 2, org.ledger.domain, [k.address for k in org.ca_keys])
    terminals = [
        MobileTerminal(k, tmp_path / f"mt{i}.outbox", org.ledger, quorum)
        for i, k in enumerate(org.mts)
    ]
    try:
        for t in terminals:
            t.collect(1, 2, 3.0, 4.0, 5.0)
            assert t.flush().confirmed == 1
        _revoke(org, org.mts[0].address)
        for t in terminals:
            t.collect(1, 3, 3.0, 4.0, 5.0)
            t.collect(1, 4, 3.0, 4.0, 5.0)
        report = terminals[0].flush()
        assert (report.confirmed, report.rejected, terminals[0].pending()) == (0, 2, 0)
        reasons = [reason for _, reason in terminals[0].rejected()]
        assert all(r.startswith("CA: mt_revoked: ") for r in reasons), reasons
        assert terminals[1].flush().confirmed == 2  # the other MT is still served
        assert org.ledger.record_count() == 4
    finally:
        for t in terminals:
            t.close()
        quorum.close()
        for c in clients:
            c.close()
        for s in servers:
            s.stop()
