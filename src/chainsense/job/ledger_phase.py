"""The ledger phase of ``chainsense run``: every collection event becomes a record that its MT
signs, the CA countersigns and the chain stores; then every record is read back and verified, and
a tampered copy is shown to fail."""

from __future__ import annotations

import dataclasses
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from chainsense.chain.base import Chain
from chainsense.chain.keys import KeyPair
from chainsense.errors import ChainsenseError, ConfigError
from chainsense.job.fleet import Progress
from chainsense.job.options import JobOptions
from chainsense.job.orgs import organisation_ca_keys
from chainsense.ledger.batch import verify_offchain
from chainsense.ledger.records import Record, to_fixed
from chainsense.ledger.session import LedgerSession
from chainsense.sim.events import CollectionEvent
from chainsense.stats import percentile

_QUERY_SAMPLE = 200  # records read back one by one to measure query latency
_PROOF_SAMPLE = 20  # entries per batch verified through the contract for latency


@dataclass
class LedgerFigures:
    """What the ledger did with the episode's records."""

    mode: str
    events: int
    records_on_chain: int
    transactions: int
    gas_total: int
    submit_seconds: float
    verified: int
    verify_failures: list[str]
    tamper_detected: bool
    query_p50_ms: float
    query_p99_ms: float
    per_mt: dict[int, int]
    cas: tuple[str, ...] = ()
    threshold: int = 1
    revoked: tuple[str, ...] = ()
    before_revocation: int = 0

    @property
    def gas_per_record(self) -> float:
        return self.gas_total / max(1, self.records_on_chain)

    @property
    def records_per_s(self) -> float:
        return self.records_on_chain / self.submit_seconds if self.submit_seconds > 0 else 0.0

    @property
    def all_accounted(self) -> bool:
        """Every collection event is on chain, verifies, and tampering was caught."""
        return (
            self.records_on_chain == self.events
            and self.verified == self.events
            and not self.verify_failures
            and self.tamper_detected
        )


def _percentile_ms(samples: Sequence[float], q: float) -> float:
    """Latency percentile in ms; 0 when nothing was queried (an episode with no events)."""
    return 1000.0 * percentile(samples, q) if samples else 0.0


def _identity(mt: int, r: Record) -> tuple[int, int, int, int, int, int]:
    return (mt, r.poi, r.slot, r.reading, r.x, r.y)


def _expected(events: Sequence[CollectionEvent]) -> Counter[tuple[int, int, int, int, int, int]]:
    """Event identities in on-chain units (MT index, PoI, slot, fixed-point reading, x, y)."""
    return Counter(
        (e.mt, e.poi, e.slot, to_fixed(e.amount, "reading"), to_fixed(e.x, "x"), to_fixed(e.y, "y"))
        for e in events
    )


def _read_back(session: LedgerSession, seed: int) -> tuple[list[Record], list[float]]:
    """Every record as the chain holds it, and the latency of sampled single-record queries."""
    ledger = session.ledger
    latencies: list[float] = []
    if session.mode == "record":
        stored = ledger.records()
        for s in random.Random(seed).sample(stored, min(_QUERY_SAMPLE, len(stored))):
            t0 = time.perf_counter()
            ledger.get_record(s.record_id)
            latencies.append(time.perf_counter() - t0)
        return [s.record for s in stored], latencies
    on_chain: list[Record] = []
    for bundle in session.bundles:
        info = ledger.get_batch(bundle.root_id)
        if info.size != len(bundle.entries):
            raise ChainsenseError(f"batch {bundle.root_id}: size on chain {info.size}")
        on_chain.extend(e.record for e in bundle.entries)
        for entry in bundle.entries[:_PROOF_SAMPLE]:
            t0 = time.perf_counter()
            ledger.verify_record(bundle.root_id, entry.record, entry.proof)
            latencies.append(time.perf_counter() - t0)
    return on_chain, latencies


