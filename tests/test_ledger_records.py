"""Records, EIP-712 hashing and keys: agreement with eth_account and hostile inputs."""

from __future__ import annotations

import json
import math

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsense.chain.keys import (
    SECP256K1_N,
    KeyPair,
    SignatureError,
    load_key,
    recover,
    save_key,
)
from chainsense.errors import ChainsenseError
from chainsense.ledger.records import (
    FIXED_SCALE,
    UINT64_MAX,
    Domain,
    Record,
    RecordError,
    record_from_event,
)

DOMAIN = Domain(1337, "0x" + "12" * 20)
MT = KeyPair.derive("records", 0)

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)


@settings(max_examples=60, deadline=None)
@given(poi=u32, slot=u32, reading=u64, x=u64, y=u64, nonce=u64, chain=st.integers(1, 2**63))
def test_digest_matches_eth_account_typed_data(poi, slot, reading, x, y, nonce, chain) -> None:
    domain = Domain(chain, "0x" + "ab" * 20)
    rec = Record(MT.address, poi, slot, reading, x, y, nonce)
    msg = encode_typed_data(full_message=rec.eip712_message(domain))
    assert keccak(b"\x19" + msg.version + msg.header + msg.body) == rec.digest(domain)


def test_signature_recovers_and_matches_eth_account() -> None:
    rec = Record(MT.address, 1, 2, 3, 4, 5, 6)
    digest = rec.digest(DOMAIN)
    sig = MT.sign_digest(digest)
    assert recover(digest, sig) == MT.address
    ours = Account._recover_hash(digest, signature=sig)
    assert ours == MT.address
    signed = Account.unsafe_sign_hash(digest, MT.private_key)
    assert recover(digest, bytes(signed.signature)) == MT.address


def test_digest_depends_on_every_field_and_domain() -> None:
    base = Record(MT.address, 1, 2, 3, 4, 5, 6)
    digests = {base.digest(DOMAIN), base.digest(Domain(1338, DOMAIN.contract))}
    digests.add(base.digest(Domain(1337, "0x" + "13" * 20)))
    for field, value in [("poi", 9), ("slot", 9), ("reading", 9), ("x", 9), ("y", 9), ("nonce", 9)]:
        digests.add(Record(**(base.to_dict() | {field: value})).digest(DOMAIN))
    digests.add(
        Record(**(base.to_dict() | {"mt": KeyPair.derive("records", 1).address})).digest(DOMAIN)
    )
    assert len(digests) == 10


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"poi": -1}, "record.poi"),
        ({"slot": 2**32}, "record.slot"),
        ({"reading": 2**64}, "record.reading"),
        ({"x": 1.5}, "record.x"),
        ({"y": True}, "record.y"),
        ({"nonce": "7"}, "record.nonce"),
        ({"mt": "0x1234"}, "record.mt"),
        ({"mt": "not an address"}, "record.mt"),
        ({"mt": ["0x" + "11" * 20]}, "record.mt"),
    ],
)
def test_record_rejects_bad_fields(change, field) -> None:
    data = Record(MT.address, 1, 2, 3, 4, 5, 6).to_dict() | change
    with pytest.raises(RecordError, match=field):
        Record.from_dict(data)


def test_record_from_dict_hostile_shapes() -> None:
    good = Record(MT.address, 1, 2, 3, 4, 5, 6).to_dict()
    with pytest.raises(RecordError, match="must be a JSON object"):
        Record.from_dict([good])
    with pytest.raises(RecordError, match=r"record.nonce: missing"):
        Record.from_dict({k: v for k, v in good.items() if k != "nonce"})
    with pytest.raises(RecordError, match=r"record.extra: unknown"):
        Record.from_dict(good | {"extra": 1})
    assert Record.from_dict(json.loads(json.dumps(good))) == Record(**good)


def test_record_from_event_fixed_point() -> None:
    rec = record_from_event(MT.address.lower(), 3, 7, 1.25, 0.5, 15.999999, 0)
    assert rec.mt == MT.address  # normalised to the checksum form
    assert (rec.reading, rec.x, rec.y) == (1_250_000, 500_000, 15_999_999)
    assert rec.reading_value == 1.25 and rec.position == (0.5, 15.999999)
    for bad in (math.nan, math.inf, -0.001, UINT64_MAX / FIXED_SCALE * 2):
        with pytest.raises(RecordError, match=r"record.reading"):
            record_from_event(MT.address, 3, 7, bad, 0, 0, 0)


def test_domain_rejects_bad_values() -> None:
    with pytest.raises(ChainsenseError, match="chain_id"):
        Domain(0, DOMAIN.contract)
    with pytest.raises(ChainsenseError, match="contract"):
        Domain(1, "0xzz")


def test_recover_rejects_malformed_signatures() -> None:
    digest = keccak(b"x")
    sig = MT.sign_digest(digest)
    with pytest.raises(SignatureError, match="65 bytes"):
        recover(digest, sig[:64])
    with pytest.raises(SignatureError, match="recovery byte"):
        recover(digest, sig[:64] + bytes([30]))
    high_s = (SECP256K1_N - int.from_bytes(sig[32:64])).to_bytes(32)
    flipped = sig[:32] + high_s + bytes([((sig[64] - 27) ^ 1) + 27])
    with pytest.raises(SignatureError, match="non-canonical"):
        recover(digest, flipped)
    with pytest.raises(SignatureError):
        recover(digest, bytes(65))
    # a valid signature over another digest recovers to someone else
    assert recover(keccak(b"y"), sig) != MT.address


def test_key_derivation_is_deterministic_and_distinct() -> None:
    assert KeyPair.derive(1, 0).address == KeyPair.derive(1, 0).address
    addrs = {KeyPair.derive(1, i).address for i in range(20)}
    addrs |= {KeyPair.derive(2, 0).address, KeyPair.derive(1, 0, "ca").address}
    assert len(addrs) == 22
    assert KeyPair.generate().address != KeyPair.generate().address


def test_key_files(tmp_path) -> None:
    key = KeyPair.generate()
    path = save_key(tmp_path / "k.key", key)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert load_key(path).address == key.address
    with pytest.raises(ChainsenseError, match="refusing to overwrite"):
        save_key(path, KeyPair.generate())
    keystore = tmp_path / "ks.json"
    keystore.write_text(json.dumps(Account.encrypt(key.private_key, "pw", iterations=2)))
    assert load_key(keystore, "pw").address == key.address
    with pytest.raises(ChainsenseError, match="cannot decrypt"):
        load_key(keystore, "wrong")
    (tmp_path / "bad.key").write_text("0xnothex")
    with pytest.raises(ChainsenseError, match=r"bad.key"):
        load_key(tmp_path / "bad.key")
    with pytest.raises(ChainsenseError, match="not found"):
        load_key(tmp_path / "missing.key")
    (tmp_path / "binary.key").write_bytes(b"\xff\xfe\x00 not text")
    with pytest.raises(ChainsenseError, match=r"key file: binary.key is neither hex"):
        load_key(tmp_path / "binary.key")
    with pytest.raises(ChainsenseError, match="private key"):
        KeyPair(bytes(32))
