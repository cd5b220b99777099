"""secp256k1 key pairs of MTs, the CA and funders: generate, derive, store, sign, recover.

Signing and recovery go straight to coincurve (libsecp256k1) on 32-byte digests: the
eth_account path does the same maths ~10x slower, which matters for the CA's verification
rate. Signatures are Ethereum-style 65 bytes ``r || s || v`` with ``v`` in {27, 28} and low s.
"""

from __future__ import annotations

import json
import os
import reprlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import coincurve
from eth_account import Account
from eth_utils import is_hex_address, to_checksum_address

from chainsense.chain.hashing import keccak
from chainsense.errors import ChainsenseError

T = TypeVar("T")
R = TypeVar("R")

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class SignatureError(ChainsenseError):
    """A signature is malformed or does not recover to the expected signer."""


def checksum(address: object, what: str = "address") -> str:
    """EIP-55 form of a 0x-prefixed 20-byte hex address; raises naming ``what`` when invalid."""
    # only strings of the right length reach the cache: it must not keep huge hostile strings
    ok = isinstance(address, str) and len(address) == 42
    result = _checksum(address) if ok else None
    if result is None:
        shown = reprlib.repr(address)  # a 30 MB string is not echoed back whole
        raise ChainsenseError(f"{what}: not a 0x-prefixed 20-byte hex address: {shown}")
    return result


@lru_cache(maxsize=65536)
def _checksum(address: str) -> str | None:
    if not address.startswith("0x") or not is_hex_address(address):
        return None
    return to_checksum_address(address)


def _address_of_public(public: coincurve.PublicKey) -> bytes:
    return keccak(public.format(compressed=False)[1:])[12:]


@dataclass(frozen=True)
class KeyPair:
    """A private key and its Ethereum address (checksummed)."""

    private_key: bytes = field(repr=False)
    address: str = ""

    def __post_init__(self) -> None:
        if len(self.private_key) != 32 or not 0 < int.from_bytes(self.private_key) < SECP256K1_N:
            raise ChainsenseError("private key: must be 32 bytes in (0, n)")
        pk = coincurve.PrivateKey(self.private_key)
        address = to_checksum_address(_address_of_public(pk.public_key))
        object.__setattr__(self, "address", address)
        object.__setattr__(self, "_signer", pk)

    @classmethod
    def generate(cls) -> KeyPair:
        """A fresh key from the OS random source (``eth_account.Account.create``)."""
        return cls(bytes(Account.create().key))

    @classmethod
    def derive(cls, seed: int | bytes | str, index: int, purpose: str = "mt") -> KeyPair:
        """Deterministic key number ``index`` for ``purpose`` from ``seed``.

        For simulations and tests that must be reproducible; never for real deployments.
        """
        material = f"chainsense/{purpose}/{seed!r}/{index}".encode()
        counter = 0
        while True:
            candidate = keccak(material + counter.to_bytes(4))
            if 0 < int.from_bytes(candidate) < SECP256K1_N:
                return cls(candidate)
            counter += 1  # pragma: no cover - probability ~2^-128

    @classmethod
    def from_hex(cls, text: str) -> KeyPair:
        raw = text.strip().removeprefix("0x")
        try:
            key = bytes.fromhex(raw)
        except ValueError as exc:
            raise ChainsenseError("private key: not hex") from exc
        return cls(key)

    @property
    def address_bytes(self) -> bytes:
        return bytes.fromhex(self.address[2:])

    def sign_digest(self, digest: bytes) -> bytes:
        """65-byte recoverable signature ``r || s || v`` (v = 27 + recovery id) of a digest."""
        if len(digest) != 32:
            raise SignatureError("digest: must be 32 bytes")
        sig = self._signer.sign_recoverable(digest, hasher=None)  # type: ignore[attr-defined]
        return sig[:64] + bytes((sig[64] + 27,))


def recover_bytes(digest: bytes, signature: bytes) -> bytes:
    """20-byte address that signed ``digest``; raises :class:`SignatureError` when malformed."""
    if len(signature) != 65:
        raise SignatureError(f"signature: must be 65 bytes, got {len(signature)}")
    v = signature[64]
    if v >= 27:
        v -= 27
    if v not in (0, 1):
        raise SignatureError(f"signature: bad recovery byte v={signature[64]}")
    s = int.from_bytes(signature[32:64])
    if not 0 < s <= SECP256K1_N // 2 or not 0 < int.from_bytes(signature[:32]) < SECP256K1_N:
        raise SignatureError("signature: r or s out of range (or non-canonical high s)")
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes((v,)), digest, hasher=None
        )
    except Exception as exc:  # coincurve raises plain Exception on invalid points
        raise SignatureError("signature: does not recover to a public key") from exc
    return _address_of_public(public)


def recover(digest: bytes, signature: bytes) -> str:
    """Checksummed address that signed ``digest``."""
    return to_checksum_address(recover_bytes(digest, signature))


def save_key(path: str | Path, key: KeyPair) -> Path:
    """Write the key as hex to a new file readable by the owner only (refuses to overwrite)."""
    p = Path(path)
    if p.exists():
        raise ChainsenseError(f"key file: {p} exists; refusing to overwrite a key")
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("0x" + key.private_key.hex() + "\n")
    return p


def load_key(path: str | Path, password: str = "") -> KeyPair:
    """Read a key file: hex private key, or a geth/web3 keystore JSON (with ``password``)."""
    p = Path(path)
    if not p.is_file():
        raise ChainsenseError(f"key file: not found: {p}")
    try:
        text = p.read_text().strip()
    except UnicodeDecodeError as exc:
        raise ChainsenseError(f"key file: {p.name} is neither hex nor a keystore") from exc
    if text.startswith("{"):
        try:
            return KeyPair(bytes(Account.decrypt(json.loads(text), password)))
        except (ValueError, KeyError, TypeError) as exc:
            raise ChainsenseError(f"key file: cannot decrypt keystore {p.name}: {exc}") from exc
    try:
        return KeyPair.from_hex(text)
    except ChainsenseError as exc:
        raise ChainsenseError(f"key file: {p.name}: {exc}") from exc


CRYPTO_THREADS = max(1, min(4, len(os.sched_getaffinity(0))))
"""Threads that sign and recover in :func:`in_threads`: libsecp256k1 runs without the GIL (cffi
releases it around each call), so a batch of signatures uses every core of the machine."""

_CHUNK = 256
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def in_threads(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[fn(x) for x in items]``, in chunks over :data:`CRYPTO_THREADS` threads (in order).
    Meant for signing and recovering; an exception in ``fn`` propagates."""
    if CRYPTO_THREADS == 1 or len(items) <= _CHUNK:
        return [fn(x) for x in items]
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(CRYPTO_THREADS, thread_name_prefix="secp256k1")
    chunks = [items[lo : lo + _CHUNK] for lo in range(0, len(items), _CHUNK)]
    out: list[R] = []
    for part in _pool.map(lambda chunk: [fn(x) for x in chunk], chunks):
        out.extend(part)
    return out
