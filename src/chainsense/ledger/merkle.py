"""Merkle trees over record digests for batch anchoring (OpenZeppelin-style sorted pairs).

Leaf = keccak(record digest) (a 32-byte preimage, so a leaf can never be mistaken for an
inner node, whose preimage is 64 bytes); inner node = keccak(min(a, b) || max(a, b)); an odd
node is carried up unchanged. Proofs are the sibling hashes from leaf to root, and verify the
same way off chain (:func:`verify`) and on chain (``verify_inclusion`` of the contract).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chainsense.chain.hashing import keccak
from chainsense.errors import ChainsenseError

MAX_DEPTH = 32  # the contract accepts proofs of at most 32 levels


def leaf_hash(digest: bytes) -> bytes:
    """The leaf of a record digest (one rule for building and for verifying)."""
    return keccak(digest)


def _parent(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


@dataclass(frozen=True)
class MerkleTree:
    """All levels of the tree over ``digests`` (level 0 = leaves)."""

    levels: tuple[tuple[bytes, ...], ...]

    @classmethod
    def build(cls, digests: Sequence[bytes]) -> MerkleTree:
        if not digests:
            raise ChainsenseError("batch: a Merkle tree needs at least one record")
        if any(len(d) != 32 for d in digests):
            raise ChainsenseError("batch: every leaf digest must be 32 bytes")
        level = [leaf_hash(d) for d in digests]
        levels = [tuple(level)]
        while len(level) > 1:
            nxt = [
                keccak(a + b) if a < b else keccak(b + a)
                for a, b in zip(level[0::2], level[1::2], strict=False)
            ]
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
            levels.append(tuple(level))
        if len(levels) - 1 > MAX_DEPTH:
            raise ChainsenseError(f"batch: more than 2^{MAX_DEPTH} records")
        return cls(tuple(levels))

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def proof(self, index: int) -> list[bytes]:
        """Sibling hashes for leaf ``index`` (bottom-up)."""
        if not 0 <= index < self.size:
            raise ChainsenseError(f"batch: leaf index {index} outside [0, {self.size})")
        out: list[bytes] = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                out.append(level[sibling])
            index //= 2
        return out

    def proofs(self) -> list[tuple[bytes, ...]]:
        """Every leaf's proof, equal to ``proof(i)`` for each i, built top down: a node's proof
        is its sibling followed by its parent's proof, so the whole set costs one step per
        node (2n) instead of one per leaf and level (n log n)."""
        above: list[tuple[bytes, ...]] = [()]
        for level in reversed(self.levels[:-1]):
            last = len(level) - 1
            mine = [(level[i ^ 1], *above[i >> 1]) for i in range(last)]
            # the last node: its left neighbour's sibling, or carried up alone when odd
            mine.append((level[last - 1], *above[last >> 1]) if last % 2 else above[last >> 1])
            above = mine
        return above


def verify(root: bytes, digest: bytes, proof: Sequence[bytes]) -> bool:
    """Off-chain inclusion check of a record digest under ``root``."""
    if len(proof) > MAX_DEPTH or any(len(p) != 32 for p in proof):
        return False
    node = leaf_hash(digest)
    for sibling in proof:
        node = _parent(node, sibling)
    return node == root
