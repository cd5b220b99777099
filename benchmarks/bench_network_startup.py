"""Start-up time and sealing rate of local geth Clique networks of a few shapes.

For each shape: seconds from `up` to "all peered and sealing", then the mean block interval
over a fixed observation window (target: the Clique period, 1 s), then `down --wipe` time.
Usage: .venv/bin/python benchmarks/bench_network_startup.py [--observe 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from chainsense import devnet as network


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--observe", type=float, default=10.0, help="seconds to watch sealing")
    args = ap.parse_args()
    print(f"{'sealers':>7} {'followers':>9} {'up s':>6} {'block interval s':>17} {'down s':>7}")
    for sealers, followers in ((1, 1), (3, 1), (3, 2)):
        with tempfile.TemporaryDirectory(prefix="bench-net-") as tmp:
            d = Path(tmp) / "net"
            t0 = time.monotonic()
            network.up(d, network.NetworkSpec(sealers=sealers, followers=followers, period=1))
            up_s = time.monotonic() - t0
            try:
                first, ta = min(s.head or 0 for s in network.status(d)), time.monotonic()
                time.sleep(args.observe)
                last, tb = min(s.head or 0 for s in network.status(d)), time.monotonic()
            finally:
                t1 = time.monotonic()
                network.down(d, wipe=True)
                down_s = time.monotonic() - t1
            interval = (tb - ta) / max(1, last - first)
            print(f"{sealers:>7} {followers:>9} {up_s:>6.1f} {interval:>17.2f} {down_s:>7.1f}")


if __name__ == "__main__":
    main()
