"""The Vyper ledger contract on the embedded chain: hostile submissions, queries, rotation."""

from __future__ import annotations

import json

import pytest

from chainsense.chain.errors import RevertError, revert_reason
from chainsense.chain.keys import KeyPair
from chainsense.errors import ChainsenseError
from chainsense.ledger import governance
from chainsense.ledger.artifacts import artifact_path
from chainsense.ledger.compile import compile_source
from chainsense.ledger.contract import Ledger, deploy_ledger
from chainsense.ledger.record_log import id_topic
from chainsense.ledger.records import Domain, Record
from chainsense.ledger.verify import verify_ledger
from test_ledger_support import World, make_world


@pytest.fixture
def world(tmp_path) -> World:
    return make_world(tmp_path)


def test_committed_artifact_matches_fresh_compile() -> None:
    committed = json.loads(artifact_path().read_text())
    fresh = compile_source()
    assert committed["abi"] == fresh["abi"]
    assert committed["bytecode"] == fresh["bytecode"], "run scripts/compile_contracts.py"
    assert committed["compiler"] == fresh["compiler"]


def test_runtime_code_has_no_dangerous_opcodes() -> None:
    """Static check of the compiled code (slither cannot parse Vyper 0.4, see docs/ledger.md):
    no external calls, no value-bearing or code-creating ops, nothing from the block header
    (timestamp, number, blockhash), no tx.origin, no PUSH0 (geth 1.13 Clique runs London).

    Read from the assembly without its `{ DATA ... }` sections: the selector jump table is data
    at the end of the code, and a disassembly of the bytecode reads its bytes as opcodes (since
    a selector is 0x40, "BLOCKHASH"), and without the constructor, which records its block
    number (where log scans start)."""
    import re

    import vyper

    from chainsense.ledger.artifacts import source_path

    asm = vyper.compile_code(source_path().read_text(), output_formats=["asm"])["asm"]
    runtime = asm[asm.index("<RUNTIME") :]
    assert "NUMBER" in asm[: asm.index("<RUNTIME")]  # the constructor's, cut off here
    code = re.sub(r"\{ DATA [^{}]*\}", " ", runtime)
    ops = {t for t in code.split() if re.fullmatch(r"[A-Z][A-Z0-9]*", t)}
    assert "JUMPDEST" in ops and "DATA" not in ops
    forbidden = {
        "CALL",
        "CALLCODE",
        "DELEGATECALL",
        "SELFDESTRUCT",
        "CREATE",
        "CREATE2",
        "TIMESTAMP",
        "NUMBER",
        "BLOCKHASH",
        "PREVRANDAO",
        "DIFFICULTY",
        "COINBASE",
        "ORIGIN",
        "PUSH0",
        "TSTORE",
        "TLOAD",
        "MCOPY",
    }
    assert not ops & forbidden
    assert "STATICCALL" in ops  # only the ecrecover / identity precompiles
    assert "SSTORE" in ops and "LOG4" in ops


def test_onchain_digest_equals_python_digest(world: World) -> None:
    rec = world.record(reading=2**64 - 1, x=2**64 - 1, poi=2**32 - 1, slot=2**32 - 1)
    assert world.ledger.onchain_digest(rec) == rec.digest(world.ledger.domain)
    assert world.ledger.view("domain_separator") == world.ledger.domain.separator


def test_submit_stores_indexes_and_emits(world: World) -> None:
    rec, sig = world.certified()
    sub = world.ledger.submit(rec, sig, world.mts[0])
    assert sub.record_id == 1 and sub.digest == rec.digest(world.ledger.domain)
    stored = world.ledger.get_record(1)
    assert stored.record == rec
    assert world.ledger.verify_stored(rec) == stored
    assert world.ledger.records_of_mt(world.mts[0].address) == [stored]
    assert world.ledger.records_of_poi(rec.poi) == [stored]
    assert world.ledger.records_in_slots(0, 10) == [stored]
    assert stored.ca_signatures == (sig,) and stored.tx_hash == sub.tx_hash
    assert world.ledger.is_stored(rec) and world.ledger.stored_digest(rec.mt, 0) == sub.digest
    assert world.ledger.record_id_of(rec) == 1 == world.ledger.record_id_of(sub.digest)
    assert verify_ledger(world.ledger).ok == 1


def test_gas_per_record_is_at_most_60k(world: World) -> None:
    """Issue 17's bound, for the costliest calldata (every field at its maximum) and the first
    record of the ledger (nothing warm yet): one storage word and one log per record."""
    top = {"poi": 2**32 - 1, "slot": 2**32 - 1, "reading": 2**64 - 1, "x": 2**64 - 1}
    used = []
    for nonce in (0, 2**64 - 1):
        rec, sig = world.certified(nonce=nonce, y=2**64 - 1, **top)
        used.append(world.ledger.submit(rec, sig, world.mts[0]).gas_used)
    assert max(used) <= 60_000, used


