"""The MT outbox keeps its nonces in step with the CA (issue 12, item 5).

The outbox used to number nonces from its own file only and to treat a CA ``stale_nonce``
refusal as final: a fresh outbox for an MT the CA already knows, or a ``submit --batch`` (which
numbers from the CA's last nonce + 1) followed by per-record submission, rejected every record
for good. Records still ``signed`` are now renumbered above the CA's last nonce and re-signed;
records the CA has countersigned keep their nonce (their digest is bound to it).
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from chainsense.chain.embedded import EmbeddedChain
from chainsense.chain.keys import KeyPair, recover, save_key
from chainsense.cli import main
from chainsense.errors import ChainsenseError
from chainsense.ledger.batch import submit_batch
from chainsense.ledger.ca import BatchCertificate, CertificateAuthority, Countersignature
from chainsense.ledger.ca_client import CAClient
from chainsense.ledger.ca_metadata import CAError
from chainsense.ledger.deployment import Deployment
from chainsense.ledger.records import Record
from chainsense.ledger.terminal import MobileTerminal
from chainsense.ledger.verify import verify_ledger
from test_ledger_support import World, free_port, make_world, wait_http


@pytest.fixture
def world(tmp_path) -> World:
    return make_world(tmp_path)


def _collect(term: MobileTerminal, slots: range) -> None:
    for s in slots:
        term.collect(poi=s % 3, slot=s, amount=0.25 * s, x=1.0, y=2.0)


def _batch_ahead(world: World, path: Path, n: int, ca=None, mt: int = 0) -> list[int]:
    """What ``ledger submit --batch`` does: certify n records of the MT numbered from the CA's
    last nonce + 1, and anchor their root; returns the nonces used."""
    authority = ca if ca is not None else world.ca
    key = world.mts[mt]

    def last() -> int:
        info = authority.get(key.address)
        return int(info["last_nonce"] if isinstance(info, dict) else info.last_nonce)

    def signed_items() -> list[tuple[Record, bytes]]:
        start = last() + 1
        recs = [world.record(mt, start + i, slot=1000 + start + i) for i in range(n)]
        return [(r, key.sign_digest(r.digest(world.ledger.domain))) for r in recs]

    out = submit_batch(world.ledger, authority, key, path, signed_items)
    assert out.anchored
    return [e.record.nonce for e in out.bundle.entries]


def _stored(world: World, mt: int = 0) -> list[tuple[int, int]]:
    """(nonce, slot) of every record of the MT stored on chain one by one."""
    return [
        (s.record.nonce, s.record.slot) for s in world.ledger.records_of_mt(world.mts[mt].address)
    ]


def _ca_nonces(ca: CertificateAuthority, address: str) -> list[int]:
    rows = ca._db.execute(
        "SELECT nonce FROM countersigned WHERE mt = ? ORDER BY nonce", (address,)
    ).fetchall()
    return [int(r[0]) for r in rows]


# ------------------------------------------------------------------------ (a) a fresh outbox


def test_fresh_outbox_for_a_known_mt_confirms_everything(world: World, tmp_path) -> None:
    """`ledger submit` run from another directory opens a fresh `<mt>.outbox` for an MT the
    CA has countersigned for: every record used to be rejected as `stale_nonce`."""
    first = MobileTerminal(world.mts[0], tmp_path / "here.outbox", world.ledger, world.ca)
    _collect(first, range(3))
    assert first.flush().confirmed == 3
    fresh = MobileTerminal(world.mts[0], tmp_path / "elsewhere.outbox", world.ledger, world.ca)
    _collect(fresh, range(10, 14))
    report = fresh.flush()
    assert (report.confirmed, report.rejected, report.pending) == (4, 0, 0), fresh.rejected()
    assert [r.nonce for r, _ in fresh.confirmed()] == [3, 4, 5, 6]  # in collection order
    assert _stored(world) == [(0, 0), (1, 1), (2, 2), (3, 10), (4, 11), (5, 12), (6, 13)]
    assert world.ca.get(world.mts[0].address).last_nonce == 6
    assert verify_ledger(world.ledger).ok == 7  # re-signed records verify like any other
    _collect(fresh, range(20, 22))  # later records follow on without another refusal
    assert fresh.flush().confirmed == 2
    assert [r.nonce for r, _ in fresh.confirmed()][-2:] == [7, 8]


# ------------------------------------------------------------ (b) batch and per-record mixed


def test_batch_then_per_record_loses_nothing(world: World, tmp_path) -> None:
    term = MobileTerminal(world.mts[0], tmp_path / "mt.outbox", world.ledger, world.ca)
    _collect(term, range(2))  # queued (signed) before the batch takes nonces 0..4
    assert _batch_ahead(world, tmp_path / "b1.json", 5) == [0, 1, 2, 3, 4]
    _collect(term, range(2, 3))
    report = term.flush()
    assert (report.confirmed, report.rejected, report.pending) == (3, 0, 0), term.rejected()
    assert [r.nonce for r, _ in term.confirmed()] == [5, 6, 7]
    # per-record, then batch, then per-record again on the same outbox
    assert _batch_ahead(world, tmp_path / "b2.json", 2) == [8, 9]
    _collect(term, range(3, 5))
    report = term.flush()
    assert (report.confirmed, report.rejected, report.pending) == (2, 0, 0), term.rejected()
    assert _stored(world) == [(5, 0), (6, 1), (7, 2), (10, 3), (11, 4)]
    assert term.counts() == {"confirmed": 5}
    assert verify_ledger(world.ledger).ok == 5


# ---------------------------------------------------------------- (c) through the HTTP CA


@pytest.fixture
def http_ca(world: World, tmp_path) -> Iterator[CAClient]:
    """`chainsense ca serve` for the embedded chain's contract, on a free loopback port."""
    key_file = save_key(tmp_path / "ca.key", world.ca_key)
    dep = Deployment(
        world.ledger.domain.chain_id,
        world.ledger.address,
        (world.ca_key.address,),
        1,
        1,
        rpc=("http://127.0.0.1:1",),
    )
    dep.write(tmp_path / "ledger.json")
    (tmp_path / "token").write_text("s3cret\n")
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chainsense",
            "ca",
            "serve",
            "--key",
            str(key_file),
            "--db",
            str(tmp_path / "http-ca.db"),
            "--deployment",
            str(tmp_path / "ledger.json"),
            "--port",
            str(port),
            "--admin-token-file",
            str(tmp_path / "token"),
            "--offline",  # the embedded chain lives in this process only
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    client = CAClient(url, admin_token="s3cret")
    try:
        wait_http(url + "/ca")
        client.register(world.mts[0].address, {"kind": "uav"})
        yield client
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=20)


