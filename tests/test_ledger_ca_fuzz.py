"""Property-based fuzzing of the CA: its HTTP API from its own OpenAPI schema (schemathesis),
and hypothesis-generated records against the CA core and the off-chain checks.

Properties: no 5xx and no crash for any request, valid or not; a refused request changes
nothing in the CA's database; whatever the CA countersigns (one record or a batch), the
off-chain verification (signature recovery, Merkle proofs under the certified root) accepts.
The fast suite runs a bounded number of examples; ``-m slow`` runs a deeper profile.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from chainsense.chain.keys import KeyPair, recover
from chainsense.ledger.ca import CAError, CertificateAuthority
from chainsense.ledger.ca_api import build_app
from chainsense.ledger.merkle import verify
from chainsense.ledger.records import UINT32_MAX, UINT64_MAX, Domain, Record, batch_struct_hash

DOMAIN = Domain(31337, "0x" + "42" * 20)
CA_KEY = KeyPair.derive("ca-fuzz", 0, "ca")
MTS = [KeyPair.derive("ca-fuzz", i) for i in range(3)]
FAST = 25  # examples per operation and generation mode in the fast suite
DEEP = 350  # ... under -m slow (500 took 81 s + 78 s of a CI that must stay under 30 min)


def _snapshot(db: Path) -> str:
    """Digest of every row of every table (a second connection sees what is committed)."""
    con = sqlite3.connect(db)
    try:
        h = hashlib.sha256()
        for table in ("mts", "countersigned", "batches", "meta"):
            for row in con.execute(f"SELECT * FROM {table} ORDER BY 1"):
                h.update(repr(row).encode())
        return h.hexdigest()
    finally:
        con.close()


@pytest.fixture(scope="module")
def ca_db(tmp_path_factory) -> Iterator[tuple[CertificateAuthority, Path]]:
    db = tmp_path_factory.mktemp("fuzz") / "ca.db"
    ca = CertificateAuthority(CA_KEY, db, DOMAIN)
    ca.register(MTS[0].address, {"kind": "uav"})  # known MTs, so that checks go deeper
    ca.register(MTS[1].address)
    yield ca, db
    ca.close()


def _fuzz_api(ca_db, mode: GenerationMode, max_examples: int) -> None:
    """Requests generated from the CA's own OpenAPI schema, sent in process over ASGI.

    (schemathesis's pytest loader ``from_fixture`` reads a private attribute that pytest 9
    removed, so the strategies are driven by hypothesis directly.)"""
    ca, db = ca_db
    api = schemathesis.openapi.from_asgi("/openapi.json", build_app(ca))
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) == 6

    for operation in operations:  # each operation gets its own examples
        if mode is GenerationMode.NEGATIVE and operation.method.upper() == "GET":
            continue  # nothing to get wrong: /ca has no input, any string is an {address}

        @settings(
            max_examples=max_examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy(mode))
        def run(case) -> None:
            before = _snapshot(db)
            response = case.call()
            case.validate_response(response, checks=[not_a_server_error])
            if response.status_code >= 400:
                assert _snapshot(db) == before, (response.status_code, response.text[:300])

        run()


@pytest.mark.parametrize("mode", list(GenerationMode))
def test_ca_api_fuzz(ca_db, mode: GenerationMode) -> None:
    _fuzz_api(ca_db, mode, FAST)


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(GenerationMode))
def test_ca_api_fuzz_deep(ca_db, mode: GenerationMode) -> None:
    _fuzz_api(ca_db, mode, DEEP)


# ------------------------------------------- hostile bodies the OpenAPI schema cannot express

_HUGE_INT = object()  # written as a 5000-digit literal by _dumps


def _dumps(value) -> str:
    """JSON text as an attacker may write it: lone surrogates escaped, NaN/Infinity literals,
    5000-digit integers (none of which json.dumps produces)."""
    if value is _HUGE_INT:
        return "7" * 5000
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, str):
        return (
            '"'
            + "".join(
                c if " " <= c < "\x7f" and c not in '"\\' else f"\\u{ord(c):04x}" for c in value
            )
            + '"'
        )
    if isinstance(value, list):
        return "[" + ", ".join(_dumps(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(_dumps(k) + ": " + _dumps(v) for k, v in value.items()) + "}"
    return (
        "true"
        if value is True
        else "false"
        if value is False
        else "null"
        if value is None
        else repr(value)
    )


_text = st.text(st.characters(codec=None, categories=None), max_size=6)  # surrogates included
_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -1, _HUGE_INT]),
    st.floats(allow_nan=True, allow_infinity=True),
    _text,
    st.sampled_from(["\ud800", "0x", "0x" + "ab" * 20, "0x" + "zz" * 65]),
)
_json = st.recursive(
    _leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=12,
)


@st.composite
def _hostile_request(draw):
    """A valid-looking body for one endpoint with one value (or key) replaced."""
    mt = MTS[draw(st.integers(0, 2))]
    rec = Record(mt.address, 1, 2, 3, 4, 5, draw(st.integers(0, UINT64_MAX)))
    signed = {"record": rec.to_dict(), "signature": "0x" + mt.sign_digest(rec.digest(DOMAIN)).hex()}
    path, body = draw(
        st.sampled_from(
            [
                ("/countersign", signed),
                ("/countersign/batch", {"items": [signed], "submitter": mt.address}),
                ("/mts", {"address": mt.address, "metadata": {"kind": "uav"}}),
            ]
        )
    )
    body = json.loads(json.dumps(body))
    # walk to a random container inside the body and replace or add one entry
    node = body
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict | list) and child and draw(st.booleans()):
            node = child
            continue
        break
    if isinstance(node, dict) and draw(st.booleans()):
        node[draw(_text)] = draw(_json)  # an extra key
    else:
        node[key] = draw(_json)
    return path, _dumps(body)


def _fuzz_hostile(ca_db, max_examples: int) -> None:
    ca, db = ca_db
    app = build_app(ca)

    async def post(path: str, content: bytes) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ca") as client:
            return await client.post(
                path, content=content, headers={"content-type": "application/json"}
            )

    @settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(request=_hostile_request())
    def run(request) -> None:
        path, text = request
        before = _snapshot(db)
        response = asyncio.run(post(path, text.encode("utf-8", "surrogatepass")))
        assert response.status_code < 500, (path, text[:300], response.text[:300])
        answer = response.json()  # always JSON, also when refused
        if response.status_code >= 400:
            assert isinstance(answer["field"], str) and answer["detail"], answer
            assert _snapshot(db) == before, (response.status_code, response.text[:300])

    run()


def test_ca_api_hostile_bodies(ca_db) -> None:
    _fuzz_hostile(ca_db, 150)


@pytest.mark.slow
def test_ca_api_hostile_bodies_deep(ca_db) -> None:
    _fuzz_hostile(ca_db, 2000)  # 3000 took 43 s


# ------------------------------------------------------- records against the CA core, off chain

fields = st.fixed_dictionaries(
    {
        "poi": st.integers(0, UINT32_MAX),
        "slot": st.integers(0, UINT32_MAX),
        "reading": st.integers(0, UINT64_MAX),
        "x": st.integers(0, UINT64_MAX),
        "y": st.integers(0, UINT64_MAX),
    }
)
# nonce steps, so that nonces increase per MT and cross 2**63 (stored as BLOBs from there)
steps = st.lists(
    st.tuples(st.integers(0, 2), fields, st.integers(1, 2**62)), min_size=1, max_size=8
)


def _run_records(tmp_path_factory, start: int, plan, batch: bool) -> None:
    db = tmp_path_factory.mktemp("rec") / "ca.db"
    ca = CertificateAuthority(CA_KEY, db, DOMAIN)
    try:
        for key in MTS[:2]:
            ca.register(key.address)
        nonce = dict.fromkeys(range(3), start)
        items = []
        for mt, fs, step in plan:
            nonce[mt] = min(nonce[mt] + step, UINT64_MAX)
            rec = Record(MTS[mt].address, nonce=nonce[mt], **fs)
            items.append((rec, MTS[mt].sign_digest(rec.digest(DOMAIN))))
        if batch:
            _check_batch(ca, db, items)
        else:
            _check_single(ca, db, items)
    finally:
        ca.close()


def _check_single(ca: CertificateAuthority, db: Path, items) -> None:
    last: dict[str, int] = {}
    accepted: dict[str, tuple[Record, bytes]] = {}
    for rec, sig in items:
        before = _snapshot(db)
        fresh = rec.mt != MTS[2].address and rec.nonce > last.get(rec.mt, -1)
        # an identical re-send of the last record countersigned is a retry, answered again (a
        # nonce held at UINT64_MAX with the same fields makes one)
        retry = rec.mt in accepted and accepted[rec.mt][0] == rec
        try:
            cs = ca.countersign(rec, sig)
        except CAError as exc:
            assert not fresh and not retry, exc
            assert exc.code == ("unknown_mt" if rec.mt == MTS[2].address else "stale_nonce")
            assert _snapshot(db) == before
            continue
        if retry:
            assert cs.ca_signature == accepted[rec.mt][1]
            continue
        assert fresh
        last[rec.mt] = rec.nonce
        accepted[rec.mt] = (rec, cs.ca_signature)
        # what the CA accepts, the off-chain check accepts: digest and countersignature
        assert cs.digest == rec.digest(DOMAIN)
        assert recover(cs.digest, cs.ca_signature) == CA_KEY.address
        assert ca.get(rec.mt).last_nonce == rec.nonce
        assert ca.countersign(rec, sig).ca_signature == cs.ca_signature  # retry


def _check_batch(ca: CertificateAuthority, db: Path, items) -> None:
    before = _snapshot(db)
    known = all(r.mt != MTS[2].address for r, _ in items)
    increasing = all(
        a.nonce < b.nonce
        for i, (a, _) in enumerate(items)
        for b, _ in items[i + 1 :]
        if a.mt == b.mt
    )
    submitter = MTS[0].address
    try:
        cert = ca.countersign_batch(items, submitter)
    except CAError as exc:
        assert not (known and increasing), exc
        assert _snapshot(db) == before
        return
    assert known and increasing
    digest = DOMAIN.digest(batch_struct_hash(cert.root, cert.size, submitter))
    assert recover(digest, cert.ca_signature) == CA_KEY.address
    for i, (rec, _) in enumerate(items):
        assert verify(cert.root, rec.digest(DOMAIN), cert.proof(i))
        assert ca.get(rec.mt).last_nonce >= rec.nonce


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(start=st.sampled_from([-1, 2**63 - 3, UINT64_MAX - 2**62]), plan=steps, batch=st.booleans())
def test_what_the_ca_accepts_verifies_off_chain(tmp_path_factory, start, plan, batch) -> None:
    _run_records(tmp_path_factory, start, plan, batch)


def test_the_same_record_at_the_highest_nonce_is_a_retry_and_a_new_one_is_stale(
    tmp_path_factory,
) -> None:
    """Found by the deep run: nonces held at UINT64_MAX give the same record twice, which the
    CA answers as a retry; a different record at that nonce is refused as stale."""
    zeros = {"poi": 0, "slot": 0, "reading": 0, "x": 0, "y": 0}
    start = UINT64_MAX - 2**62
    same = [(0, zeros, 2**62), (0, zeros, 2**62)]
    _run_records(tmp_path_factory, start, same, False)
    other = [(0, zeros, 2**62), (0, {**zeros, "reading": 1}, 2**62)]
    _run_records(tmp_path_factory, start, other, False)


@pytest.mark.slow
@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(start=st.sampled_from([-1, 2**63 - 3, UINT64_MAX - 2**62]), plan=steps, batch=st.booleans())
def test_what_the_ca_accepts_verifies_off_chain_deep(tmp_path_factory, start, plan, batch) -> None:
    _run_records(tmp_path_factory, start, plan, batch)
