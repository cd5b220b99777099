"""Independent verification of everything stored on a ledger contract.

Trusts nothing but the chain's state and logs: for every stored record it recomputes the
EIP-712 digest from the stored fields, checks it against the stored digest and the one in the
record's ``RecordStored`` event, and recovers the CA countersignature carried in that event,
which must be the CA in office (per the ``CARotated`` log) when the record was stored.
(The digest -> id index is not walked here; ``Ledger.verify_stored`` checks one record that way.)
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from chainsense.chain.keys import SignatureError, recover
from chainsense.ledger.contract import Ledger


@dataclass
class VerifyReport:
    total: int = 0
    ok: int = 0
    failures: list[tuple[int, str]] = field(default_factory=list)


def verify_ledger(ledger: Ledger, from_block: int = 0) -> VerifyReport:
    """Verify every stored record (see the module docstring)."""
    rotations = ledger.logs("CARotated", from_block)
    positions = [(r["block"], r["log_index"]) for r in rotations]
    stored_events = {int(e["record_id"]): e for e in ledger.logs("RecordStored", from_block)}
    report = VerifyReport()
    for s in ledger.records():
        report.total += 1
        digest = s.record.digest(ledger.domain)
        event = stored_events.get(s.record_id)
        if digest != s.digest:
            report.failures.append((s.record_id, "stored digest does not match the fields"))
        elif event is None:
            report.failures.append((s.record_id, "no RecordStored event"))
        elif bytes(event["digest"]) != digest:
            report.failures.append((s.record_id, "event digest differs from the stored record"))
        else:
            i = bisect.bisect_right(positions, (event["block"], event["log_index"])) - 1
            ca = rotations[i]["new_ca"] if i >= 0 else None
            try:
                signer = recover(digest, bytes(event["ca_signature"]))
            except SignatureError as exc:
                report.failures.append((s.record_id, f"CA signature: {exc}"))
                continue
            if signer != ca:
                report.failures.append((s.record_id, f"signed by {signer}, CA was {ca}"))
            else:
                report.ok += 1
    return report