def test_an_altered_record_is_not_reported_stored(world: World) -> None:
    rec, sig = world.certified(nonce=3)
    world.ledger.submit(rec, sig, world.mts[0])
    for change in ({"reading": rec.reading + 1}, {"slot": 9}, {"nonce": 4}):
        altered = Record(**(rec.to_dict() | change))
        assert not world.ledger.is_stored(altered)
        assert world.ledger.verify_stored(altered) is None
        assert world.ledger.record_id_of(altered) == 0


def _rejected(world: World, reason: str, rec: Record, sig: bytes, sender: KeyPair) -> None:
    before = world.ledger.record_count()
    with pytest.raises(RevertError, match=reason):
        world.ledger.submit(rec, sig, sender)
    assert world.ledger.record_count() == before
    assert world.ledger.record_id_of(rec) == 0 or reason == "duplicate record"


def test_forged_ca_signature_rejected(world: World) -> None:
    rec = world.record()
    forger = KeyPair.derive("forger", 0)
    _rejected(
        world,
        "bad CA signature",
        rec,
        forger.sign_digest(rec.digest(world.ledger.domain)),
        world.mts[0],
    )
    # the MT's own signature is not a CA signature either
    _rejected(
        world,
        "bad CA signature",
        rec,
        world.mts[0].sign_digest(rec.digest(world.ledger.domain)),
        world.mts[0],
    )


def test_record_altered_after_countersigning_rejected(world: World) -> None:
    rec, sig = world.certified(reading=1)
    altered = Record(**(rec.to_dict() | {"reading": 1_000_000_000}))
    _rejected(world, "bad CA signature", altered, sig, world.mts[0])


def test_duplicate_and_replay_rejected(world: World) -> None:
    rec, sig = world.certified(nonce=5)
    world.ledger.submit(rec, sig, world.mts[0])
    _rejected(world, "duplicate record", rec, sig, world.mts[0])
    # a different record re-using the nonce: even a (compromised) CA signature cannot replay it
    other = world.record(nonce=5, poi=9)
    ca_sig = world.ca_key.sign_digest(other.digest(world.ledger.domain))
    _rejected(world, "nonce already used", other, ca_sig, world.mts[0])


def test_submitted_by_another_mt_rejected(world: World) -> None:
    rec, sig = world.certified(mt=0)
    _rejected(world, "sender is not the record's MT", rec, sig, world.mts[1])


def test_wrong_chain_id_and_wrong_contract_rejected(world: World) -> None:
    rec = world.record()
    for domain in (Domain(1, world.ledger.address), Domain(world.chain.chain_id, "0x" + "11" * 20)):
        sig = world.ca_key.sign_digest(rec.digest(domain))
        _rejected(world, "bad CA signature", rec, sig, world.mts[0])


def test_malformed_signature_bytes_rejected(world: World) -> None:
    rec, sig = world.certified()
    _rejected(world, "65 bytes", rec, sig[:64], world.mts[0])
    _rejected(world, "bad signature v", rec, sig[:64] + b"\x05", world.mts[0])


