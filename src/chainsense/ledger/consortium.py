"""The consortium's CA set as the client sees it: k countersignatures by distinct CAs.

The contract takes k 65-byte-equivalent signatures in increasing signer order (that order
proves them distinct without comparing pairs); the outbox, the bundles and the wire keep them
as one byte string, 65 bytes each, in that order. This module builds and checks that form off
chain, with the same rules as the contract, and validates a CA set before it is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chainsense.chain.errors import RevertError
from chainsense.chain.keys import SignatureError, checksum, recover
from chainsense.errors import ChainsenseError

MAX_CAS = 16
"""The contract's MAX_CAS and MAX_CA_SIGNATURES."""
SIGNATURE_BYTES = 65


@dataclass(frozen=True)
class CASet:
    """The CAs in office (by increasing address) and k."""

    cas: tuple[str, ...]
    threshold: int

    def check(self, digest: bytes, signatures: bytes) -> str | None:
        """Why ``signatures`` would not certify ``digest`` under this set, or None when they
        do: exactly k signatures by CAs of the set, in increasing signer order."""
        try:
            parts = split_signatures(signatures)
        except RevertError as exc:
            return exc.reason
        if len(parts) != self.threshold:
            return "wrong number of CA signatures"
        previous = 0
        for sig in parts:
            try:
                signer = recover(digest, sig)
            except SignatureError:
                return "bad CA signature"
            if signer not in self.cas:
                return "bad CA signature"
            if int(signer, 16) <= previous:
                return "CA signers must be distinct and in increasing order"
            previous = int(signer, 16)
        return None


def ca_set_arguments(ca_addresses: Sequence[str] | str, threshold: int) -> list[str]:
    """The CA set as the contract takes it (checksummed, by increasing address), refused by
    name before any transaction when it is empty, too large, repeats an address or when k is
    not in 1..n."""
    given = [ca_addresses] if isinstance(ca_addresses, str) else list(ca_addresses)
    cas = [checksum(a, f"ca_addresses[{i}]") for i, a in enumerate(given)]
    if not cas:
        raise ChainsenseError("ca_addresses: the CA set is empty")
    if len(cas) > MAX_CAS:
        raise ChainsenseError(f"ca_addresses: at most {MAX_CAS} CAs, got {len(cas)}")
    if len(set(cas)) != len(cas):
        raise ChainsenseError("ca_addresses: an address appears twice")
    if isinstance(threshold, bool) or not isinstance(threshold, int):
        raise ChainsenseError(f"threshold: must be an integer, got {threshold!r}")
    if not 1 <= threshold <= len(cas):
        raise ChainsenseError(f"threshold: must be in 1..{len(cas)} (the CAs), got {threshold}")
    return sorted(cas, key=lambda a: int(a, 16))


def split_signatures(blob: bytes) -> list[bytes]:
    """The 65-byte signatures of a concatenation (how the outbox and bundles keep k of them)."""
    if not blob or len(blob) % SIGNATURE_BYTES or len(blob) > MAX_CAS * SIGNATURE_BYTES:
        raise RevertError("CA signature must be 65 bytes")
    return [blob[i : i + SIGNATURE_BYTES] for i in range(0, len(blob), SIGNATURE_BYTES)]
