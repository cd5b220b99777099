"""What standing between the PoIs buys, against the lattice's spacing: every point of
``bench_weights.py --grid S --json`` reports (one per spacing; 0 is the PoIs only) as a ratio of
greedy on the same maps, collected / generated and energy efficiency side by side.

    for g in 0 0.5 0.25 0.125 0.0625; do
      python benchmarks/bench_weights.py --preset dynamic --maps 32 --grid $g 1,1,2 1,1,2,0.3 \
          --json weights_grid_$g.json
    done
    python benchmarks/plot_grid.py weights_grid_*.json --out grid.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from figures import save_figure

#: the ratios drawn, with their axis titles
PANELS = {
    "data_collection_ratio": "collected / generated, x greedy",
    "energy_efficiency": "energy efficiency, x greedy",
}


def load(path: Path) -> dict[str, Any]:
    """A ``bench_weights.py`` report with its lattice spacing, or exit naming the file."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise SystemExit(f"{path.name}: cannot read a report: {err}") from err
    if not isinstance(report, dict) or "points" not in report or "grid" not in report:
        raise SystemExit(f"{path.name}: not a bench_weights.py --grid report")
    return report


def series(reports: list[dict[str, Any]]) -> dict[str, list[tuple[float, dict[str, float]]]]:
    """``{"1, 1, 2": [(spacing, {metric: x greedy}), ...]}`` in order of spacing, coarsest (the
    PoIs only, spacing 0, drawn at the right) last; refused when the reports scored other maps
    or another world."""
    first = reports[0]
    for r in reports[1:]:
        if (r["maps"], r["preset"], r["world"]) != (first["maps"], first["preset"], first["world"]):
            raise SystemExit("the reports scored other maps or another world: not comparable")
    out: dict[str, list[tuple[float, dict[str, float]]]] = {}
    for r in reports:
        for point in r["points"]:
            w = point["weights"]
            label = ", ".join(f"{x:g}" for x in w[:3]) + (f", Jain {w[3]:g}" if w[3] else "")
            out.setdefault(label, []).append((float(r["grid"]), point["x_greedy"]))
    return {k: sorted(v, key=lambda s: s[0] or float("inf")) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reports", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    lines = series([load(p) for p in args.reports])
    fig = Figure(figsize=(10.0, 4.2))
    axes = fig.subplots(1, len(PANELS))
    for ax, (metric, title) in zip(axes, PANELS.items(), strict=True):
        for label, points in lines.items():
            # the PoIs only (spacing 0) sits at the coarse end, at twice the coarsest lattice
            coarsest = max((s for s, _ in points if s), default=1.0)
            xs = [s or 2 * coarsest for s, _ in points]
            ax.plot(xs, [x[metric] for _, x in points], "o-", label=f"weights {label}")
        ax.axhline(1.10, color="grey", linestyle="--", linewidth=1, label="1.10x")
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [f"{s:g}" if s else "PoIs only" for s, _ in points])
        ax.minorticks_off()
        ax.invert_xaxis()
        ax.set_xlabel("lattice spacing within one move")
        ax.set_ylabel(title)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle("greedy's rule standing anywhere within one move, validation maps", fontsize=9)
    save_figure(fig, args.out)


if __name__ == "__main__":
    main()
