"""The certificate authority: core checks, and the HTTP service run for real under uvicorn."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from chainsense.chain.keys import KeyPair, recover, save_key
from chainsense.errors import ChainsenseError
from chainsense.ledger.ca import CAError, CertificateAuthority
from chainsense.ledger.ca_client import CAClient, CAUnavailableError
from chainsense.ledger.deployment import Deployment
from chainsense.ledger.records import Domain, Record
from test_ledger_support import free_port, wait_http

DOMAIN = Domain(31337, "0x" + "42" * 20)
CA_KEY = KeyPair.derive("ca-test", 0, "ca")
MT = KeyPair.derive("ca-test", 0)
OTHER = KeyPair.derive("ca-test", 1)


def _signed(nonce: int, key: KeyPair = MT, **kw: int) -> tuple[Record, bytes]:
    rec = Record(
        key.address, **({"poi": 1, "slot": 2, "reading": 3, "x": 4, "y": 5} | kw), nonce=nonce
    )
    return rec, key.sign_digest(rec.digest(DOMAIN))


@pytest.fixture
def ca(tmp_path) -> Iterator[CertificateAuthority]:
    authority = CertificateAuthority(CA_KEY, tmp_path / "ca.db", DOMAIN)
    authority.register(MT.address, {"kind": "uav"})
    yield authority
    authority.close()


def test_countersign_freshness_and_idempotence(ca: CertificateAuthority) -> None:
    rec, sig = _signed(0)
    first = ca.countersign(rec, sig)
    assert first.digest == rec.digest(DOMAIN)
    assert KeyPair
    from chainsense.chain.keys import recover

    assert recover(first.digest, first.ca_signature) == CA_KEY.address
    assert ca.countersign(rec, sig).ca_signature == first.ca_signature  # retry: same answer
    rec2, sig2 = _signed(0, poi=7)  # a different record with a used nonce: replay
    with pytest.raises(CAError, match=r"record\.nonce") as exc:
        ca.countersign(rec2, sig2)
    assert exc.value.code == "stale_nonce"
    ca.countersign(*_signed(5))  # gaps are fine, order is what matters
    with pytest.raises(CAError, match="not above the last countersigned nonce 5"):
        ca.countersign(*_signed(3))
    assert ca.get(MT.address).last_nonce == 5


def test_countersign_refusals_change_nothing(ca: CertificateAuthority) -> None:
    rec, sig = _signed(0)
    cases = [
        (_signed(0, OTHER), "unknown_mt"),
        ((rec, OTHER.sign_digest(rec.digest(DOMAIN))), "bad_signature"),
        ((rec, sig[:64] + b"\x09"), "bad_signature"),
        ((Record(**(rec.to_dict() | {"reading": 99})), sig), "bad_signature"),
        ((rec, MT.sign_digest(rec.digest(Domain(1, DOMAIN.contract)))), "bad_signature"),
    ]
    for (r, s), code in cases:
        with pytest.raises(CAError) as exc:
            ca.countersign(r, s)
        assert exc.value.code == code
    assert ca.get(MT.address).last_nonce == -1
    assert ca.get(OTHER.address) is None
    assert ca._db.execute("SELECT COUNT(*) FROM countersigned").fetchone()[0] == 0


def test_registry_persists_and_is_bound_to_its_domain(tmp_path) -> None:
    db = tmp_path / "ca.db"
    a = CertificateAuthority(CA_KEY, db, DOMAIN)
    a.register(MT.address)
    a.countersign(*_signed(4))
    a.close()
    b = CertificateAuthority(CA_KEY, db, DOMAIN)
    assert b.get(MT.address).last_nonce == 4
    b.close()
    with pytest.raises(ChainsenseError, match="belongs to"):
        CertificateAuthority(CA_KEY, db, Domain(1, DOMAIN.contract))
    with pytest.raises(ChainsenseError, match="belongs to"):
        CertificateAuthority(KeyPair.derive("x", 0), db, DOMAIN)


def test_register_validates(ca: CertificateAuthority) -> None:
    with pytest.raises(CAError, match="address"):
        ca.register("0x1234")
    with pytest.raises(CAError, match="metadata"):
        ca.register(OTHER.address, ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(CAError, match="metadata"):
        ca.register(OTHER.address, {"blob": "x" * 5000})
    assert ca.mt_count() == 1


# ------------------------------------------------------------------ the HTTP service, for real


@pytest.fixture
def service(tmp_path) -> Iterator[tuple[str, str]]:
    """`chainsense ca serve` in a subprocess on a free loopback port, with an admin token."""
    key_file = save_key(tmp_path / "ca.key", CA_KEY)
    dep = Deployment(
        DOMAIN.chain_id, DOMAIN.contract, (CA_KEY.address,), 1, 1, rpc=("http://127.0.0.1:1",)
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
            str(tmp_path / "ca.db"),
            "--deployment",
            str(tmp_path / "ledger.json"),
            "--port",
            str(port),
            "--admin-token-file",
            str(tmp_path / "token"),
            "--offline",  # the embedded chain lives in this process only
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/ca")
        yield url, "s3cret"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_http_roundtrip(service) -> None:
    url, token = service
    client = CAClient(url, admin_token=token)
    assert client.info() == {
        "address": CA_KEY.address,
        "chain_id": DOMAIN.chain_id,
        "contract": DOMAIN.contract,
    }
    assert client.register(MT.address, {"kind": "uav"})["last_nonce"] == -1
    rec, sig = _signed(0)
    cs = client.countersign(rec, sig)
    assert recover(rec.digest(DOMAIN), cs.ca_signature) == CA_KEY.address
    assert client.get(MT.address)["last_nonce"] == 0
    assert client.get(OTHER.address) is None
    assert (client.last_nonce(MT.address), client.last_nonce(OTHER.address)) == (0, None)
    items = [_signed(n) for n in (1, 2, 3)]
    cert = client.countersign_batch(items, MT.address)
    assert cert.size == 3 and client.get(MT.address)["last_nonce"] == 3


def test_http_rejects_bad_input_with_named_fields(service) -> None:
    url, token = service
    auth = {"authorization": f"Bearer {token}"}
    http = httpx.Client(base_url=url, timeout=10)
    r = http.post("/mts", json={"address": MT.address})
    assert r.status_code == 401 and r.json()["field"] == "authorization"
    assert http.post("/mts", json={"address": MT.address}, headers=auth).status_code == 201
    rec, sig = _signed(0)
    good = {"record": rec.to_dict(), "signature": "0x" + sig.hex()}
    cases = [
        (b"{not json", 400, "body"),
        (b"[1, 2]", 400, "body"),
        ({"record": rec.to_dict()}, 400, "signature"),
        (good | {"signature": "0xzz" + sig.hex()[2:]}, 400, "signature"),
        (good | {"signature": sig.hex()}, 400, "signature"),
        (good | {"signature": "0x" + sig.hex()[:-2]}, 400, "signature"),
        (good | {"record": rec.to_dict() | {"mt": "0x12"}}, 400, "record.mt"),
        (good | {"record": rec.to_dict() | {"poi": -1}}, 400, "record.poi"),
        (good | {"record": rec.to_dict() | {"slot": "3"}}, 400, "record.slot"),
        (good | {"record": {k: v for k, v in rec.to_dict().items() if k != "y"}}, 400, "record.y"),
        (
            {
                "record": _signed(0, OTHER)[0].to_dict(),
                "signature": "0x" + _signed(0, OTHER)[1].hex(),
            },
            404,
            "record.mt",
        ),
        (
            good | {"signature": "0x" + OTHER.sign_digest(rec.digest(DOMAIN)).hex()},
            401,
            "signature",
        ),
    ]
    for body, status, field in cases:
        if isinstance(body, bytes):
            r = http.post(
                "/countersign", content=body, headers={"content-type": "application/json"}
            )
        else:
            r = http.post("/countersign", json=body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["field"] == field, r.json()
        assert r.json()["detail"]
    assert http.get(f"/mts/{MT.address}").json()["last_nonce"] == -1  # nothing changed
    assert http.post("/countersign", json=good).status_code == 200
    stale = _signed(0, poi=9)
    r = http.post(
        "/countersign", json={"record": stale[0].to_dict(), "signature": "0x" + stale[1].hex()}
    )
    assert r.status_code == 409 and r.json()["error"] == "stale_nonce"
    assert http.get("/mts/0xnothex").status_code == 400
    r = http.post("/countersign/batch", json={"items": [], "submitter": MT.address})
    assert r.status_code == 400 and r.json()["field"] == "items"
    r = http.post(
        "/countersign/batch",
        json={"items": [good | {"signature": "0x00"}], "submitter": MT.address},
    )
    assert r.status_code == 400 and r.json()["field"] == "items[0].signature"


def test_client_reports_unreachable_service() -> None:
    client = CAClient(f"http://127.0.0.1:{free_port()}", timeout=1)
    with pytest.raises(CAUnavailableError, match="cannot reach"):
        client.info()


@pytest.mark.parametrize("answer", ["7", True, 2**64, -2, None, 1.5])
def test_client_last_nonce_refuses_an_answer_out_of_range(answer: object) -> None:
    """The MT renumbers its records from this answer: anything but -1..2**64-1 is an error."""
    client = CAClient("http://ca.invalid")
    client._http = httpx.Client(
        base_url="http://ca.invalid",
        transport=httpx.MockTransport(
            lambda _req: httpx.Response(
                200, json={"address": MT.address, "metadata": {}, "last_nonce": answer}
            )
        ),
    )
    with pytest.raises(ChainsenseError, match="last_nonce"):
        client.last_nonce(MT.address)


def test_client_reports_a_non_json_answer_as_unavailable() -> None:
    """A server that is not the CA (here a proxy-like error page) is no CA decision: the MT
    keeps its records queued instead of crashing or rejecting them."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class BadGateway(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>502 Bad Gateway</html>"
            self.send_response(502)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), BadGateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = CAClient(f"http://127.0.0.1:{server.server_port}", timeout=5)
        with pytest.raises(CAUnavailableError, match="HTTP 502 without JSON"):
            client.info()
        client.close()
    finally:
        server.shutdown()
        server.server_close()


