"""Model selection on validation maps, run by run: the validation score of every scored fleet
against env steps, the fleet each run kept, and where the heuristics stand.

Reads a ``bench_learning.py --json`` report of runs trained with ``select_every > 0``. One line
per training seed: the score (the efficiency, or the metric the runs were chosen by,
``select_metric``) on the validation maps at every scoring; a star marks the
fleet kept, labelled with its score on the held-out maps. Dashed grey lines are ``greedy`` and
``greedy-local`` on the held-out maps; ``greedy-fair`` and ``greedy-near`` (greedy at its best
fixed weights), ``greedy-backlog`` (greedy counting each PoI's backlog), ``greedy-jain`` (and
Jain's index), ``greedy-route`` (greedy-near with the isolation and territory terms) and
``greedy-grid`` (greedy-backlog standing within one move), ``greedy-endgame`` and
``greedy-travel`` (`charging`'s recharge rule, and with the lattice and the travel price), solid
purple, olive, cyan, pink, red, teal, dark green and magenta, and ``greedy-belief`` (greedy on each
MT's belief), dotted brown, where the report has them; the dotted black one issue 14's target
on that world: 1.03 x greedy on ``paper`` without world overrides, 1.10 x the better of greedy
and greedy-local elsewhere.

    python benchmarks/plot_selection.py docs/figures/learning/selection/paper_20min.json \
        --out docs/figures/learning/selection/paper_20min.png
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from matplotlib.figure import Figure

from figures import save_figure


def scored(run: dict) -> tuple[list[float], list[float]]:
    """(env steps, validation score) of every scoring of one run, from its selection report."""
    history = run.get("selection", {}).get("history", [])
    return [float(s) for s, _ in history], [float(v) for _, v in history]


#: (line style, colour) of every heuristic drawn; the first two are the issue's yardstick
STYLES: dict[str, tuple[str, str]] = {
    "greedy": ("--", "grey"),
    "greedy-local": ("-.", "grey"),
    "greedy-fair": ("-", "tab:purple"),  # drawn, but not the yardstick
    "greedy-fair-jain": ("-", "darkgoldenrod"),
    "greedy-near": ("-", "tab:olive"),
    "greedy-backlog": ("-", "tab:cyan"),
    "greedy-jain": ("-", "tab:pink"),
    "greedy-route": ("-", "tab:red"),
    "greedy-belief": (":", "tab:brown"),
    "greedy-grid": ("-", "teal"),
    "greedy-endgame": ("-", "darkgreen"),
    "greedy-travel": ("-", "magenta"),
    "coverage": ("-", "black"),
}


def metric(report: dict) -> str:
    """The metric the report's runs were chosen by (``select_metric``; the energy efficiency in
    reports from before it could be chosen)."""
    for runs in report.get("runs", {}).values():
        for run in runs:
            if run.get("selection"):
                return str(run["selection"].get("metric", "energy_efficiency"))
    return "energy_efficiency"


def heuristics(
    report: dict, names: tuple[str, ...] = ("greedy", "greedy-local")
) -> dict[str, float]:
    """Held-out score (by the report's selection :func:`metric`) of the ``names`` heuristics
    (default: the issue's yardstick), those the report measured."""
    rows, score = report["rows"], metric(report)
    return {
        name: rows[name][score][0]
        for name in names
        if name in rows and not math.isnan(rows[name][score][0])
    }


def target(report: dict) -> tuple[float, str] | None:
    """(level, label) of issue 14's target on the report's preset, from its held-out rows."""
    levels = heuristics(report)
    if report["preset"] == "paper" and not report.get("args", {}).get("world"):
        return (1.03 * levels["greedy"], "1.03 x greedy") if "greedy" in levels else None
    if not levels:
        return None
    best = max(levels, key=lambda name: levels[name])
    return 1.10 * levels[best], f"1.10 x {best}"


def kept(run: dict) -> tuple[float, float, float]:
    """(env steps, validation score, held-out score by the same metric) of the fleet one run
    kept."""
    sel = run["selection"]
    return (
        float(sel["best_env_steps"]),
        float(sel["best_score"]),
        float(run["mean"][sel.get("metric", "energy_efficiency")]),
    )


def plot(report: dict, out: Path) -> Path:
    """Draw every learned run of ``report``; refuses a report without selection."""
    runs = [(algo, r) for algo, rs in report["runs"].items() for r in rs if r.get("selection")]
    if not runs:
        raise SystemExit("plot_selection: no run of this report was trained with select_every > 0")
    fig = Figure(figsize=(8.0, 4.6))
    ax = fig.add_subplot()
    for algo, run in runs:
        x, y = scored(run)
        line = ax.plot([v / 1e6 for v in x], y, lw=1.1, label=f"{algo} seed {run['seed']}")[0]
        bx, by, test = kept(run)
        ax.plot([bx / 1e6], [by], "*", ms=13, color=line.get_color())
        ax.annotate(
            f"held-out {test:.3f}",
            (bx / 1e6, by),
            textcoords="offset points",
            xytext=(4, 6),
            fontsize=7,
            color=line.get_color(),
        )
    for name, level in heuristics(report, tuple(STYLES)).items():
        style, colour = STYLES[name]
        ax.axhline(level, ls=style, color=colour, lw=1.3, label=f"{name} (held-out maps)")
    goal = target(report)
    if goal is not None:
        ax.axhline(goal[0], ls=":", color="black", lw=1, label=goal[1])
    ax.set_xlabel("env steps (millions)")
    ax.set_ylabel(f"{metric(report).replace('_', ' ')} on the validation maps")
    world = " ".join([report["preset"], *report.get("args", {}).get("world", [])])
    ax.set_title(
        f"{world}: fleets scored on validation maps, the star is the one kept", fontsize=10
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return save_figure(fig, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path, help="bench_learning.py --json report")
    ap.add_argument("--out", type=Path, default=Path("selection.png"))
    args = ap.parse_args()
    report = json.loads(args.report.read_text(encoding="utf-8"))
    plot(report, args.out)


if __name__ == "__main__":
    main()
