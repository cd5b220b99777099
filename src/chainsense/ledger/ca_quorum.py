"""k countersignatures from n CA services: the MT's view of a consortium of CAs.

:class:`CAQuorum` asks every CA at once (one thread per CA, one request per group of records,
not one round trip per record per CA) and keeps, for each record, the first k answers, joined
in increasing signer order as the contract wants them. A CA that is down, slow to fail or
refuses is outvoted as long as k others answer: up to n - k CAs may be missing. It has the
interface of a single CA (``countersign_many``, ``countersign``, ``last_nonce``,
``countersign_batch``), so the terminal, the pipeline and batch submission use one CA or a
consortium alike; with k = n = 1 it is that one CA.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from chainsense.chain.keys import SignatureError, recover
from chainsense.errors import ChainsenseError
from chainsense.ledger.ca import BatchCertificate, Countersignature
from chainsense.ledger.ca_client import CAUnavailableError
from chainsense.ledger.ca_metadata import CAError
from chainsense.ledger.records import Domain, Record, batch_struct_hash

T = TypeVar("T")

# a refusal every CA gives for a record that is fine in itself: the terminal acts on it
# (renumbers) rather than rejecting the record, so it wins over other refusals
_RETRYABLE = "stale_nonce"


class CountersignService(Protocol):
    """One CA as the quorum uses it: the core object or the HTTP client."""

    def countersign_many(
        self, items: Sequence[tuple[Record, bytes]]
    ) -> tuple[list[Countersignature], CAError | None]: ...

    def last_nonce(self, address: str) -> int | None: ...

    def countersign_batch(
        self, items: Sequence[tuple[Record, bytes]], submitter: str
    ) -> BatchCertificate: ...


class CAQuorum:
    """k of the CA services ``members`` (see the module docstring)."""

    def __init__(
        self,
        members: Sequence[CountersignService],
        threshold: int,
        domain: Domain,
        signers: Sequence[str] = (),
    ) -> None:
        if not members:
            raise ChainsenseError("ca_urls: no CA to ask")
        if not 1 <= threshold <= len(members):
            raise ChainsenseError(
                f"threshold: must be in 1..{len(members)} (the CAs asked), got {threshold}"
            )
        self.members = list(members)
        self.threshold = threshold
        self.domain = domain
        #: the CA addresses whose signatures count (empty: any); set it to the contract's CA set
        self.signers = frozenset(signers)
        self._pool = ThreadPoolExecutor(len(self.members), thread_name_prefix="ca-quorum")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _ask_all(self, call: Callable[[CountersignService], T]) -> list[T | Exception]:
        """``call`` on every member at once; a member that fails yields its exception."""

        def one(member: CountersignService) -> T | Exception:
            try:
                return call(member)
            except ChainsenseError as exc:  # refused, down, or answered nonsense
                return exc

        return list(self._pool.map(one, self.members))

    def countersign_many(
        self, items: Sequence[tuple[Record, bytes]]
    ) -> tuple[list[Countersignature], CAError | None]:
        """k countersignatures for each item in order, up to the first item that has fewer:
        the refusal for that item when a CA refused it (a stale nonce first), else None
        (the missing CAs are down). Raises :class:`CAUnavailableError` when no item got k."""
        answers = self._ask_all(lambda m: m.countersign_many(items))
        done: list[Countersignature] = []
        for i, (record, _) in enumerate(items):
            digest = record.digest(self.domain)
            signatures = self._distinct(
                digest,
                [
                    a[0][i].ca_signature
                    for a in answers
                    if not isinstance(a, Exception) and len(a[0]) > i
                ],
            )
            if len(signatures) >= self.threshold:
                joined = b"".join(signatures[: self.threshold])
                done.append(Countersignature(record, digest, joined))
                continue
            refusals = [
                a if isinstance(a, CAError) else a[1]
                for a in answers
                if isinstance(a, CAError) or (not isinstance(a, Exception) and len(a[0]) == i)
            ]
            refusals = [r for r in refusals if r is not None]
            refusals.sort(key=lambda r: r.code != _RETRYABLE)
            if not done and not refusals:
                raise CAUnavailableError(self._down(answers))
            return done, refusals[0] if refusals else None
        return done, None

    def countersign(self, record: Record, mt_signature: bytes) -> Countersignature:
        """One record: k countersignatures, or the refusal / :class:`CAUnavailableError`."""
        done, refusal = self.countersign_many([(record, mt_signature)])
        if done:
            return done[0]
        raise refusal or CAUnavailableError(f"ca: fewer than {self.threshold} CAs answered")

    def last_nonce(self, address: str) -> int | None:
        """The highest last nonce any answering CA has countersigned for the MT (-1: none),
        None when no answering CA knows it."""
        answers = self._ask_all(lambda m: m.last_nonce(address))
        known = [a for a in answers if isinstance(a, int) and not isinstance(a, bool)]
        if not known:
            if all(isinstance(a, Exception) for a in answers):
                raise CAUnavailableError(self._down(answers))
            return None
        return max(known)

    def countersign_batch(
        self, items: Sequence[tuple[Record, bytes]], submitter: str
    ) -> BatchCertificate:
        """Each CA verifies every record itself and signs the root; k signatures of the same
        root, joined in signer order, make the certificate."""
        answers = self._ask_all(lambda m: m.countersign_batch(items, submitter))
        certs = [a for a in answers if isinstance(a, BatchCertificate)]
        if len({c.root for c in certs}) > 1:
            raise ChainsenseError("ca: the CAs certified different roots for one batch")
        if len(certs) < self.threshold:
            refusals = [a for a in answers if isinstance(a, CAError)]
            if refusals:
                raise refusals[0]
            raise CAUnavailableError(self._down(answers))
        first = certs[0]
        digest = self.domain.digest(batch_struct_hash(first.root, first.size, first.submitter))
        signatures = self._distinct(digest, [c.ca_signature for c in certs])
        if len(signatures) < self.threshold:
            raise CAUnavailableError(
                f"ca: {len(signatures)} valid root signatures, {self.threshold} needed"
            )
        return dataclasses.replace(first, ca_signature=b"".join(signatures[: self.threshold]))

    def _distinct(self, digest: bytes, signatures: Sequence[bytes]) -> list[bytes]:
        """The signatures that recover to distinct allowed signers, in increasing signer order
        (a CA answering garbage, or two services with one key, cannot spoil a record)."""
        by_signer: dict[int, bytes] = {}
        for sig in signatures:
            try:
                signer = recover(digest, sig)
            except SignatureError:
                continue
            if not self.signers or signer in self.signers:
                by_signer.setdefault(int(signer, 16), bytes(sig))
        return [by_signer[s] for s in sorted(by_signer)]

    def _down(self, answers: Sequence[Any]) -> str:
        errors = [str(a) for a in answers if isinstance(a, Exception)]
        return f"ca: fewer than {self.threshold} of {len(self.members)} CAs answered: " + (
            "; ".join(errors[:3]) or "no answer"
        )