def test_http_deep_nesting_is_refused_and_the_ca_survives(service) -> None:
    """One unauthenticated 200 KB body of nested arrays used to kill the CA with SIGSEGV
    (json.loads on untrusted input under py_ecc's recursion limit of 100000)."""
    url, token = service
    auth = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    http = httpx.Client(base_url=url, timeout=60)
    deep = b"[" * 100_000 + b"]" * 100_000
    cases = [
        ("/countersign", deep),
        ("/countersign", b'{"record": ' + deep + b', "signature": "0x00"}'),
        ("/countersign", b"[" * 200_000),
        ("/countersign/batch", b'{"submitter": "0x00", "items": [' + deep + b"]}"),
        ("/mts", b'{"address": "' + MT.address.encode() + b'", "metadata": {"a": ' + deep + b"}}"),
    ]
    for path, body in cases:
        r = http.post(path, content=body, headers=auth)
        assert r.status_code == 400, (path, r.text)
        assert r.json()["error"] == "bad_json" and r.json()["field"] == "body"
    assert http.get("/ca").status_code == 200  # still alive
    assert http.get(f"/mts/{MT.address}").status_code == 404  # and nothing was registered


def test_http_huge_integers_are_a_400_naming_the_field(service) -> None:
    """A 5000-digit integer used to answer 500 (Python's int-digit limit raised a bare
    ValueError inside json.loads); any malformed body is a 400 naming the field."""
    url, token = service
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    http = httpx.Client(base_url=url, timeout=30)
    assert http.post("/mts", json={"address": MT.address}, headers=headers).status_code == 201
    rec, sig = _signed(0)
    good = {"record": rec.to_dict(), "signature": "0x" + sig.hex()}
    item = {"record": rec.to_dict(), "signature": "0x" + sig.hex()}
    huge = "1" * 5000
    cases = [
        ("/countersign", good | {"record": rec.to_dict() | {"nonce": "HUGE"}}, "record.nonce"),
        ("/countersign", good | {"record": rec.to_dict() | {"x": "-HUGE"}}, "record.x"),
        ("/countersign", good | {"signature": "HUGE"}, "signature"),
        ("/countersign", good | {"record": "HUGE"}, "record"),
        (
            "/countersign/batch",
            {
                "submitter": MT.address,
                "items": [item | {"record": rec.to_dict() | {"poi": "HUGE"}}],
            },
            "items[0].record.poi",
        ),
        ("/countersign/batch", {"submitter": "HUGE", "items": [item]}, "submitter"),
        ("/mts", {"address": "HUGE"}, "address"),
    ]
    for path, body, field in cases:
        text = json.dumps(body).replace('"HUGE"', huge).replace('"-HUGE"', "-" + huge)
        r = http.post(path, content=text.encode(), headers=headers)
        assert r.status_code == 400, (path, field, r.text[:300])
        assert r.json()["field"] == field, r.json()
        if "record." in field:
            assert "<integer of 5000 digits>" in r.json()["detail"], r.json()
    assert http.get(f"/mts/{MT.address}").json()["last_nonce"] == -1  # nothing changed


