"""The consortium on the embedded chain: k-of-n CA signatures, governance, revocation.

Three organisations' CAs, k = 2: a stolen CA key alone stores nothing; signatures must come from
distinct CAs of the current set in increasing signer order; changes to the set, to k and
revocations need k approvals; every refusal names its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3.exceptions import ContractLogicError

from chainsense.chain.embedded import EmbeddedChain
from chainsense.chain.errors import RevertError, revert_reason
from chainsense.chain.keys import KeyPair
from chainsense.errors import ChainsenseError
from chainsense.ledger import governance
from chainsense.ledger.batch import submit_batch
from chainsense.ledger.ca import CertificateAuthority
from chainsense.ledger.ca_quorum import CAQuorum
from chainsense.ledger.consortium import CASet
from chainsense.ledger.contract import (
    SUBMIT_GAS,
    SUBMIT_GAS_PER_SIGNATURE,
    Ledger,
    deploy_ledger,
)
from chainsense.ledger.merkle import MerkleTree
from chainsense.ledger.record_log import packed_fields, to_compact
from chainsense.ledger.records import Record, batch_struct_hash
from chainsense.ledger.verify import BundleRevocations, bundle_revocations, verify_ledger


@dataclass
class Consortium:
    chain: EmbeddedChain
    ledger: Ledger
    ca_keys: list[KeyPair]  # by increasing address
    cas: list[CertificateAuthority]
    mts: list[KeyPair]

    def record(self, mt: int = 0, nonce: int = 0, **kw: int) -> Record:
        fields = {"poi": 1, "slot": 2, "reading": 3_000_000, "x": 4, "y": 5} | kw
        return Record(self.mts[mt].address, nonce=nonce, **fields)

    def signatures(self, rec: Record, signers: list[KeyPair]) -> bytes:
        digest = rec.digest(self.ledger.domain)
        return b"".join(k.sign_digest(digest) for k in signers)


def make_consortium(tmp: Path, n: int = 3, k: int = 2) -> Consortium:
    chain = EmbeddedChain()
    keys = sorted(
        (KeyPair.derive("org", i, "ca") for i in range(n)), key=lambda x: int(x.address, 16)
    )
    mts = [KeyPair.derive("org", i) for i in range(2)]
    ledger = deploy_ledger(chain, [x.address for x in keys], threshold=k)
    for key in [*keys, *mts]:
        chain.fund(key.address, 10**18)
    cas = [CertificateAuthority(x, tmp / f"ca{i}.db", ledger.domain) for i, x in enumerate(keys)]
    for ca in cas:
        for mt in mts:
            ca.register(mt.address)
    return Consortium(chain, ledger, keys, cas, mts)


@pytest.fixture
def org(tmp_path: Path) -> Consortium:
    return make_consortium(tmp_path)


def _refused(org: Consortium, reason: str, rec: Record, sigs: bytes, mt: int = 0) -> None:
    before = org.ledger.record_count()
    with pytest.raises(RevertError, match=reason):
        org.ledger.submit(rec, sigs, org.mts[mt])
    assert org.ledger.record_count() == before


def test_deployment_records_the_set_and_k(org: Consortium) -> None:
    assert org.ledger.ca_set() == CASet(tuple(x.address for x in org.ca_keys), 2)
    assert [c.ca_set.threshold for c in governance.ca_set_history(org.ledger)] == [2]


def test_k_distinct_cas_store_a_record_and_verify(org: Consortium) -> None:
    rec = org.record()
    sub = org.ledger.submit(rec, org.signatures(rec, org.ca_keys[1:]), org.mts[0])
    assert sub.record_id == 1
    stored = org.ledger.get_record(1)
    assert len(stored.ca_signatures) == 2
    report = verify_ledger(org.ledger)
    assert (report.ok, report.failures) == (1, [])


def test_one_stolen_ca_key_alone_cannot_store_a_record(org: Consortium) -> None:
    rec = org.record()
    thief = org.ca_keys[0]
    _refused(org, "wrong number of CA signatures", rec, org.signatures(rec, [thief]))
    _refused(org, "distinct and in increasing order", rec, org.signatures(rec, [thief, thief]))
    outsider = KeyPair.derive("outsider", 0)
    pair = sorted([thief, outsider], key=lambda x: int(x.address, 16))
    _refused(org, "bad CA signature", rec, org.signatures(rec, pair))
    three = org.signatures(rec, org.ca_keys)
    _refused(org, "wrong number of CA signatures", rec, three)


def test_unsorted_signers_are_refused(org: Consortium) -> None:
    rec = org.record()
    _refused(
        org,
        "distinct and in increasing order",
        rec,
        org.signatures(rec, [org.ca_keys[1], org.ca_keys[0]]),
    )


def test_one_stolen_ca_key_alone_cannot_anchor_a_root(org: Consortium) -> None:
    tree = MerkleTree.build([org.record(nonce=i).digest(org.ledger.domain) for i in range(4)])
    submitter = org.mts[0]
    digest = org.ledger.domain.digest(batch_struct_hash(tree.root, 4, submitter.address))
    alone = org.ca_keys[0].sign_digest(digest)
    with pytest.raises(RevertError, match="wrong number of CA signatures"):
        org.ledger.anchor_batch(tree.root, 4, alone, submitter)
    with pytest.raises(RevertError, match="distinct and in increasing order"):
        org.ledger.anchor_batch(tree.root, 4, alone + alone, submitter)
    assert org.ledger.batch_count() == 0
    two = b"".join(x.sign_digest(digest) for x in org.ca_keys[:2])
    assert org.ledger.anchor_batch(tree.root, 4, two, submitter).root_id == 1


def _dry_run_reason(org: Consortium, rec: Record, sigs: list[bytes]) -> str | None:
    """The contract's verdict on a submit, from a call (nothing is sent)."""
    compact = [to_compact(s) for s in sigs]
    data = org.ledger.encode("submit", packed_fields(rec), rec.nonce, compact)
    try:
        org.chain.call(
            lambda w3: w3.eth.call({"from": rec.mt, "to": org.ledger.address, "data": data})
        )
    except ContractLogicError as exc:
        return revert_reason(exc)
    except RevertError as exc:
        return exc.reason
    return None


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=4))
def test_the_contract_and_the_client_agree_on_any_signer_list(
    org: Consortium, picks: list[int]
) -> None:
    """Signers drawn from the 3 CAs and 2 outsiders, repeated and in any order: the contract
    accepts exactly what ``CASet.check`` accepts, with the same reason."""
    pool = [*org.ca_keys, KeyPair.derive("outsider", 0), KeyPair.derive("outsider", 1)]
    rec = org.record(nonce=7)
    sigs = [pool[i].sign_digest(rec.digest(org.ledger.domain)) for i in picks]
    expected = org.ledger.ca_set().check(rec.digest(org.ledger.domain), b"".join(sigs))
    assert _dry_run_reason(org, rec, sigs) == expected


