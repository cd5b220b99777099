"""Fault tolerance of the geth network: crash a sealer and a follower while MTs submit records.

Starts a 3-sealer + 2-follower Clique network (block period 1 s), runs the fault drill
(:mod:`chainsense.experiments.faults`: the nodes are crashed while every MT flushes its
pipelined chunks), prints records submitted / confirmed / lost, blocks sealed while the two
nodes were down, and the time the restarted nodes took to resync; then stops and wipes the
network. Usage: .venv/bin/python benchmarks/bench_network_faults.py [--rounds N] [--per-round N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from chainsense import devnet as network
from chainsense.experiments.faults import run_drill


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sealers", type=int, default=3)
    ap.add_argument("--followers", type=int, default=2)
    ap.add_argument("--mts", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument(
        "--per-round", type=int, default=300, help="records per MT and round (> 2 chunks of 128)"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        d = Path(tmp) / "net"
        t0 = time.monotonic()
        spec = network.NetworkSpec(sealers=args.sealers, followers=args.followers, period=1)
        with network.running(d, spec):
            print(
                f"network up ({args.sealers} sealers + {args.followers} followers) "
                f"in {time.monotonic() - t0:.1f} s"
            )
            report = run_drill(
                d,
                mts=args.mts,
                rounds=args.rounds,
                per_round=args.per_round,
                fail_after=args.rounds // 4,
                restart_after=args.rounds // 2 + 1,
                fail=("sealer-3", "follower-1"),
                progress=lambda m: print("  " + m, flush=True),
            )
    for line in report.lines():
        print(line)
    print("no record lost" if report.lost == 0 and report.duplicates == 0 else "RECORDS LOST")


if __name__ == "__main__":
    main()