def test_paged_queries_beyond_one_page(world: World) -> None:
    for n in range(130):
        rec, sig = world.certified(nonce=n, poi=n % 2, slot=n // 10)
        world.ledger.submit(rec, sig, world.mts[0])
    mt = world.mts[0].address
    everything = world.ledger.records_of_mt(mt)
    assert [s.record.nonce for s in everything] == list(range(130))
    assert world.ledger.records_of_mt(mt, start=95, limit=10)[0].record.nonce == 95
    assert len(world.ledger.records_of_poi(1)) == 65
    assert {s.record.slot for s in world.ledger.records_in_slots(3, 4)} == {3, 4}
    assert len(world.ledger.records_in_slots(3, 4)) == 20
    assert len(world.ledger.records()) == 130
    assert [s.record_id for s in world.ledger.records(start=99, limit=5)] == [
        99,
        100,
        101,
        102,
        103,
    ]
    assert [s.record_id for s in world.ledger.records(start=128)] == [128, 129, 130]
    assert world.ledger.records(start=131) == [] and world.ledger.records(limit=0) == []
    assert world.ledger.records_of_mt(world.mts[1].address) == []
    with pytest.raises(ChainsenseError, match="no such record"):
        world.ledger.get_record(131)
    with pytest.raises(ChainsenseError, match="slot range"):
        world.ledger.records_in_slots(5, 4)
    with pytest.raises(ChainsenseError, match="poi"):
        world.ledger.records_of_poi(-1)


def test_ca_rotation_by_proposal(world: World) -> None:
    """k = n = 1: the CA's own proposal is the k-th approval, so a rotation takes effect at
    once; nobody else (the deployer included: there is no admin) can propose."""
    old_rec, old_sig = world.certified(nonce=0)
    new_ca = KeyPair.derive("test", 1, "ca")
    with pytest.raises(RevertError, match="only a CA of the current set"):
        governance.propose_ca_set(world.ledger, [new_ca.address], 1, world.mts[0])
    step = governance.propose_ca_set(world.ledger, [new_ca.address], 1, world.ca_key)
    assert step.executed and step.approvals == 1
    assert world.ledger.ca_set().cas == (new_ca.address,)
    history = governance.ca_set_history(world.ledger)
    assert [c.ca_set.cas for c in history] == [(world.ca_key.address,), (new_ca.address,)]
    _rejected(world, "bad CA signature", old_rec, old_sig, world.mts[0])
    rec = world.record(nonce=1)
    world.ledger.submit(rec, new_ca.sign_digest(rec.digest(world.ledger.domain)), world.mts[0])
    assert verify_ledger(world.ledger).ok == 1


def test_a_record_stored_under_a_rotated_out_ca_stays_valid(world: World) -> None:
    rec, sig = world.certified(nonce=0)
    world.ledger.submit(rec, sig, world.mts[0])
    governance.propose_ca_set(
        world.ledger, [KeyPair.derive("test", 1, "ca").address], 1, world.ca_key
    )
    report = verify_ledger(world.ledger)
    assert report.ok == 1, "a record stored under the old CA stays valid"


def test_deploy_rejects_zero_ca_and_missing_contract(world: World) -> None:
    with pytest.raises(RevertError, match="CA address is zero"):
        deploy_ledger(world.chain, "0x" + "00" * 20)
    with pytest.raises(ChainsenseError, match="no code"):
        Ledger(world.chain, "0x" + "11" * 20)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda lg: lg.get_record(2**256), "record id"),
        (lambda lg: lg.get_record(0), "record id"),
        (lambda lg: lg.get_record(True), "record id"),
        (lambda lg: lg.records(start=-1), "start"),
        (lambda lg: lg.records(start=1, limit=-5), "limit"),
        (lambda lg: lg.records_of_poi(1, start=-1), "start"),
        (lambda lg: lg.records_of_poi(1, start=0, limit=2**256), "limit"),
        (lambda lg: lg.get_batch(2**300), "root id"),
        (lambda lg: lg.verify_inclusion(-1, b"\0" * 32, []), "root id"),
    ],
)
def test_out_of_range_ids_and_pages_name_the_argument(world: World, call, field: str) -> None:
    """Values a uint256 argument cannot hold are refused before the call (they used to end in a
    MismatchedABI traceback)."""
    with pytest.raises(ChainsenseError, match=f"^{field}: must be an integer"):
        call(world.ledger)


def test_an_empty_revert_reason_reads_as_no_reason() -> None:
    assert revert_reason(Exception("execution reverted: b''")) == "reverted without a reason"
    assert revert_reason(Exception("execution reverted: b'duplicate record'")) == "duplicate record"
    assert revert_reason(Exception("execution reverted: bad CA signature")) == "bad CA signature"


def test_verify_ledger_catches_a_node_that_alters_or_drops_record_logs(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records are read from logs; a node that lies about one (or leaves one out) is caught by
    the digest the contract stores and by the record count."""
    for nonce in range(3):
        rec, sig = world.certified(nonce=nonce, slot=nonce)
        world.ledger.submit(rec, sig, world.mts[0])
    honest = world.ledger.get_logs

    def altered(flt: dict) -> list:
        out = []
        for log in honest(flt):
            if log["topics"][0] == bytes.fromhex(id_topic(2)[2:]):
                data = bytearray(log["data"])
                data[7] ^= 0x01  # the reading
                log = dict(log) | {"data": bytes(data)}
            out.append(log)
        return out

    monkeypatch.setattr(world.ledger, "get_logs", altered)
    report = verify_ledger(world.ledger)
    assert (report.total, report.ok) == (3, 2)
    assert report.failures == [(2, "the contract stores another digest for this MT and nonce")]
    assert world.ledger.verify_stored(world.ledger.get_record(2).record) is None

    def dropped(flt: dict) -> list:
        return [log for log in honest(flt) if log["topics"][0] != bytes.fromhex(id_topic(3)[2:])]

    monkeypatch.setattr(world.ledger, "get_logs", dropped)
    report = verify_ledger(world.ledger)
    assert (report.total, report.ok, report.failures) == (3, 2, [(3, "no record log")])