def test_revoking_an_mt_takes_k_approvals_and_keeps_its_earlier_records(org: Consortium) -> None:
    early = org.record(nonce=0)
    org.ledger.submit(early, org.signatures(early, org.ca_keys[:2]), org.mts[0])
    step = governance.propose_revocation(org.ledger, org.mts[0].address, org.ca_keys[0])
    assert (step.approvals, step.executed) == (1, False)
    assert not org.ledger.is_revoked(org.mts[0].address)
    with pytest.raises(RevertError, match="already approved by this CA"):
        governance.approve(org.ledger, step.proposal, org.ca_keys[0])
    done = governance.approve(org.ledger, step.proposal, org.ca_keys[2])
    assert done.executed and org.ledger.is_revoked(org.mts[0].address)
    late = org.record(nonce=1)
    _refused(org, "MT revoked", late, org.signatures(late, org.ca_keys[:2]))
    other = org.record(mt=1, nonce=0)  # other MTs are not affected
    org.ledger.submit(other, org.signatures(other, org.ca_keys[1:]), org.mts[1])
    report = verify_ledger(org.ledger)
    assert (report.ok, report.failures) == (2, [])
    assert report.before_revocation == [(1, org.mts[0].address)]
    assert [r.mt for r in report.revocations] == [org.mts[0].address]
    with pytest.raises(RevertError, match="MT already revoked"):
        governance.propose_revocation(org.ledger, org.mts[0].address, org.ca_keys[1])


def test_governance_refusals_name_their_reason(org: Consortium) -> None:
    keys, lg = org.ca_keys, org.ledger
    addresses = [x.address for x in keys]
    with pytest.raises(RevertError, match="only a CA of the current set"):
        governance.propose_revocation(lg, org.mts[1].address, org.mts[0])
    with pytest.raises(ChainsenseError, match=r"threshold: must be in 1\.\.3"):
        governance.propose_ca_set(lg, addresses, 4, keys[0])
    with pytest.raises(ChainsenseError, match=r"threshold: must be in 1\.\.3"):
        governance.propose_ca_set(lg, addresses, 0, keys[0])
    with pytest.raises(ChainsenseError, match="appears twice"):
        governance.propose_ca_set(lg, [addresses[0], addresses[0]], 1, keys[0])
    # the contract's own checks, for a client that skips the Python ones
    for cas, k, reason in [
        (addresses, 4, "threshold above the number of CAs"),
        (addresses, 0, "threshold must be at least 1"),
        (addresses[::-1], 2, "distinct and in increasing order"),
        ([], 1, "CA set is empty"),
    ]:
        with pytest.raises(RevertError, match=reason):
            lg.chain.transact(keys[0], to=lg.address, data=lg.encode("propose_ca_set", cas, k))
    with pytest.raises(RevertError, match="no such proposal"):
        governance.approve(lg, "0x" + "ab" * 32, keys[0])
    with pytest.raises(ChainsenseError, match="proposal: must be 0x"):
        governance.approve(lg, "0x12", keys[0])
    step = governance.propose_revocation(lg, org.mts[1].address, keys[0])
    with pytest.raises(RevertError, match="proposal exists"):
        governance.propose_revocation(lg, org.mts[1].address, keys[1])
    with pytest.raises(RevertError, match="only a CA of the current set"):
        governance.approve(lg, step.proposal, org.mts[0])