def tamper_is_detected(session: LedgerSession, on_chain: Sequence[Record]) -> bool:
    """Alter one stored record's reading by one unit; every check must then reject it."""
    if not on_chain:
        return True  # nothing to tamper with; vacuously nothing undetected
    ledger = session.ledger
    if session.mode == "record":
        original = on_chain[0]
        forged = dataclasses.replace(original, reading=original.reading + 1)
        return ledger.verify_stored(forged) is None and ledger.verify_stored(original) is not None
    bundle = session.bundles[0]
    entry = bundle.entries[0]
    forged = dataclasses.replace(entry.record, reading=entry.record.reading + 1)
    forged_bundle = dataclasses.replace(
        bundle, entries=(dataclasses.replace(entry, record=forged),)
    )
    on_chain_rejects = not ledger.verify_record(bundle.root_id, forged, entry.proof)
    off_chain_rejects = not verify_offchain(ledger, forged_bundle)[0]
    genuine_passes = ledger.verify_record(bundle.root_id, entry.record, entry.proof)
    return on_chain_rejects and off_chain_rejects and bool(genuine_passes)


def share_on_ledger(
    opts: JobOptions,
    chain: Chain,
    funder: KeyPair | None,
    events: Sequence[CollectionEvent],
    progress: Progress,
) -> LedgerFigures:
    """Sign, countersign, store, then read back and verify every record of the episode.

    The session lives in ``<out>/ledger``; on a chain that outlives the process, a run that was
    killed in this phase resumes there (see :mod:`chainsense.ledger.session`).
    """
    ca_keys = organisation_ca_keys(opts.ledger)
    if ca_keys and opts.orgs not in (1, len(ca_keys)):
        raise ConfigError(
            "orgs", f"the network file lists {len(ca_keys)} organisations, not {opts.orgs}"
        )
    if ca_keys and len(ca_keys) < opts.ledger.threshold:
        raise ConfigError("threshold", f"above the {len(ca_keys)} organisations of the network")
    session = LedgerSession(
        opts.params.num_mts,
        opts.out / "ledger",
        chain=chain,
        funder=funder,
        seed=opts.seed,
        cfg=opts.ledger,
        orgs=opts.orgs,
        ca_keys=ca_keys,
    )
    try:
        total = len(events)
        phase = "ledger: sign, countersign, store"
        progress(phase, 0, total)
        report = session.submit_events(events, lambda n: progress(phase, n, total))
        progress("ledger: read back and verify", 0, 1)
        on_chain, latencies = _read_back(session, opts.seed)
        index = {k.address: i for i, k in enumerate(session.mt_keys)}
        found = Counter(_identity(index.get(r.mt, -1), r) for r in on_chain)
        expected = _expected(events)
        verification = session.verify(onchain_sample=16)
        failures = list(verification.failures)
        if missing := expected - found:
            failures.append(f"{sum(missing.values())} collection events have no record on chain")
        if extra := found - expected:
            failures.append(f"{sum(extra.values())} records on chain match no collection event")
        tamper_detected = tamper_is_detected(session, on_chain)
        ca_set = session.ledger.ca_set()
        progress("ledger: read back and verify", 1, 1)
        per_mt = Counter(e.mt for e in events)
        return LedgerFigures(
            mode=report.mode,
            events=total,
            records_on_chain=len(on_chain),
            transactions=report.transactions,
            gas_total=report.gas_total,
            submit_seconds=report.seconds,
            verified=verification.ok,
            verify_failures=failures,
            tamper_detected=tamper_detected,
            query_p50_ms=_percentile_ms(latencies, 50),
            query_p99_ms=_percentile_ms(latencies, 99),
            per_mt={i: per_mt[i] for i in range(opts.params.num_mts)},
            cas=ca_set.cas,
            threshold=ca_set.threshold,
            revoked=verification.revoked,
            before_revocation=verification.before_revocation,
        )
    finally:
        session.close()