def test_nonces_cover_the_full_uint64_range(tmp_path) -> None:
    """SQLite stores a signed 64-bit integer: a nonce of 2**63 or more used to raise
    OverflowError (a 500), and an MT whose last nonce was 2**63 - 1 was stuck for good."""
    db = tmp_path / "ca.db"
    ca = CertificateAuthority(CA_KEY, db, DOMAIN)
    ca.register(MT.address)
    ca.register(OTHER.address)
    ca.countersign(*_signed(2**63 - 1))
    first = ca.countersign(*_signed(2**63))
    assert ca.get(MT.address).last_nonce == 2**63
    assert ca.countersign(*_signed(2**63)).ca_signature == first.ca_signature  # retry
    for stale in (_signed(2**63, poi=9), _signed(2**63 - 1, poi=9), _signed(5)):
        with pytest.raises(CAError) as exc:
            ca.countersign(*stale)
        assert exc.value.code == "stale_nonce"
    items = [_signed(2**63 + 1), _signed(2**64 - 2), _signed(2**63, OTHER), _signed(3, OTHER)]
    with pytest.raises(CAError, match=r"items\[3\]\.record\.nonce") as exc:
        ca.countersign_batch(items, MT.address)
    assert exc.value.code == "stale_nonce"
    assert ca.get(MT.address).last_nonce == 2**63 and ca.get(OTHER.address).last_nonce == -1
    cert = ca.countersign_batch(items[:3], MT.address)
    assert ca.countersign_batch(items[:3], MT.address).ca_signature == cert.ca_signature
    assert ca.get(MT.address).last_nonce == 2**64 - 2
    assert ca.get(OTHER.address).last_nonce == 2**63
    with pytest.raises(
        CAError, match="not above the last countersigned nonce 18446744073709551614"
    ):
        ca.countersign(*_signed(2**63 + 5))
    ca.countersign(*_signed(2**64 - 1))
    ca.close()
    again = CertificateAuthority(CA_KEY, db, DOMAIN)  # persisted, and still ordered
    assert again.get(MT.address).last_nonce == 2**64 - 1
    with pytest.raises(CAError) as exc:
        again.countersign(*_signed(2**64 - 1, poi=9))
    assert exc.value.code == "stale_nonce"
    stored = [n for (n,) in again._db.execute("SELECT nonce FROM countersigned ORDER BY nonce")]
    assert len(stored) == 6 and stored == sorted(stored, key=lambda v: (isinstance(v, bytes), v))
    max_mt = again._db.execute(
        "SELECT MAX(nonce) FROM countersigned WHERE mt = ?", (MT.address,)
    ).fetchone()[0]
    assert max_mt == (2**64 - 1).to_bytes(8, "big")  # SQL order is numeric order
    again.close()


