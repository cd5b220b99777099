"""Feed-forward vs GRU MAPPO from ``bench_learning.py --json`` reports, one row per preset.

Each report is one arm (one MAPPO config, its training seeds); the arm is named by its
config's ``recurrent`` flag. Left: the training curves (energy efficiency of the training
episodes, mean over seeds with a 95% band) of every arm of the preset, the baselines of its
first report dashed. Right: the failure slots of the held-out episodes, mean per episode of
parked and stuck MT-slots, one bar per arm (mean over seeds) with each seed as a dot.

    python benchmarks/plot_recurrent.py paper_ff.json paper_gru.json energy_ff.json \
        energy_gru.json --out recurrent.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from figures import save_figure
from plot_learning import band

FAILURE_SLOTS = ("parked_slots", "stuck_slots")


def arm_name(report: dict[str, Any]) -> str:
    """'GRU' or 'feed-forward', from the report's MAPPO config."""
    return "GRU" if report["config"]["mappo"].get("recurrent", False) else "feed-forward"


def by_preset(paths: list[Path]) -> dict[str, list[dict[str, Any]]]:
    """The reports grouped by preset, in the order given; SystemExit naming a non-MAPPO one."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for path in paths:
        rep = json.loads(path.read_text(encoding="utf-8"))
        if "mappo" not in rep.get("runs", {}):
            raise SystemExit(f"{path.name}: not a bench_learning.py report with MAPPO runs")
        groups.setdefault(rep["preset"], []).append(rep)
    return groups


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reports", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    groups = by_preset(args.reports)
    fig = Figure(figsize=(11, 3.8 * len(groups)))
    axes = np.atleast_2d(fig.subplots(len(groups), 2))
    for (preset, reps), (ax_curve, ax_fail) in zip(groups.items(), axes, strict=True):
        width = 0.8 / len(reps)
        for i, rep in enumerate(reps):
            runs = rep["runs"]["mappo"]
            x, mean, half = band([r["curve"] for r in runs], "energy_efficiency")
            label = f"{arm_name(rep)} ({len(runs)} seed(s))"
            ax_curve.plot(x, mean, color=f"C{i}", label=label)
            ax_curve.fill_between(x, mean - half, mean + half, color=f"C{i}", alpha=0.25)
            for j, key in enumerate(FAILURE_SLOTS):
                seeds = [r["mean"][key] for r in runs]
                ax_fail.bar(j + i * width, np.mean(seeds), width, color=f"C{i}", alpha=0.7)
                ax_fail.plot([j + i * width] * len(seeds), seeds, "k.", ms=4)
        for j, (name, row) in enumerate(reps[0]["rows"].items()):
            if name != "mappo":
                ax_curve.axhline(
                    row["energy_efficiency"][0], ls="--", color=f"C{j + 4}", label=name
                )
        ax_curve.set_title(f"{preset}: energy efficiency (training episodes)", fontsize=10)
        ax_curve.set_xlabel("env steps")
        ax_curve.grid(alpha=0.3)
        ax_curve.legend(fontsize=7)
        ax_fail.set_xticks([j + 0.4 - width / 2 for j in range(len(FAILURE_SLOTS))])
        ax_fail.set_xticklabels([k.replace("_", " ") for k in FAILURE_SLOTS])
        ax_fail.set_title(f"{preset}: held-out MT-slots per episode (seeds as dots)", fontsize=10)
        ax_fail.grid(alpha=0.3, axis="y")
    save_figure(fig, args.out)


if __name__ == "__main__":
    main()