def test_http_ca_fresh_outbox_and_batch_lose_nothing(world: World, tmp_path, http_ca) -> None:
    first = MobileTerminal(world.mts[0], tmp_path / "a.outbox", world.ledger, http_ca)
    _collect(first, range(2))
    assert first.flush().confirmed == 2
    assert _batch_ahead(world, tmp_path / "b.json", 3, ca=http_ca) == [2, 3, 4]
    fresh = MobileTerminal(world.mts[0], tmp_path / "b.outbox", world.ledger, http_ca)
    _collect(fresh, range(5, 8))
    report = fresh.flush()
    assert (report.confirmed, report.rejected, report.pending) == (3, 0, 0), fresh.rejected()
    assert [r.nonce for r, _ in fresh.confirmed()] == [5, 6, 7]
    _collect(first, range(8, 9))  # the first outbox is behind too now
    report = first.flush()
    assert (report.confirmed, report.rejected, report.pending) == (1, 0, 0), first.rejected()
    assert [r.nonce for r, _ in first.confirmed()] == [0, 1, 8]
    assert http_ca.get(world.mts[0].address)["last_nonce"] == 8
    assert verify_ledger(world.ledger).ok == 6


# ------------------------------------------------- (d) certified records are never renumbered


def test_certified_records_keep_their_nonce(world: World, tmp_path) -> None:
    term = MobileTerminal(world.mts[0], tmp_path / "mt.outbox", world.ledger, world.ca)
    _collect(term, range(2))
    assert term.certify() == 2  # countersigned as nonces 0, 1, not yet submitted
    _collect(term, range(2, 4))  # nonces 2, 3: still only signed
    assert _batch_ahead(world, tmp_path / "b.json", 3) == [2, 3, 4]
    report = term.flush()
    assert (report.confirmed, report.rejected, report.pending) == (4, 0, 0), term.rejected()
    assert _stored(world) == [(0, 0), (1, 1), (5, 2), (6, 3)]
    assert _ca_nonces(world.ca, world.mts[0].address) == [0, 1, 2, 3, 4, 5, 6]


