"""Learning curves with 95% bands from ``bench_learning.py --json`` files, one panel per file.

Each run's curve (training episodes' mean energy efficiency per compiled chunk, with exploration)
is interpolated onto a common env-step grid; the line is the mean over training seeds and the
band its 95% Student-t interval (no band with one seed). Dashed lines: the baselines' held-out
evaluation means.

    python benchmarks/plot_learning.py runs/bench_paper.json runs/bench_energy.json --out curves.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from scipy import stats

from figures import save_figure


def band(curves: list[list[dict]], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Common x grid, mean and 95% half-width of ``key`` over the runs' curves."""
    xs = [np.array([r["env_steps"] for r in c]) for c in curves]
    grid = np.linspace(max(x[0] for x in xs), min(x[-1] for x in xs), 100)
    ys = []
    for c, x in zip(curves, xs, strict=True):
        y = np.array([r[key] for r in c], dtype=float)
        ok = np.isfinite(y)
        ys.append(np.interp(grid, x[ok], y[ok]))
    arr = np.array(ys)
    half = np.zeros(len(grid))
    if len(arr) > 1:
        half = stats.t.ppf(0.975, len(arr) - 1) * arr.std(axis=0, ddof=1) / np.sqrt(len(arr))
    return grid, arr.mean(axis=0), half


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reports", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    fig = Figure(figsize=(5.5 * len(args.reports), 4))
    axes = np.atleast_1d(fig.subplots(1, len(args.reports)))
    for ax, path in zip(axes, args.reports, strict=True):
        rep = json.loads(path.read_text(encoding="utf-8"))
        for i, (algo, runs) in enumerate(rep["runs"].items()):
            x, mean, half = band([r["curve"] for r in runs], "energy_efficiency")
            ax.plot(x, mean, color=f"C{i}", label=f"{algo} ({len(runs)} seed(s), training)")
            ax.fill_between(x, mean - half, mean + half, color=f"C{i}", alpha=0.25)
        for j, (name, row) in enumerate(rep["rows"].items()):
            if name not in rep["runs"] and name != "random":
                ax.axhline(row["energy_efficiency"][0], ls="--", color=f"C{j}", label=name)
        ax.set_title(f"{rep['preset']}: energy efficiency", fontsize=10)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, args.out)


if __name__ == "__main__":
    main()
