"""Start-up time, sealing rate and start-up reliability of local geth Clique networks.

For each shape: seconds from `up` to "all peered and sealing", then the mean block interval
over a fixed observation window (target: the Clique period, 1 s), then `down --wipe` time.

With ``--starts N`` it instead starts a 3-sealer + 1-follower network N times (``--busy C``
keeps C cores spinning, as a loaded CI machine does) and counts the starts that stalled and the
sealers that geth handed a block before their miner ran (the precondition of the Clique start-up
deadlock, see docs/network.md). ``--no-hold`` writes the genesis with timestamp 0, as before the
start-up hold, for the comparison.
Usage: .venv/bin/python benchmarks/bench_network_startup.py [--observe 10]
       [--starts 10 [--busy 2] [--no-hold]]
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

from chainsense import devnet as network
from chainsense.devnet import genesis
from chainsense.errors import ChainsenseError


def shapes(observe: float) -> None:
    print(f"{'sealers':>7} {'followers':>9} {'up s':>6} {'block interval s':>17} {'down s':>7}")
    for sealers, followers in ((1, 1), (3, 1), (3, 2)):
        with tempfile.TemporaryDirectory(prefix="bench-net-") as tmp:
            d = Path(tmp) / "net"
            t0 = time.monotonic()
            network.up(d, network.NetworkSpec(sealers=sealers, followers=followers, period=1))
            up_s = time.monotonic() - t0
            try:
                first, ta = min(s.head or 0 for s in network.status(d)), time.monotonic()
                time.sleep(observe)
                last, tb = min(s.head or 0 for s in network.status(d)), time.monotonic()
            finally:
                t1 = time.monotonic()
                network.down(d, wipe=True)
                down_s = time.monotonic() - t1
            interval = (tb - ta) / max(1, last - first)
            print(f"{sealers:>7} {followers:>9} {up_s:>6.1f} {interval:>17.2f} {down_s:>7.1f}")


def _spin() -> None:
    while True:
        pass


def starts(count: int, busy: int, timeout: float) -> None:
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(busy)]
    for p in spinners:
        p.start()
    stalled = handed_early = 0
    spec = network.NetworkSpec(sealers=3, followers=1, period=1)
    try:
        for i in range(count):
            with tempfile.TemporaryDirectory(prefix="bench-net-") as tmp:
                d, t0 = Path(tmp) / "net", time.monotonic()
                try:
                    info = network.up(d, spec, timeout=timeout)
                except ChainsenseError as exc:
                    stalled += 1
                    print(f"start {i + 1}: stalled after {time.monotonic() - t0:.0f} s: {exc}")
                    continue
                early = [n.name for n in info.nodes if n.role == "sealer" and "discarded propagated"
                         in (d / n.datadir / "geth.log").read_text(errors="replace")]  # fmt: skip
                handed_early += bool(early)
                network.down(d, wipe=True)
                print(f"start {i + 1}: ready in {time.monotonic() - t0:.1f} s; sealers handed a "
                      f"block before their miner ran: {', '.join(early) or 'none'}")  # fmt: skip
    finally:
        for p in spinners:
            p.terminate()
    print(f"{count} starts, {busy} busy cores: {stalled} stalled, "
          f"{handed_early} with a sealer handed a block early")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--observe", type=float, default=10.0, help="seconds to watch sealing")
    ap.add_argument("--starts", type=int, default=0, help="count start-up stalls over N starts")
    ap.add_argument("--busy", type=int, default=0, help="cores to keep busy during --starts")
    ap.add_argument("--timeout", type=float, default=90.0, help="seconds before a start stalls")
    ap.add_argument("--no-hold", action="store_true", help="genesis timestamp 0 (the old start)")
    args = ap.parse_args()
    if not 0 <= args.starts <= 1000 or not 0 <= args.busy <= 64 or not 0 < args.timeout <= 600:
        ap.error("--starts must be in 0..1000, --busy in 0..64, --timeout in (0, 600]")
    if args.no_hold:
        genesis.first_block_not_before = lambda nodes, now=None: 0
    if args.starts:
        starts(args.starts, args.busy, args.timeout)
    else:
        shapes(args.observe)


if __name__ == "__main__":
    main()