def test_a_lost_countersignature_is_fetched_not_renumbered(world: World, tmp_path) -> None:
    """The CA countersigned a record but the MT never stored the answer (crash, timeout), and the
    CA's nonces moved on since: the record keeps its nonce (the CA answers it again), so the CA
    never countersigns the same reading twice; only the records after it are renumbered."""
    term = MobileTerminal(world.mts[0], tmp_path / "mt.outbox", world.ledger, world.ca)
    _collect(term, range(3))
    row = term._db.execute(
        "SELECT nonce, poi, slot, reading, x, y, mt_signature FROM outbox ORDER BY nonce LIMIT 1"
    ).fetchone()
    world.ca.countersign(term._record(row), bytes(row[6]))  # the answer that was lost
    assert _batch_ahead(world, tmp_path / "b.json", 2) == [1, 2]
    report = term.flush()
    assert (report.confirmed, report.rejected, report.pending) == (3, 0, 0), term.rejected()
    assert _stored(world) == [(0, 0), (3, 1), (4, 2)]
    assert _ca_nonces(world.ca, world.mts[0].address) == [0, 1, 2, 3, 4]  # no orphan


def test_a_stale_record_already_on_chain_is_confirmed_not_duplicated(
    world: World, tmp_path
) -> None:
    """An outbox restored from a backup, with a CA whose registry was replaced: the CA refuses
    the record as stale although it is on chain. Renumbering it would store the same reading
    twice: the terminal asks the contract by digest first."""
    term = MobileTerminal(world.mts[0], tmp_path / "mt.outbox", world.ledger, world.ca)
    _collect(term, range(1))
    term.close()
    shutil.copy(tmp_path / "mt.outbox", tmp_path / "backup.outbox")
    term = MobileTerminal(world.mts[0], tmp_path / "mt.outbox", world.ledger, world.ca)
    assert term.flush().confirmed == 1
    ca2 = CertificateAuthority(world.ca_key, tmp_path / "ca2.db", world.ledger.domain)
    ca2.register(world.mts[0].address)
    rec = world.record(0, 3, slot=99)
    ca2.countersign(rec, world.mts[0].sign_digest(rec.digest(world.ledger.domain)))
    restored = MobileTerminal(world.mts[0], tmp_path / "backup.outbox", world.ledger, ca2)
    report = restored.flush()
    assert (report.rejected, report.pending) == (0, 0), restored.rejected()
    [(rec0, record_id)] = restored.confirmed()
    assert (rec0.nonce, rec0.slot, record_id) == (0, 0, 1)
    assert world.ledger.record_count() == 1
    assert _ca_nonces(ca2, world.mts[0].address) == [3]