def test_a_registry_written_before_the_uint64_fix_keeps_working(tmp_path) -> None:
    """Registries written before nonces >= 2**63 were supported hold plain INTEGERs: they are
    read as they are, and the MT continues past 2**63 - 1."""
    import sqlite3

    db = tmp_path / "ca.db"
    CertificateAuthority(CA_KEY, db, DOMAIN).close()
    raw = sqlite3.connect(db)
    raw.execute(
        "INSERT INTO mts(address, metadata, registered_at, last_nonce) VALUES (?, '{}', 0, ?)",
        (MT.address, 2**63 - 2),
    )
    raw.execute(
        "INSERT INTO countersigned(digest, mt, nonce, signature) VALUES (?, ?, ?, ?)",
        (_signed(2**63 - 2)[0].digest(DOMAIN), MT.address, 2**63 - 2, b"\x01" * 65),
    )
    raw.commit()
    raw.close()
    ca = CertificateAuthority(CA_KEY, db, DOMAIN)
    assert ca.get(MT.address).last_nonce == 2**63 - 2
    with pytest.raises(CAError, match="not above the last countersigned nonce 9223372036854775806"):
        ca.countersign(*_signed(7))
    ca.countersign(*_signed(2**63 - 1))
    ca.countersign(*_signed(2**63))
    assert ca.get(MT.address).last_nonce == 2**63
    ca.close()


