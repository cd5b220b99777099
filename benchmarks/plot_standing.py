"""Where the learned fleets stand: held-out efficiency per scenario, relative to the better
heuristic, from ``bench_learning.py --json`` reports.

Each argument is a report, optionally ``REPORT=LABEL`` to name its learned fleet (``GRU``,
``BC+PPO``, ...). For every report the bars are each policy's energy efficiency divided by the
better of ``greedy`` and ``greedy-local`` in that same report (the issue's yardstick; ``greedy``
alone where greedy-local was not run; the tuned and belief greedies are bars, not the
yardstick), error bars its 95% interval on the same scale; the dashed line is the issue's target
(1.03 on ``paper`` without world overrides, 1.10 elsewhere).

    python benchmarks/plot_standing.py paper.json energy.json=GRU --out standing.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from matplotlib import colormaps
from matplotlib.figure import Figure

from figures import labelled, save_figure

HEURISTICS = ("greedy", "greedy-local")
#: greedy-fair, greedy-fair-jain, greedy-near, greedy-backlog, greedy-jain and greedy-route
#: (greedy at its best fixed weights), greedy-endgame (greedy on the clock-aware recharge rule),
#: greedy-belief (greedy on each MT's belief) and the coverage tour are drawn but are not the
#: issue's yardstick
BASELINES = (
    "random",
    *HEURISTICS,
    "greedy-fair",
    "greedy-fair-jain",
    "greedy-near",
    "greedy-backlog",
    "greedy-jain",
    "greedy-route",
    "greedy-endgame",
    "greedy-belief",
    "coverage",
    "planner",
)


def scenario(report: dict) -> str:
    """The preset and its world overrides, e.g. ``paper observe_radius=3 share_delay=1``."""
    return " ".join([report["preset"], *report["args"].get("world", [])])


def target(report: dict) -> float:
    """The issue's target ratio for this report's scenario."""
    return 1.03 if scenario(report) == "paper" else 1.10


def standing(report: dict, label: str | None = None) -> dict[str, tuple[float, float]]:
    """{policy: (efficiency / better heuristic, 95% half-width on that scale)}; learned fleets
    renamed ``label`` when given."""
    rows = report["rows"]
    ref = max(rows[h]["energy_efficiency"][0] for h in HEURISTICS if h in rows)
    scaled = ratios_to(rows, ref)
    return {label if label and n not in BASELINES else n: r for n, r in scaled.items()}


def ratios_to(rows: dict, ref: float) -> dict[str, tuple[float, float]]:
    """{policy: (efficiency / ``ref``, 95% half-width on that scale)} of a report's rows; a NaN
    half-width (one sample) is drawn as none."""
    out = {}
    for name, row in rows.items():
        mean, half = row["energy_efficiency"]
        out[name] = (mean / ref, (half if half == half else 0.0) / ref)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reports", nargs="+", help="REPORT.json or REPORT.json=LABEL")
    ap.add_argument("--out", type=Path, default=Path("standing.png"))
    args = ap.parse_args()
    groups = []
    for item in args.reports:
        path, label = labelled(item)
        rep = json.loads(path.read_text(encoding="utf-8"))
        groups.append((scenario(rep), target(rep), standing(rep, label)))
    fig = Figure(figsize=(max(6.4, 1.9 * len(groups)), 4.2))
    ax = fig.add_subplot()
    names = list(dict.fromkeys(n for _, _, s in groups for n in s))
    width = 0.8 / len(names)
    # one colour per series: the default cycle repeats after 10, and 11 series are drawn today
    palette = colormaps["tab20"].colors
    for j, name in enumerate(names):
        xs = [
            i + (j - (len(names) - 1) / 2) * width
            for i, (_, _, s) in enumerate(groups)
            if name in s
        ]
        pts = [s[name] for _, _, s in groups if name in s]
        ax.bar(
            xs,
            [r for r, _ in pts],
            width,
            yerr=[h for _, h in pts],
            capsize=2,
            label=name,
            color=palette[(2 * j) % 20 if j < 10 else (2 * j + 1) % 20],
        )
    for i, (_, goal, _) in enumerate(groups):
        ax.hlines(goal, i - 0.45, i + 0.45, colors="k", linestyles="dashed")
    ax.set_xticks(range(len(groups)), [g for g, _, _ in groups], fontsize=8)
    ax.set_ylabel("efficiency / better heuristic")
    ax.set_title("learned fleets against the heuristics (dashed: the issue's target)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # off the bars
    save_figure(fig, args.out, dpi=120)


if __name__ == "__main__":
    main()
