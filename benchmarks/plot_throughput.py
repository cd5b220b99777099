"""Bar chart of ``bench_learning.py --throughput --json`` reports: one group per report, one bar
per loop (``mappo``, ``mappo@2``, ...), env steps per CPU second (the figure a shared machine does
not distort) beside env steps per wall-clock second, with each report's load average.

    python benchmarks/plot_throughput.py default.json e2m2.json --out throughput.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from figures import save_figure


def load(path: Path) -> dict:
    """A throughput report, or exit naming the file that is not one."""
    report = json.loads(path.read_text(encoding="utf-8"))
    if "throughput" not in report:
        raise SystemExit(f"{path.name}: not a --throughput report")
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reports", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    reports = [(p.stem, load(p)) for p in args.reports]
    loops = sorted({name for _, r in reports for name in r["throughput"]})
    fig = Figure(figsize=(max(6.0, 1.6 * len(reports)), 6.5))
    axes = fig.subplots(2, 1, sharex=True)
    x = np.arange(len(reports))
    width = 0.8 / len(loops)
    for ax, key, label in (
        (axes[0], "env_steps_cpu_s", "env steps per CPU second"),
        (axes[1], "env_steps_s", "env steps per wall-clock second"),
    ):
        for i, loop in enumerate(loops):
            ys = [r["throughput"].get(loop, {}).get(key, np.nan) for _, r in reports]
            ax.bar(x + (i - (len(loops) - 1) / 2) * width, ys, width, label=loop)
        ax.set_ylabel(label, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    names = [f"{stem}\nload {r['load_before'][0]:.1f}" for stem, r in reports]
    axes[1].set_xticks(x, names, fontsize=8)
    fig.suptitle("MAPPO compiled loop, updates included (paper preset)", fontsize=10)
    save_figure(fig, args.out)


if __name__ == "__main__":
    main()
