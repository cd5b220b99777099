"""The ledger half of a whole run: N MTs, one CA, one contract, records in, verified out.

``chainsense run`` (and the demo and the benchmark) feed the simulator's collection events to
:meth:`LedgerSession.submit_events` and call :meth:`LedgerSession.verify` at the end. Keys are
derived from the run's seed so that a run is reproducible (simulation only, never for real
deployments); the CA registry, the MT outboxes and the batch bundles live in ``workdir``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from chainsense.errors import ChainsenseError
from chainsense.ledger import batch as batching
from chainsense.ledger.ca import CertificateAuthority
from chainsense.ledger.chain import Chain, EmbeddedChain
from chainsense.ledger.keys import KeyPair
from chainsense.ledger.records import Record, record_from_event
from chainsense.ledger.terminal import MobileTerminal
from chainsense.ledger.verify import verify_ledger

Mode = Literal["record", "batch"]
#: (mt index, PoI id, slot, amount collected, x, y) in document units
Event = tuple[int, int, int, float, float, float]


@dataclass(frozen=True)
class SessionReport:
    mode: str
    records: int
    confirmed: int
    rejected: int
    transactions: int
    gas_total: int
    seconds: float

    @property
    def gas_per_record(self) -> float:
        return self.gas_total / max(1, self.confirmed)

    @property
    def records_per_s(self) -> float:
        return self.confirmed / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class SessionVerification:
    checked: int
    ok: int
    failures: tuple[str, ...]


class LedgerSession:
    """Deploys a fresh ledger on ``chain`` (default: embedded) and runs the protocol on it."""

    def __init__(
        self,
        n_mts: int,
        workdir: str | Path,
        *,
        chain: Chain | None = None,
        funder: KeyPair | None = None,
        seed: int = 0,
        mode: Mode = "batch",
        batch_size: int = 1000,
        fund_wei: int = 10**18,
    ) -> None:
        if not 1 <= n_mts <= 10_000:
            raise ChainsenseError(f"n_mts: must be in 1..10000, got {n_mts}")
        if mode not in ("record", "batch"):
            raise ChainsenseError(f"mode: must be 'record' or 'batch', got {mode!r}")
        if not 1 <= batch_size <= 100_000:
            raise ChainsenseError(f"batch_size: must be in 1..100000, got {batch_size}")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.mode = mode
        self.batch_size = batch_size
        self.chain = chain if chain is not None else EmbeddedChain()
        self.ca_key = KeyPair.derive(seed, 0, "ca")
        self.mt_keys = [KeyPair.derive(seed, i, "mt") for i in range(n_mts)]
        self.aggregator = KeyPair.derive(seed, 0, "aggregator")
        self.ledger = self.chain.deploy_ledger(self.ca_key.address, funder)
        payees = [k.address for k in self.mt_keys] if mode == "record" else []
        sent = [  # send all, then wait: on a sealing network this takes one block, not N
            self.chain.send(funder, to=a, value=fund_wei, gas=21_000)
            for a in [self.aggregator.address, *payees]
        ]
        for tx_hash in sent:
            self.chain.wait(tx_hash)
        self.ca = CertificateAuthority(self.ca_key, self.workdir / "ca.db", self.ledger.domain)
        for i, k in enumerate(self.mt_keys):
            self.ca.register(k.address, {"index": i})
        self.terminals = [
            MobileTerminal(k, self.workdir / f"mt{i}.outbox", self.ledger, self.ca)
            for i, k in enumerate(self.mt_keys)
        ]
        self._nonce = [t.next_nonce() for t in self.terminals]
        self.bundles: list[batching.Bundle] = []

    def close(self) -> None:
        for t in self.terminals:
            t.close()
        self.ca.close()

    def _check_mt(self, index: int) -> None:
        if not 0 <= index < len(self.mt_keys):
            raise ChainsenseError(f"event.mt: index {index} outside [0, {len(self.mt_keys)})")

    def submit_events(
        self, events: Iterable[Event], progress: Callable[[int], None] | None = None
    ) -> SessionReport:
        """Push collection events through sign -> CA -> chain; returns what got confirmed."""
        start = time.perf_counter()
        events = list(events)
        for e in events:
            self._check_mt(e[0])
        if self.mode == "record":
            report = self._per_record(events, progress)
        else:
            report = self._batched(events, progress)
        return SessionReport(*report, seconds=time.perf_counter() - start)

    def _per_record(
        self, events: Sequence[Event], progress: Callable[[int], None] | None
    ) -> tuple[str, int, int, int, int, int]:
        for mt, poi, slot, amount, x, y in events:
            self.terminals[mt].collect(poi, slot, amount, x, y)
        confirmed = rejected = gas = 0
        for t in self.terminals:
            r = t.flush()
            confirmed += r.confirmed + r.already_stored
            rejected += r.rejected
            gas += r.gas_used
            if progress:
                progress(confirmed + rejected)
        return ("record", len(events), confirmed, rejected, confirmed, gas)

    def _batched(
        self, events: Sequence[Event], progress: Callable[[int], None] | None
    ) -> tuple[str, int, int, int, int, int]:
        confirmed = txs = gas = 0
        domain = self.ledger.domain
        for lo in range(0, len(events), self.batch_size):
            items: list[tuple[Record, bytes]] = []
            for mt, poi, slot, amount, x, y in events[lo : lo + self.batch_size]:
                key = self.mt_keys[mt]
                rec = record_from_event(key.address, poi, slot, amount, x, y, self._nonce[mt])
                self._nonce[mt] += 1
                items.append((rec, key.sign_digest(rec.digest(domain))))
            cert = self.ca.countersign_batch(items, self.aggregator.address)
            anchor = batching.anchor(self.ledger, cert, self.aggregator)
            bundle = batching.make_bundle(self.ledger, cert, anchor.root_id)
            batching.write_bundle(self.workdir / f"batch-{anchor.root_id}.json", bundle)
            self.bundles.append(bundle)
            confirmed += cert.size
            txs += 1
            gas += anchor.gas_used
            if progress:
                progress(confirmed)
        return ("batch", len(events), confirmed, 0, txs, gas)

    def verify(self, onchain_sample: int = 16) -> SessionVerification:
        """Re-verify everything: stored records (digest + CA signature), or every bundle entry off
        chain plus ``onchain_sample`` entries per bundle through the contract."""
        if self.mode == "record":
            rep = verify_ledger(self.ledger)
            return SessionVerification(
                rep.total, rep.ok, tuple(f"record {i}: {w}" for i, w in rep.failures)
            )
        checked = ok = 0
        failures: list[str] = []
        for b in self.bundles:
            results = batching.verify_offchain(self.ledger, b)
            sample = batching.Bundle(
                b.root_id, b.root, b.chain_id, b.contract, b.entries[:onchain_sample]
            )
            on = batching.verify_onchain(self.ledger, sample)
            for i, good in enumerate(results):
                good = good and (on[i] if i < len(on) else True)
                checked += 1
                ok += good
                if not good:
                    failures.append(f"batch {b.root_id} entry {i}: proof fails")
        return SessionVerification(checked, ok, tuple(failures))
