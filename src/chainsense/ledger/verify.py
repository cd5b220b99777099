"""Independent verification of everything stored on a ledger contract.

Trusts nothing but the chain's state and logs. The contract keeps one word per record (its
EIP-712 digest under the record's MT and nonce) and the record itself is in its log; so for
every record id from 1 to ``record_count`` this checks that exactly one log carries it, that the
digest recomputed from the logged fields is the one the contract stores for that (MT, nonce),
and that the CA countersignature carried in the log recovers to the CA in office (per the
``CARotated`` log) when the record was stored.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

from chainsense.chain.keys import SignatureError, recover
from chainsense.ledger.contract import Ledger
from chainsense.ledger.record_log import StoredRecord


@dataclass
class VerifyReport:
    total: int = 0
    ok: int = 0
    failures: list[tuple[int, str]] = field(default_factory=list)


def verify_ledger(ledger: Ledger, from_block: int = 0) -> VerifyReport:
    """Verify every stored record (see the module docstring)."""
    rotations = ledger.logs("CARotated", from_block)
    positions = [(r["block"], r["log_index"]) for r in rotations]
    count = ledger.record_count()
    logged = ledger.scan([], from_block)
    copies = Counter(s.record_id for s in logged)
    report = VerifyReport(total=count)
    for rid in range(1, count + 1):
        if rid not in copies:
            report.failures.append((rid, "no record log"))
    kept = [s for s in logged if copies[s.record_id] == 1 and 1 <= s.record_id <= count]
    for rid in sorted({s.record_id for s in logged} - {s.record_id for s in kept}):
        report.failures.append((rid, "several logs (or an id above record_count)"))
    onchain = ledger.stored_digests([(s.record.mt, s.record.nonce) for s in kept])
    for stored, digest in zip(kept, onchain, strict=True):
        problem = _problem(stored, digest, rotations, positions)
        if problem:
            report.failures.append((stored.record_id, problem))
        else:
            report.ok += 1
    report.failures.sort()
    return report


def _problem(
    stored: StoredRecord,
    onchain_digest: bytes,
    rotations: list[dict[str, object]],
    positions: list[tuple[int, int]],
) -> str | None:
    """What is wrong with one logged record, or None."""
    if onchain_digest != stored.digest:
        return "the contract stores another digest for this MT and nonce"
    if len(stored.ca_signatures) != 1:
        return f"{len(stored.ca_signatures)} CA signatures in the log, expected 1"
    i = bisect.bisect_right(positions, (stored.block, stored.log_index)) - 1
    ca = rotations[i]["new_ca"] if i >= 0 else None
    try:
        signer = recover(stored.digest, stored.ca_signatures[0])
    except SignatureError as exc:
        return f"CA signature: {exc}"
    if signer != ca:
        return f"signed by {signer}, CA was {ca}"
    return None
