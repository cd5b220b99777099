"""Merkle batches: proofs off chain and on chain, tampering, batch anchoring rules."""

from __future__ import annotations

import json

import pytest
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsense.chain.errors import RevertError
from chainsense.chain.keys import KeyPair
from chainsense.errors import ChainsenseError
from chainsense.ledger import batch as batching
from chainsense.ledger.ca import CAError
from chainsense.ledger.merkle import MerkleTree, verify
from chainsense.ledger.records import Record, batch_struct_hash
from test_ledger_support import World, make_world


def _digests(n: int) -> list[bytes]:
    return [keccak(i.to_bytes(8)) for i in range(n)]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33])
def test_every_proof_verifies(n: int) -> None:
    digests = _digests(n)
    tree = MerkleTree.build(digests)
    for i, d in enumerate(digests):
        assert verify(tree.root, d, tree.proof(i))
    assert not verify(tree.root, keccak(b"outsider"), tree.proof(0))
    assert tree.proofs() == [tuple(tree.proof(i)) for i in range(n)]  # all at once: the same


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), data=st.data())
def test_proofs_property(n: int, data: st.DataObject) -> None:
    digests = _digests(n)
    tree = MerkleTree.build(digests)
    i = data.draw(st.integers(0, n - 1))
    j = data.draw(st.integers(0, n - 1))
    assert verify(tree.root, digests[i], tree.proof(i))
    assert tree.proofs()[i] == tuple(tree.proof(i))
    assert verify(tree.root, digests[i], tree.proof(j)) == (
        i == j or tree.proof(i) == tree.proof(j)
    )


def test_tampered_proofs_fail() -> None:
    digests = _digests(10)
    tree = MerkleTree.build(digests)
    proof = tree.proof(3)
    assert not verify(tree.root, digests[3], proof[:-1])
    assert not verify(tree.root, digests[3], [*proof, keccak(b"x")])
    bad = list(proof)
    bad[1] = keccak(b"x")
    assert not verify(tree.root, digests[3], bad)
    # an inner node is not a leaf: presenting one with the shorter proof fails
    inner = tree.levels[1][0]
    assert not verify(tree.root, inner, tree.proof(0)[1:])
    assert not verify(tree.root, digests[3], [b"short"])


def test_tree_input_checks() -> None:
    with pytest.raises(ChainsenseError, match="at least one"):
        MerkleTree.build([])
    with pytest.raises(ChainsenseError, match="32 bytes"):
        MerkleTree.build([b"abc"])
    with pytest.raises(ChainsenseError, match="leaf index"):
        MerkleTree.build(_digests(3)).proof(3)


@pytest.fixture
def world(tmp_path) -> World:
    return make_world(tmp_path, n_mts=4)