def test_a_certified_record_the_contract_refuses_stays_visible(world: World, tmp_path) -> None:
    """Certified under nonce 0 by a CA whose registry was then replaced; the new registry
    certified another record under nonce 0, which reached the chain first. The first record
    cannot be renumbered (its countersignature covers nonce 0): it stays in the outbox as
    rejected with the contract's reason, and nothing is renumbered or re-certified."""
    a = MobileTerminal(world.mts[0], tmp_path / "a.outbox", world.ledger, world.ca)
    _collect(a, range(1))
    assert a.certify() == 1
    ca2 = CertificateAuthority(world.ca_key, tmp_path / "ca2.db", world.ledger.domain)
    ca2.register(world.mts[0].address)
    b = MobileTerminal(world.mts[0], tmp_path / "b.outbox", world.ledger, ca2)
    _collect(b, range(5, 6))
    assert b.flush().confirmed == 1
    report = a.flush()
    assert (report.confirmed, report.rejected, report.pending) == (0, 1, 0)
    [(rec, reason)] = a.rejected()
    assert rec.nonce == 0 and "nonce already used" in reason
    assert _stored(world) == [(0, 5)]


# ------------------------------------------------------------------- retry, recovery, limits


def test_stale_refusal_mid_flush_renumbers_and_retries(world: World, tmp_path) -> None:
    """Another client takes nonces between two countersign requests (a concurrent batch)."""

    class Racing:
        def __init__(self) -> None:
            self.calls = 0

        def countersign_many(
            self, items: Sequence[tuple[Record, bytes]]
        ) -> tuple[list[Countersignature], CAError | None]:
            done = []
            for record, sig in items:  # one record at a time, the race in between
                self.calls += 1
                if self.calls in (2, 4):
                    _batch_ahead(world, tmp_path / f"race{self.calls}.json", 2)
                try:
                    done.append(world.ca.countersign(record, sig))
                except CAError as exc:
                    return done, exc
            return done, None

        def last_nonce(self, address: str) -> int | None:
            info = world.ca.get(address)
            return None if info is None else info.last_nonce

    term = MobileTerminal(world.mts[0], tmp_path / "mt.outbox", world.ledger, Racing())
    _collect(term, range(3))
    report = term.flush()
    assert (report.confirmed, report.rejected, report.pending) == (3, 0, 0), term.rejected()
    assert len(_stored(world)) == 3 and verify_ledger(world.ledger).ok == 3


def test_records_an_older_version_rejected_as_stale_are_queued_again(
    world: World, tmp_path
) -> None:
    """Outboxes written before this fix hold records wrongly rejected as `stale_nonce` (never
    countersigned): opening the outbox queues them again instead of leaving them lost."""
    first = MobileTerminal(world.mts[0], tmp_path / "first.outbox", world.ledger, world.ca)
    _collect(first, range(2))
    first.flush()
    path = tmp_path / "old.outbox"
    old = MobileTerminal(world.mts[0], path, world.ledger, world.ca)
    _collect(old, range(10, 12))
    old.close()
    db = sqlite3.connect(path)
    db.execute(
        "UPDATE outbox SET state = 'rejected', error = 'CA: stale_nonce: record.nonce: 0 is not "
        "above the last countersigned nonce 1'"
    )
    db.commit()
    db.close()
    old = MobileTerminal(world.mts[0], path, world.ledger, world.ca)
    assert old.counts() == {"signed": 2}
    report = old.flush()
    assert (report.confirmed, report.rejected, report.pending) == (2, 0, 0)
    assert [r.nonce for r, _ in old.confirmed()] == [2, 3]


def test_nonces_beyond_the_outbox_range_are_a_clear_error(world: World, tmp_path) -> None:
    """The outbox keeps nonces as SQLite INTEGERs (below 2**63) while the CA goes to 2**64 - 1:
    an MT the CA numbered beyond that gets an error naming the nonce, and nothing is lost."""
    key = world.mts[0]
    rec = world.record(0, 2**63 - 2)
    world.ca.countersign(rec, key.sign_digest(rec.digest(world.ledger.domain)))
    term = MobileTerminal(key, tmp_path / "mt.outbox", world.ledger, world.ca)
    _collect(term, range(1))
    assert term.flush().confirmed == 1
    assert [r.nonce for r, _ in term.confirmed()] == [2**63 - 1]
    with pytest.raises(ChainsenseError, match="nonce"):
        _collect(term, range(1, 2))  # 2**63 does not fit the outbox
    assert term.counts() == {"confirmed": 1}

    other = MobileTerminal(world.mts[1], tmp_path / "other.outbox", world.ledger, world.ca)
    rec = world.record(1, 2**63)
    world.ca.countersign(rec, world.mts[1].sign_digest(rec.digest(world.ledger.domain)))
    _collect(other, range(2))
    with pytest.raises(ChainsenseError, match="nonce") as exc:
        other.flush()
    assert "Traceback" not in str(exc.value) and str(2**63) in str(exc.value)
    assert other.counts() == {"signed": 2}  # still queued, not rejected


