"""The ledger half of a whole run: N MTs, one CA or a consortium of CAs (k of n), one contract,
records in, verified out.

``chainsense run`` (and ``ledger demo`` and the benchmark) feed the world's collection events to
:meth:`LedgerSession.submit_events` and call :meth:`LedgerSession.verify` at the end. Keys are
derived from the run's seed so that a run is reproducible (simulation only, never for real
deployments); the CA registry, the MT outboxes, the batch bundles and ``session.json`` (which
contract, which settings) live in ``workdir``.

A session is resumable: opened again on the same workdir and the same chain (a node that
outlives the process: anvil, a geth network), with the same seed and settings, it keeps the
contract and submits only what is missing: per-record mode re-queues nothing that an outbox
already holds, batch mode finishes a certified batch from its bundle without asking the CA
again (:func:`chainsense.ledger.batch.submit_batch`). Anything else starts afresh.

With one CA (the default) the MTs call the CA object directly. With several (``orgs``, or
``ca_keys``), each CA gets its own registry and is served over HTTP on a loopback port
(:class:`~chainsense.ledger.ca_server.CAServer`), and the MTs gather k = ``cfg.threshold``
countersignatures from them through a :class:`~chainsense.ledger.ca_quorum.CAQuorum`.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from chainsense.chain.base import Chain
from chainsense.chain.keys import KeyPair, in_threads
from chainsense.errors import ChainsenseError
from chainsense.files import atomic_write
from chainsense.ledger import batch as batching
from chainsense.ledger.ahead import collect_less_often, one_ahead, quick_gil_handover
from chainsense.ledger.ca import CertificateAuthority
from chainsense.ledger.ca_client import CAClient
from chainsense.ledger.ca_quorum import CAQuorum
from chainsense.ledger.ca_server import CAServer
from chainsense.ledger.config import LedgerConfig
from chainsense.ledger.consortium import MAX_CAS, CASet, ca_set_arguments
from chainsense.ledger.contract import Ledger, deploy_ledger
from chainsense.ledger.governance import revocations
from chainsense.ledger.records import Record, record_from_event
from chainsense.ledger.revoked import RevokedMTs
from chainsense.ledger.terminal import MobileTerminal
from chainsense.ledger.verify import bundle_revocations, verify_ledger
from chainsense.sim.events import CollectionEvent

SESSION_FILE = "session.json"
MAX_MTS = 10_000
FLUSH_WORKERS = 16
"""MTs flushing at the same time in per-record mode (threads: the work is mostly waiting for
nodes, the CA and SQLite)."""


def _signed(items: list[tuple[Record, bytes]] | None, path: Path) -> list[tuple[Record, bytes]]:
    """The signed records of a batch; asked for only when its bundle is missing."""
    if items is None:  # the bundle existed when the batch was prepared, and is gone now
        raise ChainsenseError(f"bundle: {path} disappeared while the session ran")
    return items


def _registry(index: int) -> str:
    """The registry file of CA ``index`` (``ca.db`` for the first, as with one CA)."""
    return "ca.db" if index == 0 else f"ca{index}.db"


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
    revoked: tuple[str, ...] = ()  # MTs revoked on chain
    before_revocation: int = 0  # valid records stored before their MT's revocation


class LedgerSession:
    """A ledger contract on ``chain`` (default: embedded) and the protocol run on it."""

    def __init__(
        self,
        n_mts: int,
        workdir: str | Path,
        *,
        chain: Chain,
        funder: KeyPair | None = None,
        seed: int = 0,
        cfg: LedgerConfig | None = None,
        orgs: int = 1,
        ca_keys: Sequence[KeyPair] = (),
    ) -> None:
        if not 1 <= n_mts <= MAX_MTS:
            raise ChainsenseError(f"n_mts: must be in 1..{MAX_MTS}, got {n_mts}")
        if not 1 <= orgs <= MAX_CAS:
            raise ChainsenseError(f"orgs: must be in 1..{MAX_CAS}, got {orgs}")
        self.cfg = cfg or LedgerConfig()
        self.mode = self.cfg.mode
        self.batch_size = self.cfg.batch_size
        self.workdir = Path(workdir)
        self.chain = chain
        self.workers = FLUSH_WORKERS
        self.ca_keys = list(ca_keys) or [KeyPair.derive(seed, i, "ca") for i in range(orgs)]
        self.ca_key = self.ca_keys[0]
        self.threshold = self.cfg.threshold
        self.expected_cas = CASet(
            tuple(ca_set_arguments([k.address for k in self.ca_keys], self.threshold)),
            self.threshold,
        )
        self.mt_keys = [KeyPair.derive(seed, i, "mt") for i in range(n_mts)]
        self.aggregator = KeyPair.derive(seed, 0, "aggregator")
        identity = {
            "chain_id": chain.chain_id,
            "seed": seed,
            "mts": n_mts,
            "mode": self.mode,
            "batch_size": self.batch_size,
            "cas": list(self.expected_cas.cas),
            "threshold": self.threshold,
        }
        self._identity = identity
        ledger = self._previous(identity)
        self.resumed = ledger is not None
        if ledger is None:
            ledger = self._fresh(funder)
        self.ledger = ledger
        revoked = RevokedMTs(ledger)  # one cached view of the chain's revocations for all CAs
        self.authorities = [
            CertificateAuthority(key, self.workdir / _registry(i), ledger.domain, revoked)
            for i, key in enumerate(self.ca_keys)
        ]
        for authority in self.authorities:
            for i, k in enumerate(self.mt_keys):
                authority.register(k.address, {"index": i})
        self.servers: list[CAServer] = []
        self.ca: CertificateAuthority | CAQuorum = self.authorities[0]
        if len(self.authorities) > 1:
            self.ca = self._consortium()
        self.terminals = [
            MobileTerminal(k, self.workdir / f"mt{i}.outbox", self.ledger, self.ca)
            for i, k in enumerate(self.mt_keys)
        ]
        self.bundles: list[batching.Bundle] = []
        # events handled so far per MT (their nonces) and batches written, counted from this
        # session's opening: a resumed session meets the same events in the same order again
        self._handled = [0] * n_mts
        self._batches = 0
        # (counted, not read off the highest nonce: a renumbered outbox has gaps in its nonces)
        self._queued_at_open = [t.collected() for t in self.terminals]
        self._reported = [0] * n_mts  # confirmed records an earlier call already reported

    # --- set-up ------------------------------------------------------------------------------
    def _previous(self, identity: dict[str, Any]) -> Ledger | None:
        """The contract of an unfinished session with this identity in ``workdir``, if any."""
        try:
            saved = json.loads((self.workdir / SESSION_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(saved, dict) or saved.get("identity") != identity:
            return None
        if saved.get("complete"):
            return None
        address = saved.get("contract")
        if not isinstance(address, str) or not self.chain.code_at(address):
            return None  # e.g. the embedded chain of a process that is gone
        ledger = Ledger(self.chain, address)
        return ledger if ledger.ca_set() == self.expected_cas else None

    def _fresh(self, funder: KeyPair | None) -> Ledger:
        """Clear ``workdir``, deploy a new contract and fund the accounts that send."""
        if self.workdir.exists():  # another run's registry, outboxes and bundles
            shutil.rmtree(self.workdir)
        self.workdir.mkdir(parents=True)
        ledger = deploy_ledger(
            self.chain, self.expected_cas.cas, threshold=self.threshold, deployer=funder
        )
        payees = [k.address for k in self.mt_keys] if self.mode == "record" else []
        sent = [  # send all, then wait: on a sealing network this takes one block, not N
            self.chain.send(funder, to=a, value=self.cfg.fund_wei, gas=21_000)
            for a in [self.aggregator.address, *payees]
        ]
        for tx_hash in sent:
            self.chain.wait(tx_hash)
        self._save(ledger.address, complete=False)
        return ledger

    def _save(self, contract: str, *, complete: bool) -> None:
        """Record which contract this workdir belongs to, and whether its records are all in."""
        data = {"identity": self._identity, "contract": contract, "complete": complete}
        atomic_write(self.workdir / SESSION_FILE, json.dumps(data, indent=1) + "\n")

    def _consortium(self) -> CAQuorum:
        """Serve every CA over HTTP and ask them as a k-of-n quorum."""
        try:
            for authority in self.authorities:
                self.servers.append(CAServer(authority).start())
        except BaseException:
            for server in self.servers:
                server.stop()
            raise
        clients = [CAClient(server.url) for server in self.servers]
        return CAQuorum(clients, self.threshold, self.ledger.domain, self.expected_cas.cas)

    def close(self) -> None:
        for t in self.terminals:
            t.close()
        if isinstance(self.ca, CAQuorum):
            self.ca.close()
            for member in self.ca.members:
                if isinstance(member, CAClient):
                    member.close()
        for server in self.servers:
            server.stop()
        for authority in self.authorities:
            authority.close()

    # --- submission --------------------------------------------------------------------------
    def submit_events(
        self,
        events: Sequence[CollectionEvent],
        progress: Callable[[int], None] | None = None,
    ) -> SessionReport:
        """Push collection events through sign -> CA -> chain; returns what got confirmed."""
        start = time.perf_counter()
        for e in events:
            if not 0 <= e.mt < len(self.mt_keys):
                raise ChainsenseError(f"event.mt: index {e.mt} outside [0, {len(self.mt_keys)})")
        if self.mode == "record":
            report = self._per_record(events, progress)
        else:
            report = self._batched(events, progress)
        pending = sum(t.pending() for t in self.terminals)
        self._save(self.ledger.address, complete=pending == 0)
        return SessionReport(*report, seconds=time.perf_counter() - start)

    def _nonces(self, events: Sequence[CollectionEvent]) -> list[int]:
        """The nonce of each event: how many events its MT had before, in this session."""
        nonces = []
        for e in events:
            nonces.append(self._handled[e.mt])
            self._handled[e.mt] += 1
        return nonces

    def _per_record(
        self, events: Sequence[CollectionEvent], progress: Callable[[int], None] | None
    ) -> tuple[str, int, int, int, int, int]:
        new: dict[int, list[tuple[int, int, float, float, float]]] = {}
        for e, nonce in zip(events, self._nonces(events), strict=True):
            if nonce >= self._queued_at_open[e.mt]:  # else a previous attempt queued it
                new.setdefault(e.mt, []).append((e.poi, e.slot, e.amount, e.x, e.y))
        for m, items in new.items():
            self.terminals[m].collect_many(items)
        confirmed = rejected = gas = txs = 0
        busy = [m for m, t in enumerate(self.terminals) if t.pending()]
        # MTs submit in parallel: while one waits for a node, another signs and sends
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(busy)))) as pool:
            flushes = {pool.submit(self.terminals[m].flush): m for m in busy}
            for done in as_completed(flushes):
                m, r = flushes[done], done.result()
                txs += r.confirmed
                now = self.terminals[m].counts().get("confirmed", 0)  # also earlier attempts'
                confirmed += now - self._reported[m]
                self._reported[m] = now
                rejected += r.rejected
                gas += r.gas_used
                if progress:
                    progress(confirmed + rejected)
        return ("record", len(events), confirmed, rejected, txs, gas)

    def _batched(
        self, events: Sequence[CollectionEvent], progress: Callable[[int], None] | None
    ) -> tuple[str, int, int, int, int, int]:
        """One durable batch after another (:func:`batching.submit_batch`), the next batch's
        records built and MT-signed in a background thread meanwhile; the GIL handed over
        quickly and the collector run less often while this goes on (:mod:`.ahead`)."""
        confirmed = txs = gas = 0
        nonces = self._nonces(events)
        first = self._batches
        starts = list(range(0, len(events), self.batch_size))

        def prepare(k: int) -> tuple[list[Record], list[tuple[Record, bytes]] | None]:
            lo = starts[k]
            records = [
                record_from_event(self.mt_keys[e.mt].address, e.poi, e.slot, e.amount, e.x, e.y, n)
                for e, n in zip(events[lo : lo + self.batch_size], nonces[lo:], strict=False)
            ]
            if self._bundle_path(first + k).exists():  # a resumed run: no signatures needed
                return records, None
            # the first batch has nothing to overlap with: all the secp256k1 threads sign it;
            # later ones are signed in this thread alone while the current batch's certification
            # has the pool (a shared FIFO pool would make it wait behind the signing)
            return records, self._sign(records, threaded=k == 0)

        with (
            quick_gil_handover(),
            collect_less_often(),
            closing(one_ahead(prepare, range(len(starts)))) as ready,
        ):
            for k, (records, items) in enumerate(ready):
                path = self._bundle_path(first + k)
                self._batches = first + k + 1
                out = batching.submit_batch(
                    self.ledger, self.ca, self.aggregator, path, partial(_signed, items, path)
                )
                if [e.record for e in out.bundle.entries] != records:
                    raise ChainsenseError(f"bundle: {path} holds the records of another run")
                self.bundles.append(out.bundle)
                confirmed += out.bundle.size
                txs += out.anchored
                gas += out.gas_used
                if progress:
                    progress(confirmed)
        return ("batch", len(events), confirmed, 0, txs, gas)

    def _bundle_path(self, index: int) -> Path:
        return self.workdir / f"batch-{index:05d}.json"

    def _sign(self, records: Sequence[Record], *, threaded: bool) -> list[tuple[Record, bytes]]:
        """Each record with its MT's signature (``threaded``: in the secp256k1 threads)."""
        domain = self.ledger.domain
        by_address = {k.address: k for k in self.mt_keys}

        def sign(r: Record) -> tuple[Record, bytes]:
            return r, by_address[r.mt].sign_digest(r.digest(domain))

        return in_threads(sign, records) if threaded else [sign(r) for r in records]

    # --- verification ------------------------------------------------------------------------
    def verify(self, onchain_sample: int = 16) -> SessionVerification:
        """Re-verify everything: stored records (digest + CA signature), or every bundle entry off
        chain plus ``onchain_sample`` entries per bundle through the contract."""
        if self.mode == "record":
            rep = verify_ledger(self.ledger)
            return SessionVerification(
                rep.total,
                rep.ok,
                tuple(f"record {i}: {w}" for i, w in rep.failures),
                tuple(r.mt for r in rep.revocations),
                len(rep.before_revocation),
            )
        checked = ok = marked = 0
        failures: list[str] = []
        for b in self.bundles:
            revoked = bundle_revocations(self.ledger, b)
            marked += len(revoked.after_anchor)
            results = batching.verify_offchain(self.ledger, b)
            for i in revoked.before_anchor:
                results[i] = False
            sample = batching.Bundle(
                b.root_id, b.root, b.chain_id, b.contract, b.entries[:onchain_sample]
            )
            on = batching.verify_onchain(self.ledger, sample)
            for i, good in enumerate(results):
                good = good and (on[i] if i < len(on) else True)
                checked += 1
                ok += good
                if not good:
                    failures.append(f"batch {b.root_id} entry {i}: proof fails or MT revoked")
        revoked_mts = tuple(r.mt for r in revocations(self.ledger))
        return SessionVerification(checked, ok, tuple(failures), revoked_mts, marked)
