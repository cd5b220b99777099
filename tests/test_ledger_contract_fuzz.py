"""Hypothesis against the real contract on the embedded chain: what the contract accepts, the
off-chain verifier accepts, and the other way round (single records and Merkle batches)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainsense.chain.errors import RevertError
from chainsense.chain.keys import SignatureError, recover
from chainsense.ledger import batch as batching
from chainsense.ledger.merkle import verify as merkle_verify
from chainsense.ledger.records import Record
from test_ledger_support import World, make_world

U32, U64 = 2**32 - 1, 2**64 - 1
FAST = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
DEEP = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = make_world(tmp_path_factory.mktemp("fuzz"))
    yield w
    w.ca.close()


_NONCES = itertools.count(10_000)  # fresh for every example, for every MT
fields = st.fixed_dictionaries(
    {
        "poi": st.integers(0, U32),
        "slot": st.integers(0, U32),
        "reading": st.integers(0, U64),
        "x": st.integers(0, U64),
        "y": st.integers(0, U64),
    }
)
tampering = st.sampled_from(["none", "signature", "reading", "nonce"])


def _offchain_ok(world: World, record: Record, ca_sig: bytes) -> bool:
    """What an independent verifier concludes: the CA in office signed this record's digest."""
    try:
        return recover(record.digest(world.ledger.domain), ca_sig) == world.ca_key.address
    except SignatureError:
        return False


def _check_record(world: World, data: dict[str, int], mt: int, tamper: str) -> None:
    record = world.record(mt=mt, nonce=next(_NONCES), **data)
    ca_sig = bytearray(world.ca_key.sign_digest(record.digest(world.ledger.domain)))
    if tamper == "signature":
        ca_sig[7] ^= 0x01
    elif tamper == "reading":
        record = Record(**(record.to_dict() | {"reading": (record.reading + 1) % (U64 + 1)}))
    elif tamper == "nonce":
        record = Record(**(record.to_dict() | {"nonce": next(_NONCES)}))
    offchain = _offchain_ok(world, record, bytes(ca_sig))
    try:
        world.ledger.submit(record, bytes(ca_sig), world.mts[mt])
        onchain = True
    except RevertError:
        onchain = False
    assert onchain == offchain == (tamper == "none"), (tamper, onchain, offchain)
    if onchain:
        stored = world.ledger.verify_stored(record)
        assert stored is not None and stored.record == record


def _check_batch(world: World, items: list[dict[str, int]], pick: int, tamper: str) -> None:
    signed = []
    for i, data in enumerate(items):
        mt = i % len(world.mts)
        rec = world.record(mt=mt, nonce=next(_NONCES), **data)
        signed.append((rec, world.mts[mt].sign_digest(rec.digest(world.ledger.domain))))
    cert = world.ca.countersign_batch(signed, world.mts[0].address)
    anchor = batching.anchor(world.ledger, cert, world.mts[0])
    root = world.ledger.get_batch(anchor.root_id).root
    entry = batching.make_bundle(world.ledger, cert, anchor.root_id).entries[pick % len(items)]
    record, proof = entry.record, list(entry.proof)
    if tamper == "reading":
        record = Record(**(record.to_dict() | {"reading": (record.reading + 1) % (U64 + 1)}))
    elif tamper in ("signature", "nonce") and proof:  # a sibling hash altered
        proof[0] = bytes([proof[0][0] ^ 0x80]) + proof[0][1:]
    offchain = merkle_verify(root, record.digest(world.ledger.domain), proof)
    onchain = world.ledger.verify_record(anchor.root_id, record, proof)
    assert onchain == offchain, (tamper, onchain, offchain)
    assert onchain == (tamper == "none" or (tamper in ("signature", "nonce") and not entry.proof))


@FAST
@given(data=fields, mt=st.integers(0, 2), tamper=tampering)
def test_contract_and_offchain_verifier_agree_on_records(world: World, data, mt, tamper) -> None:
    _check_record(world, data, mt, tamper)


@FAST
@given(items=st.lists(fields, min_size=1, max_size=9), pick=st.integers(0, 8), tamper=tampering)
def test_contract_and_offchain_verifier_agree_on_batch_proofs(world: World, items, pick, tamper):
    _check_batch(world, items, pick, tamper)


@pytest.mark.slow
@DEEP
@given(data=fields, mt=st.integers(0, 2), tamper=tampering)
def test_contract_and_offchain_verifier_agree_on_records_deep(world, data, mt, tamper) -> None:
    _check_record(world, data, mt, tamper)


@pytest.mark.slow
@DEEP
@given(items=st.lists(fields, min_size=1, max_size=33), pick=st.integers(0, 32), tamper=tampering)
def test_contract_and_offchain_verifier_agree_on_batch_proofs_deep(world, items, pick, tamper):
    _check_batch(world, items, pick, tamper)
