"""Aggregating a sweep directory, finished or not: one table and one figure per swept axis.

Learned fleets: each metric's mean over a run's evaluation episodes, then the mean over training
seeds with a 95% Student-t interval over those seeds (the spread that matters when asking
whether an algorithm is better, not the spread of episodes). Baselines train nothing, so their
interval is over the evaluation episodes. Unreadable or foreign result files are skipped with a
note, so a report can always be made from whatever has finished.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from scipy import stats

from chainsense import jsonlimits
from chainsense.experiments import sweep_run
from chainsense.marl import registry
from chainsense.sim.metrics import PAPER_METRICS

MAX_RESULT_BYTES = 16 * 1024 * 1024
MAX_RESULTS = 100_000


@dataclass
class Point:
    """One (scenario, axis, value, policy) of the table."""

    scenario: str
    axis: str
    value: Any
    policy: str
    n: int
    over: str  # "seeds" or "episodes"
    mean: dict[str, float]
    ci: dict[str, float]

    def text(self, metric: str) -> str:
        """``mean +- half-width``, or the mean alone when one value leaves no interval."""
        mean = f"{self.mean[metric]:.3f}"
        return mean if self.n < 2 else f"{mean} +- {self.ci[metric]:.3f}"

    @property
    def count(self) -> str:
        """What the interval is over, e.g. ``2 seeds`` or ``1 seed``."""
        return f"{self.n} {self.over if self.n != 1 else self.over[:-1]}"


@dataclass
class Report:
    """The aggregated table, the files written and the result files that were skipped."""

    points: list[Point]
    runs: int
    files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% Student-t interval (0 for one value)."""
    x = np.asarray(values, np.float64)
    if len(x) < 2:
        return float(x.mean()), 0.0
    return float(x.mean()), float(
        stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    )


def load_results(directory: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every whole result under ``directory/runs`` (bounded in size and count), and the skipped."""
    results, skipped = [], []
    for i, path in enumerate(sorted((directory / "runs").rglob(sweep_run.RESULT))):
        if i >= MAX_RESULTS:
            skipped.append(f"more than {MAX_RESULTS} results; the rest ignored")
            break
        try:
            data = jsonlimits.load_file(path, "result", max_bytes=MAX_RESULT_BYTES)
        except jsonlimits.JSONLimitError as exc:
            skipped.append(f"{path.relative_to(directory)}: {exc}")
            continue
        if not isinstance(data, dict) or data.get("format") != sweep_run.FORMAT:
            skipped.append(f"{path.relative_to(directory)}: not a sweep result")
            continue
        results.append(data)
    return results, skipped


def aggregate(results: list[dict[str, Any]]) -> list[Point]:
    """Table rows in order of scenario, axis, value and policy (learned fleets first)."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        groups[(r["scenario"], r["axis"], str(r["value"]), r["policy"])].append(r)
    order = {p: i for i, p in enumerate(registry.POLICY_NAMES)}
    points = []
    for (scen, axis, _, pol), runs in groups.items():
        if pol in registry.LEARNED:
            per = {m: [float(np.mean(r["per_episode"][m])) for r in runs] for m in PAPER_METRICS}
            over = "seeds"
        else:
            per = {m: list(runs[0]["per_episode"][m]) for m in PAPER_METRICS}
            over = "episodes"
        stats_ = {m: mean_ci(v) for m, v in per.items()}
        points.append(
            Point(
                scen,
                axis,
                runs[0]["value"],
                pol,
                len(runs) if over == "seeds" else len(per[PAPER_METRICS[0]]),
                over,
                {m: s[0] for m, s in stats_.items()},
                {m: s[1] for m, s in stats_.items()},
            )
        )
    points.sort(key=lambda p: (p.scenario, p.axis, _sortable(p.value), order.get(p.policy, 99)))
    return points


def _sortable(value: Any) -> tuple[int, float, str]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _csv(points: list[Point], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        cols = [f"{m}_{s}" for m in PAPER_METRICS for s in ("mean", "ci95")]
        w.writerow(["scenario", "axis", "value", "policy", "n", "ci_over", *cols])
        for p in points:
            vals = [f"{v:.6g}" for m in PAPER_METRICS for v in (p.mean[m], p.ci[m])]
            w.writerow([p.scenario, p.axis, p.value, p.policy, p.n, p.over, *vals])
    return path


def markdown(points: list[Point]) -> str:
    """The table as Markdown (mean +- 95% CI half-width; the mean alone from a single value)."""
    head = "| scenario | axis | value | policy | n | " + " | ".join(PAPER_METRICS) + " |"
    lines = [head, "|" + "---|" * (5 + len(PAPER_METRICS))]
    for p in points:
        cells = [p.text(m) for m in PAPER_METRICS]
        lines.append(
            f"| {p.scenario} | {p.axis} | {p.value} | {p.policy} | {p.count} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines) + "\n"


def _colour(policy: str) -> str:
    """The same colour for a policy in every figure."""
    return f"C{registry.POLICY_NAMES.index(policy) % 10}"


def plot_axis(points: list[Point], scenario: str, axis: str, path: Path) -> Path:
    """One panel per metric vs the axis, one line per policy with 95% CI error bars."""
    sel = [p for p in points if p.scenario == scenario and p.axis == axis]
    fig = Figure(figsize=(4.0 * len(PAPER_METRICS), 3.4))
    axes = fig.subplots(1, len(PAPER_METRICS))
    policies = [q for q in registry.POLICY_NAMES if any(p.policy == q for p in sel)]
    for ax, metric in zip(axes, PAPER_METRICS, strict=True):
        for pol in policies:
            line = [p for p in sel if p.policy == pol]
            xs = list(range(len(line))) if any(isinstance(p.value, str) for p in line) else None
            x = xs if xs is not None else [float(p.value) for p in line]
            y = [p.mean[metric] for p in line]
            err = [p.ci[metric] for p in line]
            ax.errorbar(x, y, yerr=err, marker="o", ms=4, capsize=3, label=pol, color=_colour(pol))
        ax.set_title(metric.replace("_", " "), fontsize=10)
        ax.set_xlabel(axis.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{scenario}: mean +- 95% CI (learned: over training seeds; baselines: episodes)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def write_report(directory: str | Path) -> Report:
    """Aggregate whatever has finished in ``directory`` into CSV, Markdown and PNG files."""
    d = Path(directory)
    results, skipped = load_results(d)
    points = aggregate(results)
    rep = Report(points, len(results), skipped=skipped)
    if not points:
        return rep
    rep.files.append(_csv(points, d / "sweep_summary.csv"))
    md = d / "sweep_summary.md"
    md.write_text(markdown(points), encoding="utf-8")
    rep.files.append(md)
    for scen, axis in sorted({(p.scenario, p.axis) for p in points}):
        name = f"metrics_vs_{axis.replace('+', '_')}" + (f"_{scen}" if scen != "paper" else "")
        rep.files.append(plot_axis(points, scen, axis, d / f"{name}.png"))
    return rep