RENUMBER_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from chainsense.chain.embedded import EmbeddedChain
    from chainsense.chain.keys import KeyPair
    from chainsense.ledger.ca import CertificateAuthority
    from chainsense.ledger.contract import deploy_ledger
    from chainsense.ledger.terminal import MobileTerminal

    tmp = Path(sys.argv[1])
    chain = EmbeddedChain()  # same deployer, nonce and code as the parent: same address
    ledger = deploy_ledger(chain, KeyPair.derive("test", 0, "ca").address)
    ca = CertificateAuthority(KeyPair.derive("test", 0, "ca"), tmp / "ca.db", ledger.domain)
    key = KeyPair.derive("test", 0)

    class DiesWhileRenumbering:  # the MT key; SIGKILL at the 3rd signature of the renumbering
        address = key.address
        calls = 0
        def sign_digest(self, digest):
            DiesWhileRenumbering.calls += 1
            if DiesWhileRenumbering.calls == 6 + 3:  # after the 6 signatures of collect()
                os.kill(os.getpid(), signal.SIGKILL)
            return key.sign_digest(digest)

    term = MobileTerminal(DiesWhileRenumbering(), tmp / "mt.db", ledger, ca)
    for i in range(6):
        term.collect(poi=i, slot=i, amount=0.5 * i, x=1.0, y=2.0)
    term.flush()
    """
)


def test_sigkill_while_renumbering_keeps_the_old_numbering(tmp_path) -> None:
    """Renumbering is one write transaction: an MT killed half way through it finds every
    record with its old nonce and a valid signature, and the next flush renumbers them all."""
    world = make_world(tmp_path, chain=EmbeddedChain())
    for n in range(5):  # the CA is at nonce 4 for this MT (another outbox, a batch)
        world.certified(0, n, slot=100 + n)
    world.ca.close()
    proc = subprocess.run(
        [sys.executable, "-c", RENUMBER_CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    ca = CertificateAuthority(world.ca_key, tmp_path / "ca.db", world.ledger.domain)
    term = MobileTerminal(world.mts[0], tmp_path / "mt.db", world.ledger, ca)
    rows = term._db.execute("SELECT nonce, digest, mt_signature, state FROM outbox").fetchall()
    assert [(r[0], r[3]) for r in rows] == [(n, "signed") for n in range(6)]
    for nonce, digest, sig, _ in rows:
        rec = term._record(
            term._db.execute(
                "SELECT nonce, poi, slot, reading, x, y FROM outbox WHERE nonce = ?", (nonce,)
            ).fetchone()
        )
        assert rec.digest(world.ledger.domain) == bytes(digest)
        assert recover(bytes(digest), bytes(sig)) == world.mts[0].address
    report = term.flush()
    assert (report.confirmed, report.rejected, report.pending) == (6, 0, 0), term.rejected()
    assert _stored(world) == [(n + 5, n) for n in range(6)]
    assert verify_ledger(world.ledger).ok == 6


# ----------------------------------------------------------- `chainsense ledger submit` itself


class _InProcessCA:
    """What the CLI's CAClient offers, answered by the in-process CA (no server, no chain)."""

    def __init__(self, ca: CertificateAuthority) -> None:
        self.ca = ca

    def get(self, address: str) -> dict | None:
        info = self.ca.get(address)
        return None if info is None else {"address": address, "last_nonce": info.last_nonce}

    def last_nonce(self, address: str) -> int | None:
        return self.ca.last_nonce(address)

    def countersign_many(
        self, items: Sequence[tuple[Record, bytes]]
    ) -> tuple[list[Countersignature], CAError | None]:
        return self.ca.countersign_many(items)

    def countersign_batch(
        self, items: Sequence[tuple[Record, bytes]], submitter: str
    ) -> BatchCertificate:
        return self.ca.countersign_batch(items, submitter)