def test_http_accepts_nonces_above_2_63(service) -> None:
    url, token = service
    client = CAClient(url, admin_token=token)
    client.register(MT.address)
    for nonce in (2**63 - 1, 2**63, 2**64 - 1):
        rec, sig = _signed(nonce)
        assert recover(rec.digest(DOMAIN), client.countersign(rec, sig).ca_signature)
        assert client.get(MT.address)["last_nonce"] == nonce
    with pytest.raises(CAError) as exc:
        client.countersign(*_signed(2**64 - 1, poi=4))
    assert exc.value.code == "stale_nonce"


BAD_METADATA = [
    ({"s": "\ud800"}, "metadata.s"),
    ({"x": float("nan")}, "metadata.x"),
    ({"x": float("-inf")}, "metadata.x"),
    ({"a": {"b": [1, "ok", "\udfff"]}}, "metadata.a.b[2]"),
    ({"\ud800": 1}, "metadata"),
    ({1: 2}, "metadata"),
    ({"big": 2**300}, "metadata.big"),
    ({"deep": [[[[[[[[[1]]]]]]]]]}, "metadata.deep" + "[0]" * 7),
    ({"obj": object()}, "metadata.obj"),
]


@pytest.mark.parametrize(("metadata", "field"), BAD_METADATA)
def test_register_refuses_metadata_that_cannot_be_served(
    ca: CertificateAuthority, metadata: dict, field: str
) -> None:
    """A lone surrogate or NaN used to be saved, and then every read of the MT answered 500
    (also after a restart): metadata is checked before anything is written."""
    with pytest.raises(CAError) as exc:
        ca.register(OTHER.address, metadata)
    assert exc.value.code == "bad_input" and exc.value.field == field
    with pytest.raises(CAError):
        ca.register(MT.address, metadata)  # a re-registration keeps the old metadata
    assert ca.get(OTHER.address) is None
    assert ca.get(MT.address).metadata == {"kind": "uav"}


def test_metadata_within_the_rules_round_trips(ca: CertificateAuthority) -> None:
    meta = {"name": "drône 7 ✈", "n": -(2**255), "f": 1.5e300, "l": [None, True, {"k": []}]}
    assert ca.register(OTHER.address, meta).metadata == meta
    assert ca.get(OTHER.address).metadata == meta


def test_metadata_saved_by_an_older_ca_is_still_served(service, tmp_path) -> None:
    """Registries written before the check may hold such metadata: it is shown as its stored
    text instead of failing every read of the MT."""
    import sqlite3

    url, token = service
    raw = sqlite3.connect(tmp_path / "ca.db")
    rows = [(MT.address, '{"s": "\\ud800"}'), (OTHER.address, '{"x": NaN}')]
    raw.executemany("INSERT INTO mts(address, metadata, registered_at) VALUES (?, ?, 0)", rows)
    raw.commit()
    raw.close()
    client = CAClient(url, admin_token=token)
    for address, text in rows:
        info = client.get(address)
        assert info["metadata"] == {"unreadable_metadata": text}
        assert info["last_nonce"] == -1
    rec, sig = _signed(0)
    client.countersign(rec, sig)  # the MT still works
    assert client.register(MT.address, {"ok": 1})["metadata"] == {"ok": 1}  # and can be fixed


def test_http_metadata_and_field_names_are_checked(service) -> None:
    url, token = service
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    http = httpx.Client(base_url=url, timeout=30)
    rec, sig = _signed(0)
    signature = json.dumps("0x" + sig.hex())
    record = json.dumps(rec.to_dict())[:-1] + ', "\\udc00": 1}'  # an unknown, unencodable key

    def mts(metadata: str) -> str:
        return '{"address": "' + MT.address + '", "metadata": ' + metadata + "}"

    cases = [
        ("/mts", mts('{"s": "\\ud800"}'), "metadata.s"),
        ("/mts", mts('{"x": NaN}'), "metadata.x"),
        ("/mts", mts('{"x": [Infinity]}'), "metadata.x[0]"),
        ("/mts", mts('{"n": ' + "9" * 5000 + "}"), "metadata.n"),
        ("/mts", '{"address": "' + MT.address + '", "\\ud800": 1}', "\ud800"),
        (
            "/countersign",
            '{"record": ' + record + ', "signature": ' + signature + "}",
            "record.\udc00",
        ),
    ]
    for path, body, field in cases:
        r = http.post(path, content=body.encode(), headers=headers)
        assert r.status_code == 400, (body[:200], r.text[:300])
        assert r.json()["field"] == field, r.json()
    assert http.get(f"/mts/{MT.address}").status_code == 404  # nothing was saved
