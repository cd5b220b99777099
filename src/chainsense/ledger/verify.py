"""Independent verification of everything stored on a ledger contract.

Trusts nothing but the chain's state and logs. The contract keeps one word per record (its
EIP-712 digest under the record's MT and nonce) and the record itself is in its log; so for
every record id from 1 to ``record_count`` this checks that exactly one log carries it, that the
digest recomputed from the logged fields is the one the contract stores for that (MT, nonce),
and that the log carries k signatures by distinct CAs of the set in office (per the
``CASetChanged`` logs) when the record was stored. Records of an MT that was revoked later are
valid and reported as stored before the revocation; one stored after it would be a failure.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

from chainsense.ledger.batch import Bundle
from chainsense.ledger.contract import Ledger
from chainsense.ledger.governance import CASetChange, Revocation, ca_set_history, revocations
from chainsense.ledger.record_log import StoredRecord


@dataclass
class VerifyReport:
    total: int = 0
    ok: int = 0
    failures: list[tuple[int, str]] = field(default_factory=list)
    #: (record id, MT) of valid records whose MT was revoked after they were stored
    before_revocation: list[tuple[int, str]] = field(default_factory=list)
    revocations: list[Revocation] = field(default_factory=list)


def verify_ledger(ledger: Ledger, from_block: int = 0) -> VerifyReport:
    """Verify every stored record (see the module docstring)."""
    sets = ca_set_history(ledger, from_block)
    positions = [(c.block, c.log_index) for c in sets]
    revoked = {r.mt: r for r in revocations(ledger, from_block)}
    count = ledger.record_count()
    logged = ledger.scan([], from_block)
    copies = Counter(s.record_id for s in logged)
    report = VerifyReport(total=count, revocations=list(revoked.values()))
    for rid in range(1, count + 1):
        if rid not in copies:
            report.failures.append((rid, "no record log"))
    kept = [s for s in logged if copies[s.record_id] == 1 and 1 <= s.record_id <= count]
    for rid in sorted({s.record_id for s in logged} - {s.record_id for s in kept}):
        report.failures.append((rid, "several logs (or an id above record_count)"))
    onchain = ledger.stored_digests([(s.record.mt, s.record.nonce) for s in kept])
    for stored, digest in zip(kept, onchain, strict=True):
        problem = _problem(stored, digest, sets, positions, revoked.get(stored.record.mt))
        if problem:
            report.failures.append((stored.record_id, problem))
            continue
        report.ok += 1
        if stored.record.mt in revoked:
            report.before_revocation.append((stored.record_id, stored.record.mt))
    report.failures.sort()
    return report


def _problem(
    stored: StoredRecord,
    onchain_digest: bytes,
    sets: list[CASetChange],
    positions: list[tuple[int, int]],
    revocation: Revocation | None,
) -> str | None:
    """What is wrong with one logged record, or None."""
    if onchain_digest != stored.digest:
        return "the contract stores another digest for this MT and nonce"
    where = (stored.block or 0, stored.log_index or 0)
    if revocation is not None and where > (revocation.block, revocation.log_index):
        return f"stored after its MT was revoked (block {revocation.block})"
    i = bisect.bisect_right(positions, where) - 1
    if i < 0:
        return "stored before any CA set took office"
    return sets[i].ca_set.check(stored.digest, b"".join(stored.ca_signatures))


@dataclass(frozen=True)
class BundleRevocations:
    """Entries of a batch whose MT is revoked: before the root was anchored (the root should
    not hold them: failures) or after (valid, stored before the revocation)."""

    before_anchor: tuple[int, ...]
    after_anchor: tuple[int, ...]


def bundle_revocations(ledger: Ledger, bundle: Bundle) -> BundleRevocations:
    """Which entries of ``bundle`` name an MT revoked on chain, relative to the root's anchoring
    (the contract cannot look inside a root, so this is the verifier's check)."""
    revoked = {r.mt: (r.block, r.log_index) for r in revocations(ledger)}
    if not revoked:
        return BundleRevocations((), ())
    anchors = [a for a in ledger.logs("BatchAnchored") if int(a["root_id"]) == bundle.root_id]
    anchored = (anchors[0]["block"], anchors[0]["log_index"]) if anchors else None
    before, after = [], []
    for i, entry in enumerate(bundle.entries):
        at = revoked.get(entry.record.mt)
        if at is None:
            continue
        (before if anchored is None or at < anchored else after).append(i)
    return BundleRevocations(tuple(before), tuple(after))
