"""The per-record wire formats: compact CA signatures and the packed record fields."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsense.chain.errors import RevertError
from chainsense.chain.keys import KeyPair, recover
from chainsense.ledger.record_log import from_compact, packed_fields, to_compact
from chainsense.ledger.records import Record

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
KEY = KeyPair.derive("record-log", 0)


@settings(max_examples=50, deadline=None)
@given(digest=st.binary(min_size=32, max_size=32))
def test_compact_signatures_round_trip_and_still_recover(digest: bytes) -> None:
    sig = KEY.sign_digest(digest)
    r, vs = to_compact(sig)
    assert len(r) == len(vs) == 32 and from_compact(r, vs) == sig
    assert recover(digest, from_compact(r, vs)) == KEY.address
    # v written as 0/1 (recovery id) means the same signature
    assert to_compact(sig[:64] + bytes((sig[64] - 27,))) == (r, vs)


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda s: s[:64], "65 bytes"),
        (lambda s: s + b"\x00", "65 bytes"),
        (lambda s: s[:64] + b"\x05", "bad signature v"),
        (lambda s: s[:64] + b"\x1d", "bad signature v"),
        # the malleated twin (n - s, other v) of a valid signature
        (
            lambda s: (
                s[:32]
                + (SECP256K1_N - int.from_bytes(s[32:64])).to_bytes(32)
                + bytes((55 - s[64],))
            ),
            "non-canonical signature s",
        ),
    ],
)
def test_signatures_the_compact_form_cannot_carry_are_refused(mangle, reason: str) -> None:
    with pytest.raises(RevertError, match=reason):
        to_compact(mangle(KEY.sign_digest(b"\x07" * 32)))


@given(
    poi=st.integers(0, 2**32 - 1),
    slot=st.integers(0, 2**32 - 1),
    reading=st.integers(0, 2**64 - 1),
    x=st.integers(0, 2**64 - 1),
    y=st.integers(0, 2**64 - 1),
)
def test_packed_fields_keep_every_field_apart(poi, slot, reading, x, y) -> None:
    word = packed_fields(Record(KEY.address, poi, slot, reading, x, y, 0))
    assert word < 2**256
    m64 = 2**64 - 1
    assert word >> 224 == poi and (word >> 192) & (2**32 - 1) == slot
    assert ((word >> 128) & m64, (word >> 64) & m64, word & m64) == (reading, x, y)