def _items(world: World, n: int, start: int = 0) -> list[tuple[Record, bytes]]:
    out = []
    for i in range(start, start + n):
        mt = i % len(world.mts)
        rec = world.record(mt=mt, nonce=i // len(world.mts), slot=i)
        out.append((rec, world.mts[mt].sign_digest(rec.digest(world.ledger.domain))))
    return out


def test_batch_anchor_and_onchain_inclusion(world: World, tmp_path) -> None:
    agg = world.mts[0]
    cert = world.ca.countersign_batch(_items(world, 37), agg.address)
    anchor = batching.anchor(world.ledger, cert, agg)
    assert anchor.root_id == 1 and world.ledger.get_batch(1).size == 37
    bundle = batching.make_bundle(world.ledger, cert, anchor.root_id)
    path = batching.write_bundle(tmp_path / "b.json", bundle)
    loaded = batching.read_bundle(path)
    assert loaded == bundle
    assert all(batching.verify_offchain(world.ledger, loaded))
    assert all(batching.verify_onchain(world.ledger, loaded))
    e = loaded.entries[5]
    assert world.ledger.verify_inclusion(1, e.record.digest(world.ledger.domain), e.proof)
    altered = Record(**(e.record.to_dict() | {"reading": 1}))
    assert not world.ledger.verify_record(1, altered, e.proof)
    assert not world.ledger.verify_record(2, e.record, e.proof)  # no such batch
    assert not world.ledger.verify_inclusion(
        1, keccak(e.record.digest(world.ledger.domain)), e.proof
    )


def test_batch_anchor_hostile(world: World) -> None:
    agg, other = world.mts[0], world.mts[1]
    cert = world.ca.countersign_batch(_items(world, 8), agg.address)
    with pytest.raises(ChainsenseError, match="submitter"):
        batching.anchor(world.ledger, cert, other)
    with pytest.raises(RevertError, match="bad CA signature"):  # another sender, same signature
        world.ledger.anchor_batch(cert.root, cert.size, cert.ca_signature, other)
    with pytest.raises(RevertError, match="bad CA signature"):  # size changed
        world.ledger.anchor_batch(cert.root, cert.size + 1, cert.ca_signature, agg)
    forged = KeyPair.derive("forger", 0).sign_digest(
        world.ledger.domain.digest(batch_struct_hash(cert.root, cert.size, agg.address))
    )
    with pytest.raises(RevertError, match="bad CA signature"):
        world.ledger.anchor_batch(cert.root, cert.size, forged, agg)
    with pytest.raises(RevertError, match="empty batch"):
        world.ledger.anchor_batch(cert.root, 0, cert.ca_signature, agg)
    assert world.ledger.batch_count() == 0
    batching.anchor(world.ledger, cert, agg)
    with pytest.raises(RevertError, match="duplicate batch root"):
        batching.anchor(world.ledger, cert, agg)
    assert world.ledger.batch_count() == 1


def test_ca_batch_all_or_nothing(world: World) -> None:
    agg = world.mts[0].address
    items = _items(world, 6)
    rec, _ = items[3]
    items[3] = (rec, world.mts[(3 + 1) % 4].sign_digest(rec.digest(world.ledger.domain)))
    with pytest.raises(CAError, match=r"items\[3\].signature"):
        world.ca.countersign_batch(items, agg)
    assert all(world.ca.get(k.address).last_nonce == -1 for k in world.mts)
    stranger = KeyPair.derive("stranger", 0)
    bad_rec = Record(stranger.address, 1, 1, 1, 1, 1, 0)
    items = [
        *_items(world, 2),
        (bad_rec, stranger.sign_digest(bad_rec.digest(world.ledger.domain))),
    ]
    with pytest.raises(CAError, match="not registered"):
        world.ca.countersign_batch(items, agg)
    items = _items(world, 8)
    cert = world.ca.countersign_batch(items, agg)
    assert world.ca.countersign_batch(items, agg).ca_signature == cert.ca_signature  # idempotent
    with pytest.raises(CAError, match=r"stale|above"):
        world.ca.countersign_batch(items[:4], agg)  # old nonces, different root
    fresh = _items(world, 8, start=8)
    with pytest.raises(CAError, match=r"items\[1\].record.nonce"):  # MT 0: nonce 3 then 2
        world.ca.countersign_batch([fresh[4], fresh[0]], agg)
    assert world.ca.get(world.mts[0].address).last_nonce == 1


def test_read_bundle_rejects_malformed_files(world: World, tmp_path) -> None:
    agg = world.mts[0]
    cert = world.ca.countersign_batch(_items(world, 3), agg.address)
    anchor = batching.anchor(world.ledger, cert, agg)
    path = batching.write_bundle(
        tmp_path / "b.json", batching.make_bundle(world.ledger, cert, anchor.root_id)
    )
    good = json.loads(path.read_text())
    cases = [
        ("{", "is malformed"),
        (json.dumps(good | {"root": "0x12"}), "bundle.root"),
        (json.dumps({k: v for k, v in good.items() if k != "entries"}), "is malformed"),
    ]
    bad_entry = json.loads(json.dumps(good))
    bad_entry["entries"][1]["proof"] = "0xzz"
    cases.append((json.dumps(bad_entry), r"entries[1].proof: not hex"))
    bad_entry["entries"][1]["proof"] = "0x" + "ab" * 31
    cases.append((json.dumps(bad_entry), "at most 32 hashes"))
    bad_entry["entries"][1]["proof"] = good["entries"][1]["proof"]
    bad_entry["entries"][2]["record"]["poi"] = -4
    cases.append((json.dumps(bad_entry), "record.poi"))
    for text, message in cases:
        path.write_text(text)
        with pytest.raises(ChainsenseError) as exc:
            batching.read_bundle(path)
        assert message in str(exc.value)


def test_pending_bundle_resumes_idempotently(world: World, tmp_path) -> None:
    agg = world.mts[0]
    cert = world.ca.countersign_batch(_items(world, 5), agg.address)
    path = batching.write_bundle(tmp_path / "p.json", batching.make_bundle(world.ledger, cert, 0))
    pending = batching.read_bundle(path)  # as if the submitter crashed before anchoring
    assert pending.root_id == 0 and pending.ca_signature == cert.ca_signature

    def never() -> list:
        raise AssertionError("a pending bundle must not be certified again")

    with pytest.raises(ChainsenseError, match="submitter"):
        batching.submit_batch(world.ledger, world.ca, world.mts[1], path, never)
    first = batching.submit_batch(world.ledger, world.ca, agg, path, never)
    assert first.anchored and not first.certified and first.bundle.root_id == 1
    assert batching.read_bundle(path).root_id == 1  # the anchored root id is kept
    # crashed after anchoring, before the bundle was rewritten: the root is found, not re-sent
    batching.write_bundle(path, pending)
    again = batching.submit_batch(world.ledger, world.ca, agg, path, never)
    assert not again.anchored and again.bundle.root_id == 1
    assert world.ledger.batch_count() == 1


def test_submit_batch_certifies_writes_then_anchors(world: World, tmp_path) -> None:
    agg = world.mts[0]
    path = tmp_path / "b.json"
    out = batching.submit_batch(world.ledger, world.ca, agg, path, lambda: _items(world, 4))
    assert out.certified and out.anchored and out.gas_used > 0
    assert batching.read_bundle(path) == out.bundle and out.bundle.size == 4
    assert all(batching.verify_onchain(world.ledger, out.bundle))
    done = batching.submit_batch(world.ledger, world.ca, agg, path, lambda: _items(world, 4))
    assert not done.certified and not done.anchored and done.bundle == out.bundle


def test_bundle_file_is_the_json_of_its_fields(world: World, tmp_path) -> None:
    """The bundle's entries are formatted by hand: the file must be exactly json.dumps of the
    documented layout, for the largest field values too."""
    top = Record(world.mts[1].address, 2**32 - 1, 2**32 - 1, 2**64 - 1, 2**64 - 1, 2**64 - 1, 0)
    entries = (
        batching.BundleEntry(top, (keccak(b"a"), keccak(b"b"))),
        batching.BundleEntry(Record(world.mts[2].address, 0, 0, 0, 0, 0, 0), ()),
    )
    bundle = batching.Bundle(7, keccak(b"r"), 1, world.ledger.address, entries, "0x" + "ab" * 20)
    path = batching.write_bundle(tmp_path / "b.json", bundle)
    layout = {
        "root_id": 7,
        "root": "0x" + keccak(b"r").hex(),
        "chain_id": 1,
        "contract": world.ledger.address,
        "submitter": "0x" + "ab" * 20,
        "ca_signature": "0x",
        "entries": [
            {"record": top.to_dict(), "proof": "0x" + (keccak(b"a") + keccak(b"b")).hex()},
            {"record": entries[1].record.to_dict(), "proof": "0x"},
        ],
    }
    assert path.read_text() == json.dumps(layout)
    assert batching.read_bundle(path) == bundle