def _submit(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(["ledger", "submit", *args])
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, " ".join(out.err.split())


def test_cli_submit_from_another_directory_and_after_batch(
    world: World, tmp_path, monkeypatch, capsys
) -> None:
    """The default outbox is `<mt>.outbox` in the current directory: running from another
    directory, or after `--batch`, used to reject every record (and exit 0)."""
    from chainsense.ledger import ca_client, deployment

    monkeypatch.setattr(deployment, "chain_of", lambda _dep: (world.chain, None))
    monkeypatch.setattr(ca_client, "CAClient", lambda *_a, **_k: _InProcessCA(world.ca))
    dep = Deployment(
        world.ledger.domain.chain_id,
        world.ledger.address,
        (world.ca_key.address,),
        1,
        1,
        rpc=("http://127.0.0.1:1",),
    )
    dep.write(tmp_path / "ledger.json")
    key_file = save_key(tmp_path / "mt.key", world.mts[0])
    ledger_file = str(tmp_path / "ledger.json")

    def submit(first_slot: int, *more: str) -> tuple[int, str, str]:
        events = [
            {"poi": 1, "slot": first_slot + i, "reading": 0.5, "x": 1, "y": 2} for i in range(3)
        ]
        (tmp_path / "ev.json").write_text(json.dumps(events))
        return _submit(
            capsys, str(tmp_path / "ev.json"), "--mt-key", str(key_file), "-d", ledger_file, *more
        )

    for first_slot, sub in ((0, "one"), (10, "two")):
        (tmp_path / sub).mkdir()
        monkeypatch.chdir(tmp_path / sub)
        code, out, err = submit(first_slot)
        assert code == 0 and "confirmed 3" in out and "rejected 0" in out, out + err
        assert str(tmp_path / sub / f"{world.mts[0].address}.outbox") in out  # says where
    code, out, err = submit(20, "--batch", "--bundle", str(tmp_path / "b.json"))
    assert code == 0 and "anchored 3 records" in out, out + err
    code, out, err = submit(30)  # back in "two": its outbox is behind the batch
    assert code == 0 and "confirmed 3" in out and "rejected 0" in out, out + err
    stored = world.ledger.records_of_mt(world.mts[0].address)
    assert [(s.record.nonce, s.record.slot) for s in stored] == [
        (0, 0),
        (1, 1),
        (2, 2),
        (3, 10),
        (4, 11),
        (5, 12),
        (9, 30),
        (10, 31),
        (11, 32),
    ]
    assert verify_ledger(world.ledger).ok == 9

    stranger = KeyPair.derive("stranger", 0)  # not registered: the CA refuses every record
    world.chain.fund(stranger.address, 10**18)
    save_key(tmp_path / "stranger.key", stranger)
    code, out, err = _submit(
        capsys,
        str(tmp_path / "ev.json"),
        "--mt-key",
        str(tmp_path / "stranger.key"),
        "-d",
        str(tmp_path / "ledger.json"),
    )
    assert code == 2 and "rejected 3" in out and "unknown_mt" in out, out + err
    assert "3 records rejected" in err and "outbox" in err


def test_cli_submit_help_says_where_the_outbox_lives(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "240")  # one line per option: the text is not cut by wrapping
    with pytest.raises(SystemExit):
        main(["ledger", "submit", "--help"])
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "<mt address>.outbox in the current directory" in text, text