def test_rotating_an_organisations_ca_key_retires_the_old_key(org: Consortium) -> None:
    keys = org.ca_keys
    new = KeyPair.derive("org", 9, "ca")
    org.chain.fund(new.address, 10**18)
    before = org.record(nonce=0)
    org.ledger.submit(before, org.signatures(before, keys[:2]), org.mts[0])
    stale = governance.propose_revocation(org.ledger, org.mts[1].address, keys[0])
    rotated = [new.address, keys[1].address, keys[2].address]
    step = governance.propose_ca_set(org.ledger, rotated, 2, keys[0])
    assert not step.executed
    assert governance.approve(org.ledger, step.proposal, keys[1]).executed
    assert set(org.ledger.ca_set().cas) == set(rotated)
    # the old key's signature no longer counts, the new one does
    rec = org.record(nonce=1)
    pair = sorted([keys[0], keys[1]], key=lambda x: int(x.address, 16))
    _refused(org, "bad CA signature", rec, org.signatures(rec, pair))
    pair = sorted([new, keys[1]], key=lambda x: int(x.address, 16))
    org.ledger.submit(rec, org.signatures(rec, pair), org.mts[0])
    # the retired key can no longer propose or approve; proposals of the old set are stale
    with pytest.raises(RevertError, match="only a CA of the current set"):
        governance.propose_revocation(org.ledger, org.mts[1].address, keys[0])
    with pytest.raises(RevertError, match="stale"):
        governance.approve(org.ledger, stale.proposal, keys[2])
    report = verify_ledger(org.ledger)
    assert (report.ok, report.failures) == (2, []), "the record before the rotation stays valid"
    listed = governance.proposals(org.ledger)
    assert [(p.kind, p.executed, p.stale) for p in listed] == [
        ("revoke MT", False, True),
        ("CA set", True, False),
    ]


def test_lowering_k_then_removing_a_ca(org: Consortium) -> None:
    """k <= n is kept at every step: removing a CA from a 3-of-3 set needs k lowered with it."""
    keys = org.ca_keys
    addresses = [x.address for x in keys]
    with pytest.raises(ChainsenseError, match=r"threshold: must be in 1\.\.2"):
        governance.propose_ca_set(org.ledger, addresses[:2], 3, keys[0])
    step = governance.propose_ca_set(org.ledger, addresses[:2], 1, keys[0])
    governance.approve(org.ledger, step.proposal, keys[2])
    assert org.ledger.ca_set() == CASet(tuple(addresses[:2]), 1)
    rec = org.record(nonce=0)
    org.ledger.submit(rec, org.signatures(rec, [keys[1]]), org.mts[0])
    assert verify_ledger(org.ledger).ok == 1


def test_batch_entries_of_a_revoked_mt_are_marked_or_refused_by_the_verifier(
    org: Consortium, tmp_path: Path
) -> None:
    """The contract cannot see inside a root: the verifier marks the entries of an MT revoked
    after the anchor and fails those anchored after its revocation."""
    quorum = CAQuorum(org.cas, 2, org.ledger.domain, org.ledger.ca_set().cas)
    mt = org.mts[0]

    def items(first: int) -> list[tuple[Record, bytes]]:
        recs = [org.record(nonce=first + i, slot=i) for i in range(4)]
        return [(r, mt.sign_digest(r.digest(org.ledger.domain))) for r in recs]

    early = submit_batch(org.ledger, quorum, mt, tmp_path / "a.json", lambda: items(0)).bundle
    step = governance.propose_revocation(org.ledger, mt.address, org.ca_keys[0])
    governance.approve(org.ledger, step.proposal, org.ca_keys[1])
    late = submit_batch(org.ledger, quorum, mt, tmp_path / "b.json", lambda: items(10)).bundle
    assert bundle_revocations(org.ledger, early) == BundleRevocations((), (0, 1, 2, 3))
    assert bundle_revocations(org.ledger, late) == BundleRevocations((0, 1, 2, 3), ())
    quorum.close()


def test_the_submit_gas_limit_covers_k_3_with_a_revocation_on_the_ledger(tmp_path: Path) -> None:
    """The costliest record (every field at its maximum) with 3 signatures, once an MT has
    been revoked (the sender's revocation word is then read): within the limit the client sets."""
    org = make_consortium(tmp_path, n=3, k=3)
    step = governance.propose_revocation(org.ledger, org.mts[1].address, org.ca_keys[0])
    for key in org.ca_keys[1:]:
        step = governance.approve(org.ledger, step.proposal, key)
    assert step.executed
    top = {"poi": 2**32 - 1, "slot": 2**32 - 1, "reading": 2**64 - 1, "x": 2**64 - 1}
    rec = org.record(nonce=2**64 - 1, y=2**64 - 1, **top)
    used = org.ledger.submit(rec, org.signatures(rec, org.ca_keys), org.mts[0]).gas_used
    assert used <= SUBMIT_GAS + 2 * SUBMIT_GAS_PER_SIGNATURE, used
    assert used <= 80_000, used
