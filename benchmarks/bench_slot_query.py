"""Slot-range query benchmark: `Ledger.records_in_slots` against the per-slot walk it replaced
(one `slot_record_count` call per slot, then `records_of_slot` pages), in the same run, on the
embedded chain and on a real anvil node.

Usage: .venv/bin/python benchmarks/bench_slot_query.py [--chains embedded anvil]
       [--spans 1000 10000 100000] [--records 300] [--populated-span 10000] [--walk-limit 10000]
Prints, per chain and range: view calls and seconds of both paths and their ratio, and the gas
per stored record. Empty ranges start at slot 1,000,000; the populated range is
[0, populated_span) with `--records` records at random slots (some slots hold several). The
walk is timed over at most `--walk-limit` slots of a range and scaled linearly beyond that
(marked "extrapolated"); wherever it covers the whole range both paths must return the same
records.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from chainsense.chain.base import Chain
from chainsense.chain.embedded import EmbeddedChain
from chainsense.chain.keys import KeyPair
from chainsense.chain.rpc import RpcChain
from chainsense.ledger.ca import CertificateAuthority
from chainsense.ledger.contract import Ledger, StoredRecord, deploy_ledger
from chainsense.ledger.records import Record

REPO = Path(__file__).resolve().parents[1]
EMPTY_BASE = 1_000_000


def per_slot_walk(ledger: Ledger, first: int, last: int) -> list[StoredRecord]:
    """The query as it was before: one count call per slot, then its pages."""
    out: list[StoredRecord] = []
    for slot in range(first, last + 1):
        total = int(ledger.view("slot_record_count", slot))
        out.extend(ledger._paged("records_of_slot", (slot,), 0, total))
    return out


class CountingLedger:
    """Counts the view calls made through ``ledger.view`` while installed."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.calls = 0
        self._orig = ledger.view

        def view(fn: str, *args: Any) -> Any:
            self.calls += 1
            return self._orig(fn, *args)

        ledger.view = view  # type: ignore[method-assign]

    def measure(
        self, fn: Callable[[], list[StoredRecord]]
    ) -> tuple[list[StoredRecord], int, float]:
        self.calls = 0
        t = time.perf_counter()
        out = fn()
        return out, self.calls, time.perf_counter() - t


@contextmanager
def anvil_node() -> Iterator[str]:
    binary = REPO / "node_modules" / ".bin" / "anvil"
    if not binary.exists():
        found = shutil.which("anvil")
        if not found:
            raise SystemExit("anvil not found (run scripts/install-anvil.sh)")
        binary = Path(found)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    url = f"http://127.0.0.1:{port}"
    cmd = [str(binary), "--host", "127.0.0.1", "--port", str(port), "--silent"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.post(url, json=body, timeout=1.0)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def populate(chain: Chain, tmp: Path, n: int, span: int) -> tuple[Ledger, float]:
    """Deploy a ledger and store ``n`` records at random slots of ``[0, span)``; returns the
    ledger and the mean gas per stored record."""
    ca_key = KeyPair.derive("bench-slots", 0, "ca")
    mts = [KeyPair.derive("bench-slots", i) for i in range(4)]
    ledger = deploy_ledger(chain, ca_key.address)
    for k in [ca_key, *mts]:
        chain.fund(k.address, 10**18)
    ca = CertificateAuthority(ca_key, tmp / f"ca-{id(chain)}.db", ledger.domain)
    for k in mts:
        ca.register(k.address)
    rng = random.Random(7)
    hot = [rng.randrange(span) for _ in range(max(1, n // 20))]  # slots with several records
    sent = []
    for i in range(n):
        mt = mts[i % len(mts)]
        slot = rng.choice(hot) if i % 4 == 0 else rng.randrange(span)
        rec = Record(mt.address, poi=i % 50, slot=slot, reading=i, x=1, y=2, nonce=i)
        sig = ca.countersign(rec, mt.sign_digest(rec.digest(ledger.domain))).ca_signature
        sent.append((rec, ledger.send_submit(rec, sig, mt)))
    gas = [ledger.finish_submit(rec, tx).gas_used for rec, tx in sent]
    ca.close()
    return ledger, sum(gas) / len(gas)


def bench_chain(name: str, chain: Chain, args: argparse.Namespace, tmp: Path) -> None:
    t = time.perf_counter()
    ledger, gas = populate(chain, tmp, args.records, args.populated_span)
    print(
        f"[{name}] {args.records} records stored at random slots of [0, {args.populated_span:,}) "
        f"in {time.perf_counter() - t:.1f} s; gas per stored record (mean) {gas:,.0f}"
    )
    counter = CountingLedger(ledger)
    cases = [(f"empty {s:,}", EMPTY_BASE, EMPTY_BASE + s - 1) for s in args.spans]
    cases.append((f"{args.records} records in {args.populated_span:,}", 0, args.populated_span - 1))
    head = f"{'range':>24} {'found':>6} {'new calls':>9} {'new s':>8} {'walk calls':>10} "
    print(head + f"{'walk s':>9} {'walk/new':>9}")
    for label, first, last in cases:
        span = last - first + 1
        new, new_calls, new_s = counter.measure(partial(ledger.records_in_slots, first, last))
        walk_span = min(span, args.walk_limit)
        note = ""
        if walk_span == 0:
            walk_calls, walk_s = float("nan"), float("nan")
        else:
            walk, wc, ws = counter.measure(
                partial(per_slot_walk, ledger, first, first + walk_span - 1)
            )
            if walk_span == span:
                assert walk == new, f"{label}: the paths disagree"
            else:
                note = f"  (walk extrapolated from {walk_span:,} slots)"
            walk_calls, walk_s = wc * span / walk_span, ws * span / walk_span
        ratio = walk_s / new_s if new_s > 0 else float("inf")
        print(
            f"{label:>24} {len(new):>6} {new_calls:>9,} {new_s:>8.2f} {walk_calls:>10,.0f} "
            f"{walk_s:>9.2f} {ratio:>8.0f}x{note}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chains", nargs="+", default=["embedded", "anvil"])
    p.add_argument("--spans", nargs="+", type=int, default=[1_000, 10_000, 100_000])
    p.add_argument("--records", type=int, default=300, help="records in the populated range")
    p.add_argument("--populated-span", type=int, default=10_000)
    p.add_argument(
        "--walk-limit", type=int, default=10_000, help="most slots the per-slot walk is timed on"
    )
    args = p.parse_args()
    print(f"cpus available: {len(os.sched_getaffinity(0))}; load average: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as d:
        for name in args.chains:
            if name == "embedded":
                bench_chain(name, EmbeddedChain(), args, Path(d))
            elif name == "anvil":
                with anvil_node() as url:
                    chain = RpcChain([url], timeout=30)
                    bench_chain(name, chain, args, Path(d))
                    chain.close()
            else:
                raise SystemExit(f"--chains: unknown chain {name!r}")


if __name__ == "__main__":
    main()
