"""A real 3-organisation geth consortium: the organisations' CAs certify with k = 2 (a stolen
key alone stores nothing, one CA down does not stop collection, a revocation by two CAs), sealer
votes while records flow, then every organisation's bundle exported and joined on its own
loopback address as if on its own host.

Slow (one network of 4 geth nodes, then 4 nodes again from the bundles, ~1.5 min); run by CI
with ``-m slow``. Skipped when geth 1.13 is not installed (scripts/install-geth.sh).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from chainsense import devnet as nw
from chainsense.chain.errors import RevertError
from chainsense.chain.keys import KeyPair, load_key
from chainsense.chain.rpc import RpcChain
from chainsense.ledger import governance
from chainsense.ledger.ca import CertificateAuthority
from chainsense.ledger.ca_client import CAClient
from chainsense.ledger.ca_quorum import CAQuorum
from chainsense.ledger.ca_server import CAServer
from chainsense.ledger.config import connect_network
from chainsense.ledger.contract import Ledger, deploy_ledger
from chainsense.ledger.records import Record
from chainsense.ledger.terminal import MobileTerminal
from chainsense.ledger.verify import verify_ledger
from network_cli import network_cli

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not nw.geth_available(), reason="geth 1.13 not installed"),
]
HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")


def _signers_shown(directory: Path, want: set[str] | None = None) -> set[str]:
    """The signer set as `network status` prints it (asked again for a few blocks until it is
    ``want``: another host's node may be a block behind the one that saw the vote pass)."""
    deadline = time.monotonic() + 10
    while True:
        out = network_cli("status", "--dir", str(directory))
        assert out.returncode == 0, out.stderr
        line = next(ln for ln in out.stdout.splitlines() if ln.startswith("signers ("))
        shown = {a.strip().lower() for a in line.split(":", 1)[1].split(",")}
        if want is None or shown == want or time.monotonic() > deadline:
            return shown
        time.sleep(1)


def _verified_on(url: str, address: str, expected: dict[int, object]) -> int:
    chain = RpcChain([url], timeout=5.0)
    try:
        ledger = Ledger(chain, address)
        return sum(ledger.get_record(rid).record == rec for rid, rec in expected.items())
    finally:
        chain.close()


class Submitter:
    """An MT collecting and flushing records in the background until stopped."""

    def __init__(
        self, tmp: Path, ledger: Ledger, ca: CertificateAuthority | CAQuorum, key: KeyPair
    ) -> None:
        self.mt = MobileTerminal(key, tmp / f"outbox-{key.address[:8]}.sqlite", ledger, ca)
        self._stop = threading.Event()
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.collected = 0

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for _ in range(2):
                    self.mt.collect(poi=self.collected % 50, slot=self.collected // 50,
                                    amount=1.0 + self.collected, x=1.0, y=2.0)  # fmt: skip
                    self.collected += 1
                self.mt.flush()
                time.sleep(0.2)
        except BaseException as exc:  # reported by finish()
            self.errors.append(exc)

    def __enter__(self) -> Submitter:
        self._thread.start()
        return self

    def finish(self, timeout: float = 90.0) -> dict[int, object]:
        self._stop.set()
        self._thread.join(30)
        assert not self.errors, self.errors
        deadline = time.monotonic() + timeout
        while self.mt.pending() and time.monotonic() < deadline:
            self.mt.flush()
            time.sleep(0.5)
        assert self.mt.pending() == 0
        return {rid: rec for rec, rid in self.mt.confirmed()}

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self.mt.close()


def _ledger_on(directory: Path, tmp: Path, seed: int) -> tuple[RpcChain, Ledger, object, KeyPair]:
    chain, faucet = connect_network(directory, timeout=3.0, cooldown=2.0)
    ca_key = KeyPair.derive(seed, 0, "ca")
    ledger = deploy_ledger(chain, ca_key.address, deployer=faucet)
    ca = CertificateAuthority(ca_key, tmp / f"ca-{seed}.sqlite", ledger.domain)
    mt_key = KeyPair.derive(seed, 0, "mt")
    ca.register(mt_key.address)
    chain.fund(mt_key.address, 10**18, faucet)
    return chain, ledger, ca, mt_key  # type: ignore[return-value]


class OrgCAs:
    """Each organisation's CA (its key from the network file) served over HTTP; the MT asks
    them as a k-of-n quorum, as ``chainsense run --orgs 3 --threshold 2 --network DIR`` does."""

    def __init__(self, directory: Path, tmp: Path, seed: int, threshold: int) -> None:
        info = nw.load(directory)
        self.chain, faucet = connect_network(directory, timeout=3.0, cooldown=2.0)
        self.keys = [load_key(info.directory / org.ca.key_file) for org in info.orgs]
        self.ledger = deploy_ledger(
            self.chain, [k.address for k in self.keys], threshold=threshold, deployer=faucet
        )
        self.mt_key = KeyPair.derive(seed, 0, "mt")
        for payee in (self.mt_key, *self.keys):  # CAs send their governance approvals
            self.chain.fund(payee.address, 10**18, faucet)
        self.authorities = [
            CertificateAuthority(k, tmp / f"ca-{seed}-{i}.sqlite", self.ledger.domain)
            for i, k in enumerate(self.keys)
        ]
        for authority in self.authorities:
            authority.register(self.mt_key.address)
        self.servers = [CAServer(a).start() for a in self.authorities]
        self.clients = [CAClient(server.url, timeout=3.0) for server in self.servers]
        cas = self.ledger.ca_set().cas
        self.quorum = CAQuorum(self.clients, threshold, self.ledger.domain, cas)

    def close(self) -> None:
        self.quorum.close()
        for client in self.clients:
            client.close()
        for server in self.servers:
            server.stop()
        for authority in self.authorities:
            authority.close()
        self.chain.close()


def _sealed_by(node: nw.NodeInfo, first: int, last: int) -> set[str]:
    return {
        str(nw.rpc_call(node.rpc, "clique_getSigner", [hex(b)])).lower()
        for b in range(first, last + 1)
    }


def _forget_each_other(d: Path, a: nw.NodeInfo, b: nw.NodeInfo) -> None:
    """Restart ``a``, then ``b``, each without the other's enode among its static peers (one at
    a time, so that two of three signers always seal and no fork of a stalled chain arises)."""
    for node, other in ((a, b), (b, a)):
        nw.stop_node(d, node.name)
        config = d / node.datadir / "config.toml"
        text = config.read_text().replace(json.dumps(other.enode) + ", ", "")
        config.write_text(text.replace(", " + json.dumps(other.enode), ""))
        assert other.enode not in config.read_text()
        nw.start_node(d, node.name)
        nw.wait_ready(d, 90, names=[node.name], min_peers=1, min_head=1)


def _consortium_holds(orgs: OrgCAs, stored: int) -> None:
    """One stolen CA key alone stores nothing; two CAs revoke the MT, whose next record is
    refused while its earlier ones stay verifiable, marked as stored before the revocation."""
    ledger, mt = orgs.ledger, orgs.mt_key
    rec = Record(mt.address, poi=1, slot=999, reading=1, x=0, y=0, nonce=10_000)
    digest = rec.digest(ledger.domain)
    with pytest.raises(RevertError, match="wrong number of CA signatures"):
        ledger.submit(rec, orgs.keys[1].sign_digest(digest), mt)
    step = governance.propose_revocation(ledger, mt.address, orgs.keys[1])
    assert not step.executed and not ledger.is_revoked(mt.address)
    assert governance.approve(ledger, step.proposal, orgs.keys[2]).executed
    two = sorted(orgs.keys[1:], key=lambda k: int(k.address, 16))
    with pytest.raises(RevertError, match="MT revoked"):
        ledger.submit(rec, b"".join(k.sign_digest(digest) for k in two), mt)
    report = verify_ledger(ledger)
    assert (report.ok, report.failures) == (stored, [])
    assert len(report.before_revocation) == stored
    assert ledger.record_count() == stored


def test_three_orgs_vote_a_sealer_in_and_out_under_load_then_run_from_exported_bundles(
    tmp_path: Path,
) -> None:
    d = tmp_path / "net"
    up = network_cli("up", "--orgs", "3", "--followers", "0", "--standby", "1",
              "--hosts", ",".join(HOSTS), "--dir", str(d), "--timeout", "120")  # fmt: skip
    assert up.returncode == 0, up.stderr
    try:
        info = nw.load(d)
        assert [o.name for o in info.orgs] == ["org-1", "org-2", "org-3"]
        for org, host in zip(info.orgs, HOSTS, strict=True):
            assert org.host == host and org.ca.host == host and 0 < org.ca.port < 65536
            assert (d / org.ca.key_file).stat().st_mode & 0o777 == 0o600
            assert all(info.node(n).rpc.startswith(f"http://{host}:") for n in org.sealers)
        genesis = {a.lower() for a in info.extra["sealers"]}
        standby = info.node("org-1-sealer-2")
        assert standby.address is not None and standby.address.lower() not in genesis
        assert _signers_shown(d) == genesis

        # A mesh that misses a link (as one did when a static redial lost a race): org-2 and
        # org-3 never peer, yet the network is ready, each node having a peer and one chain.
        _forget_each_other(d, info.node("org-2-sealer-1"), info.node("org-3-sealer-1"))
        nw.wait_ready(d, 90)
        peers = {s.name: s.peers for s in nw.status(d)}
        assert peers["org-2-sealer-1"] == peers["org-3-sealer-1"] == 2, peers

        orgs = OrgCAs(d, tmp_path, 11, threshold=2)
        ledger = orgs.ledger
        with Submitter(tmp_path, ledger, orgs.quorum, orgs.mt_key) as sub:
            time.sleep(2)
            orgs.servers[0].stop()  # org-1's CA goes down: the other two still make k = 2
            before_down = sub.collected
            vote = nw.propose(d, standby.address, add=True, timeout=60)
            assert len(vote.voters) == 3
            assert _signers_shown(d) == genesis | {standby.address.lower()}
            # The new signer really seals: it signs blocks once voted in.
            head = int(nw.rpc_call(standby.rpc, "eth_blockNumber"), 16)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                now = int(nw.rpc_call(standby.rpc, "eth_blockNumber"), 16)
                if standby.address.lower() in _sealed_by(standby, head + 1, now):
                    break
                time.sleep(1)
            else:
                pytest.fail("the voted-in sealer sealed no block in 30 s")
            refused = network_cli("propose", standby.address, "--add", "--dir", str(d))
            assert refused.returncode == 2 and "already a signer" in refused.stderr
            nw.propose(d, standby.address, add=False, timeout=60)
            assert _signers_shown(d) == genesis
            expected = sub.finish()
        assert len(expected) == sub.collected >= before_down + 4  # none lost, CA down or not
        assert ledger.record_count() == len(expected)  # none duplicated
        for node in nw.load(d).nodes:
            assert _verified_on(node.rpc, ledger.address, expected) == len(expected), node.name
        _consortium_holds(orgs, len(expected))
        orgs.close()
    finally:
        assert network_cli("down", "--dir", str(d)).returncode == 0

    bundles = [tmp_path / f"bundle-{i}" for i in (1, 2, 3)]
    for i, b in enumerate(bundles, start=1):
        extra = ["--faucet"] if i == 1 else []
        out = network_cli("export", str(b), "--org", str(i), "--dir", str(d), *extra)
        assert out.returncode == 0, out.stderr
        assert (b / f"chainsense-org-{i}.service").read_text().count("network join") == 1
        assert (b / f"org-{i}/ca.key").stat().st_mode & 0o777 == 0o600
        assert (b / "faucet.key").exists() == (i == 1)
    nw.down(d, wipe=True)  # the bundles are all that is left
    try:
        joined = network_cli("join", str(bundles[0]))
        assert joined.returncode == 0, joined.stderr
        for b in bundles[1:]:
            nw.join(b)  # in this process: its geth children are this process's to reap
        for b in bundles:
            nw.wait_ready(b, 90)
        chain, ledger, ca, mt_key = _ledger_on(bundles[0], tmp_path, 12)
        with Submitter(tmp_path, ledger, ca, mt_key) as sub:
            # Governance across hosts: each organisation votes from its own bundle; one vote of
            # three stands without effect, the second makes the majority.
            first = nw.propose(bundles[0], standby.address, add=True, timeout=3)
            assert not first.passed and first.votes in (0, 1)
            assert first.voters == ("org-1-sealer-1",)
            assert nw.propose(bundles[1], standby.address, add=True, timeout=60).passed
            four = genesis | {standby.address.lower()}
            assert _signers_shown(bundles[2], four) == four
            assert nw.withdraw(bundles[0], standby.address) == ["org-1-sealer-1", "org-1-sealer-2"]
            expected = sub.finish()
        assert len(expected) >= 4
        for b, host in zip(bundles, HOSTS, strict=True):
            for node in nw.load(b).nodes:
                assert node.host == host
                assert _verified_on(node.rpc, ledger.address, expected) == len(expected)
        ca.close()  # type: ignore[attr-defined]
        chain.close()
        # A node that crashes is reaped at once, not left a zombie of the process that started it.
        crashed = nw.load(bundles[2]).nodes[0].pid
        os.kill(crashed, 9)
        time.sleep(1.0)
        assert not Path(f"/proc/{crashed}").exists()
    finally:
        for b in bundles:
            nw.down(b)
