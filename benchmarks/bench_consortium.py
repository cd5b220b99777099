"""Cost of the consortium: gas per record and throughput for k = 1, 2, 3 CA signatures.

Usage: .venv/bin/python benchmarks/bench_consortium.py [--records 2000] [--batch-records 20000]
       [--gas-records 50] [--ks 1 2 3] [--skip-throughput]
Prints, on the embedded chain (py-evm: the same gas as geth and anvil):
* gas per record: mean over ``--gas-records`` records with the simulator's kind of values and
  the costliest record (every field at its maximum), for k = n = 1 and for k of n = 3, before
  and after an MT of the ledger has been revoked (a submit then also reads the sender's
  revocation word), and the marginal gas of one more CA signature;
* throughput: a whole :class:`LedgerSession` (16 MTs, per-record mode and batch mode) with
  k = n = 1 (the CA in process, as by default) and k of 3 CA services over HTTP.
Issue 17's bound: <= 60,000 gas per record with one CA.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

from chainsense.chain.embedded import EmbeddedChain
from chainsense.chain.keys import KeyPair
from chainsense.ledger import governance
from chainsense.ledger.config import LedgerConfig
from chainsense.ledger.contract import deploy_ledger
from chainsense.ledger.records import FIXED_SCALE, Record
from chainsense.ledger.session import LedgerSession
from chainsense.sim.events import synthetic_events

U32, U64 = 2**32 - 1, 2**64 - 1


def _fields(rng: random.Random) -> dict[str, int]:
    return {
        "poi": rng.randrange(100),
        "slot": rng.randrange(10_000),
        "reading": round(rng.uniform(0, 10) * FIXED_SCALE),
        "x": round(rng.uniform(0, 100) * FIXED_SCALE),
        "y": round(rng.uniform(0, 100) * FIXED_SCALE),
    }


def gas_rows(n: int, k: int, records: int) -> list[tuple[str, float, int]]:
    """(phase, mean gas, costliest record's gas) before and after a revocation."""
    chain = EmbeddedChain()
    keys = sorted(
        (KeyPair.derive("bench", i, "ca") for i in range(n)), key=lambda x: int(x.address, 16)
    )
    mt, other = KeyPair.derive("bench", 0), KeyPair.derive("bench", 1)
    ledger = deploy_ledger(chain, [x.address for x in keys], threshold=k)
    for key in [*keys, mt, other]:
        chain.fund(key.address, 10**18)
    rng = random.Random(7)
    nonce = 0

    def store(fields: dict[str, int]) -> int:
        nonlocal nonce
        rec = Record(mt.address, nonce=nonce, **fields)
        nonce += 1
        digest = rec.digest(ledger.domain)
        sigs = b"".join(x.sign_digest(digest) for x in keys[:k])
        return ledger.submit(rec, sigs, mt).gas_used

    costly = {"poi": U32, "slot": U32, "reading": U64, "x": U64, "y": U64}
    rows = []
    for phase in ("no MT revoked", "an MT revoked"):
        if phase == "an MT revoked":
            step = governance.propose_revocation(ledger, other.address, keys[0])
            for key in keys[1:k]:
                step = governance.approve(ledger, step.proposal, key)
            assert step.executed
        used = [store(_fields(rng)) for _ in range(records)]
        rows.append((phase, sum(used) / len(used), store(costly)))
    return rows


def throughput(k: int, orgs: int, mode: str, records: int, workdir: Path) -> tuple[float, float]:
    """(records/s, CPU seconds per record) of one session on the embedded chain."""
    cfg = LedgerConfig(mode=mode, threshold=k, batch_size=5000)  # type: ignore[arg-type]
    session = LedgerSession(16, workdir, chain=EmbeddedChain(), cfg=cfg, orgs=orgs)
    try:
        events = synthetic_events(records, 16)
        cpu = time.process_time()
        report = session.submit_events(events)
        cpu = time.process_time() - cpu
        assert report.confirmed == records, report
    finally:
        session.close()
    return report.records_per_s, cpu / records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=2000, help="per-record mode, per k")
    ap.add_argument("--batch-records", type=int, default=20000, help="batch mode, per k")
    ap.add_argument("--gas-records", type=int, default=50)
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    base = None
    for n, k in [(1, 1), *((3, k) for k in args.ks)]:
        for phase, mean, worst in gas_rows(n, k, args.gas_records):
            if phase == "no MT revoked" and n == 3:
                extra = "" if base is None else f"  (+{mean - base:,.0f} over k = 1 of 3)"
                base = mean if k == 1 else base
            else:
                extra = ""
            print(
                f"gas  k={k} of n={n}  {phase:14s} mean {mean:9,.0f}  costliest {worst:9,}{extra}"
            )
    if args.skip_throughput:
        return
    configs = [(1, 1), *((k, 3) for k in args.ks)]
    with tempfile.TemporaryDirectory(prefix="bench-consortium-") as tmp:
        for mode, records in (("record", args.records), ("batch", args.batch_records)):
            for k, orgs in configs:
                if records <= 0:
                    continue
                rate, cpu = throughput(k, orgs, mode, records, Path(tmp) / f"{mode}-{k}-{orgs}")
                print(
                    f"throughput  {mode:6s} k={k} of n={orgs}  {records} records  "
                    f"{rate:9,.1f} records/s  {1000 * cpu:6.2f} ms CPU/record (this process)  "
                    f"load {os.getloadavg()[0]:.2f}"
                )


if __name__ == "__main__":
    main()
