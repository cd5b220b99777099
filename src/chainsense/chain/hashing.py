"""keccak-256, the hash of Ethereum (EIP-712 digests, addresses, Merkle nodes).

safe-pysha3's C implementation costs ~0.7 us per call against ~5 us for eth-hash's
pycryptodome backend; with several hashes per record this is a large share of the batch
pipeline's time.
"""

from __future__ import annotations

import sha3


def keccak(data: bytes) -> bytes:
    """keccak-256 digest of ``data`` (Ethereum's hash, not FIPS SHA3-256)."""
    return sha3.keccak_256(data).digest()
