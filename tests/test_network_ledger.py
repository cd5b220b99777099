"""``network up --orgs N --ledger --threshold K``: the consortium's ledger deployed and every
organisation's ``ca serve`` started, recorded in network.json and stopped by ``network down``.

The option checks run in process (fast); the slow test starts a real 3-organisation geth network
(no followers), sends an MT's records through the three real CA services as a 2-of-3 quorum,
revokes the MT with two CAs' approvals (the services then refuse it) and checks that ``network
down`` leaves no CA process behind. Skipped when geth 1.13 is not installed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from chainsense import devnet as nw
from chainsense.chain.keys import KeyPair, load_key
from chainsense.errors import ChainsenseError
from chainsense.ledger import governance
from chainsense.ledger.ca_client import CAClient
from chainsense.ledger.ca_metadata import CAError
from chainsense.ledger.ca_quorum import CAQuorum
from chainsense.ledger.config import connect_network
from chainsense.ledger.contract import Ledger
from chainsense.ledger.deployment import Deployment
from chainsense.ledger.records import Record
from chainsense.ledger.terminal import MobileTerminal
from chainsense.ledger.verify import verify_ledger
from network_cli import network_cli
from test_ledger_cli import _main_error


def test_ledger_options_are_refused_by_name_before_anything_starts(tmp_path, capsys) -> None:
    d = str(tmp_path / "net")
    _main_error(capsys, "threshold: only with --ledger", "network", "up", "-k", "2", "--dir", d)
    _main_error(capsys, "ledger: needs --orgs N", "network", "up", "--ledger", "--dir", d)
    args = ("network", "up", "--orgs", "3", "--ledger", "--threshold", "4", "--dir", d)
    _main_error(capsys, "threshold: must be in 1..3", *args)
    assert not (tmp_path / "net").exists()


def _bare_network(directory: Path) -> None:
    node = nw.NodeInfo("sealer-1", "sealer", "http://127.0.0.1:1", 0, "sealer-1")
    nw.save(nw.NetworkInfo(directory, 1337, 1, (node,), None, ""))


def test_extra_services_are_recorded_shown_and_stopped_by_down(tmp_path: Path) -> None:
    """devnet's generic services (real processes): up once they answer, down stops them."""
    _bare_network(tmp_path)
    served = tmp_path / "www"
    served.mkdir()
    port = nw.free_ports(1)[0]
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    url = f"http://127.0.0.1:{port}/"
    svc = nw.start_service(tmp_path, "web", [*argv, "--directory", str(served)], url, str(served))
    try:
        nw.wait_services(tmp_path, 20)
        assert [(s.name, s.pid, s.alive) for s in nw.service_status(nw.load(tmp_path))] == [
            ("web", svc.pid, True)
        ]
        nw.down(tmp_path)
        assert not nw.pid_alive(svc.pid)
        assert [s.alive for s in nw.service_status(nw.load(tmp_path))] == [False]
    finally:
        nw.stop_services(nw.load(tmp_path))


def test_a_service_that_exits_is_named_with_its_log(tmp_path: Path) -> None:
    _bare_network(tmp_path)
    marker = str(tmp_path / "crash-marker")
    argv = [sys.executable, "-c", "import sys; print('no key'); sys.exit(3)", marker]
    nw.start_service(tmp_path, "ca-org-1", argv, "http://127.0.0.1:1/", marker)
    with pytest.raises(ChainsenseError, match="service ca-org-1: exited before answering: no key"):
        nw.wait_services(tmp_path, 20)


@pytest.mark.slow
@pytest.mark.skipif(not nw.geth_available(), reason="geth 1.13 not installed")
def test_network_up_ledger_serves_the_orgs_cas_and_down_stops_them(tmp_path: Path) -> None:
    d = tmp_path / "net"
    up = network_cli("up", "--orgs", "3", "--followers", "0", "--ledger", "--threshold", "2",
              "--dir", str(d), "--timeout", "120")  # fmt: skip
    assert up.returncode == 0, up.stdout + up.stderr
    pids: list[int] = []
    try:
        info = nw.load(d)
        services = info.extra["services"]
        pids = [s["pid"] for s in services]
        assert [s["name"] for s in services] == ["ca-org-1", "ca-org-2", "ca-org-3"]
        assert all(nw.pid_alive(p) for p in pids)
        status = network_cli("status", "--dir", str(d))
        assert status.returncode == 0 and status.stdout.count(": up (pid") == 3, status.stdout
        dep = Deployment.read(d / "ledger.json")
        assert dep.threshold == 2
        assert set(dep.cas) == {o.ca.address for o in info.orgs}
        _records_through_the_services(d, info, dep)
    finally:
        down = network_cli("down", "--dir", str(d))
    assert down.returncode == 0, down.stderr
    assert pids and not any(nw.pid_alive(p) for p in pids)
    status = network_cli("status", "--dir", str(d))
    assert status.stdout.count(": down (pid") == 3, status.stdout


def _records_through_the_services(d: Path, info: nw.NetworkInfo, dep: Deployment) -> None:
    chain, faucet = connect_network(d, timeout=3.0, cooldown=2.0)
    ledger = Ledger(chain, dep.contract)
    mt = KeyPair.derive("net-ledger", 0, "mt")
    chain.fund(mt.address, 10**18, faucet)
    clients = []
    for org in info.orgs:
        token = (d / f"ca-{org.name}.token").read_text().strip()
        client = CAClient(f"http://{org.ca.host}:{org.ca.port}", admin_token=token, timeout=5.0)
        client.register(mt.address)
        clients.append(client)
    quorum = CAQuorum(clients, dep.threshold, ledger.domain, ledger.ca_set().cas)
    terminal = MobileTerminal(mt, d.parent / "mt.outbox", ledger, quorum)
    try:
        for slot in range(4):
            terminal.collect(1, slot, 2.5, 3.0, 4.0)
        report = terminal.flush()
        assert (report.confirmed, report.rejected, report.pending) == (4, 0, 0)
        verified = verify_ledger(ledger)
        assert (verified.ok, verified.failures) == (4, [])
        keys = [load_key(d / org.ca.key_file) for org in info.orgs]
        step = governance.propose_revocation(ledger, mt.address, keys[0])
        assert governance.approve(ledger, step.proposal, keys[1]).executed
        with pytest.raises(CAError) as refused:  # the services read the revocation off chain
            _until_refused(quorum, terminal)
        assert refused.value.code == "mt_revoked"
        terminal.collect(1, 9, 2.5, 3.0, 4.0)
        report = terminal.flush()
        assert (report.confirmed, report.rejected, report.pending) == (0, 1, 0)
        assert terminal.rejected()[0][1].startswith("CA: mt_revoked: ")
        assert ledger.record_count() == 4
    finally:
        terminal.close()
        quorum.close()
        for c in clients:
            c.close()
        chain.close()


def _until_refused(quorum: CAQuorum, terminal: MobileTerminal) -> None:
    """Ask the quorum for the batch certificate of the MT's next record (a CA reads the chain
    at most once a second: a few tries)."""
    nonce = terminal.next_nonce()
    rec = Record(terminal.key.address, 1, 9, 2_500_000, 3, 4, nonce)
    sig = terminal.key.sign_digest(rec.digest(quorum.domain))
    deadline = time.monotonic() + 10
    while True:
        quorum.countersign_batch([(rec, sig)], terminal.key.address)
        if time.monotonic() > deadline:
            return
        time.sleep(0.5)
