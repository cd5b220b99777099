"""The availability experiment's results: per-level summaries, CSV, a Markdown table, the plot."""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from chainsense.experiments.ddos_trial import Trial


@dataclass(frozen=True)
class Summary:
    """Mean and standard deviation over repetitions for one (system, attack, level)."""

    system: str
    attack: str
    level: float
    reps: int
    attempts: int
    success_mean: float
    success_std: float
    failure_mean: float
    failure_std: float
    timeout_mean: float
    timeout_std: float
    p50_ms_mean: float
    p99_ms_mean: float
    p99_ms_std: float
    attack_rate_achieved: float
    server_cpu_pct: float
    server_rss_mib: float


def summarize(trials: list[Trial]) -> list[Summary]:
    """Mean and (sample) standard deviation over repetitions per (system, attack, level)."""
    groups: dict[tuple[str, str, float], list[Trial]] = {}
    for t in trials:
        groups.setdefault((t.system, t.attack, t.level), []).append(t)

    def ms(xs: list[float]) -> tuple[float, float]:
        xs = [x for x in xs if not math.isnan(x)]
        if not xs:
            return math.nan, math.nan
        return statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0

    out = []
    for (system, attack, level), ts in sorted(groups.items()):
        sm, ss = ms([t.success_ratio for t in ts])
        fm, fs = ms([t.failure_ratio for t in ts])
        tm, tsd = ms([t.timeout_ratio for t in ts])
        p50, _ = ms([t.p50_ms for t in ts])
        p99, p99s = ms([t.p99_ms for t in ts])
        out.append(
            Summary(
                system,
                attack,
                level,
                len(ts),
                sum(t.attempts for t in ts),
                sm,
                ss,
                fm,
                fs,
                tm,
                tsd,
                p50,
                p99,
                p99s,
                statistics.fmean(t.attack_rate_achieved for t in ts),
                ms([t.server_cpu_pct for t in ts])[0],
                ms([t.server_rss_mib for t in ts])[0],
            )
        )
    return out


def write_csv(path: Path, rows: list[Any]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([fl.name for fl in fields(rows[0])])
        for r in rows:
            w.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in asdict(r).values()])
    return path


def markdown_table(summary: list[Summary]) -> str:
    """The per-level table (means ± std over repetitions) as Markdown."""
    head = (
        "| system | attack | attack /s (nominal) | attack /s (achieved) | success "
        "| immediate failure | timeout | p50 ms | p99 ms | server CPU % | server RSS MiB |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = [
        f"| {s.system} | {s.attack} | {s.level:g} | {s.attack_rate_achieved:.0f} "
        f"| {s.success_mean:.3f} ± {s.success_std:.3f} "
        f"| {s.failure_mean:.3f} ± {s.failure_std:.3f} "
        f"| {s.timeout_mean:.3f} ± {s.timeout_std:.3f} "
        f"| {s.p50_ms_mean:.1f} | {s.p99_ms_mean:.1f} "
        f"| {s.server_cpu_pct:.0f} | {s.server_rss_mib:.0f} |"
        for s in summary
    ]
    return head + "\n".join(rows) + "\n"


_ROWS = (
    ("query success ratio", "success_mean", "success_std", (0, 1.05)),
    ("immediate failure ratio", "failure_mean", "failure_std", (0, 1.05)),
    ("p99 latency of successes (ms)", "p99_ms_mean", "p99_ms_std", None),
)


def plot(summary: list[Summary], path: Path) -> Path:
    """One column of panels per attack (success ratio, immediate failure ratio, p99 latency per
    level, error bars = std); the no-attack baseline (attack ``none``) is every column's 0."""
    attacks = sorted({s.attack for s in summary if s.attack != "none"}) or ["none"]
    systems = sorted({s.system for s in summary})
    fig = Figure(figsize=(4.6 * len(attacks), 10))
    axes = fig.subplots(len(_ROWS), len(attacks), squeeze=False)
    for col, attack in enumerate(attacks):
        mine = [s for s in summary if s.attack in (attack, "none")]
        levels = sorted({s.level for s in mine})
        xs = range(len(levels))
        for row, (title, mean, std, ylim) in enumerate(_ROWS):
            ax = axes[row][col]
            for k, system in enumerate(systems):
                by_level = {s.level: s for s in mine if s.system == system}
                ys = [getattr(by_level[lv], mean) if lv in by_level else math.nan for lv in levels]
                es = [getattr(by_level[lv], std) if lv in by_level else math.nan for lv in levels]
                shift = (k - (len(systems) - 1) / 2) * 0.06
                ax.errorbar(
                    [x + shift for x in xs], ys, yerr=es, marker="o", capsize=3, label=system
                )
            ax.set_xticks(list(xs), [f"{lv:g}" for lv in levels])
            ax.set_title(f"{attack}: {title}", fontsize=10)
            if row == len(_ROWS) - 1:
                ax.set_xlabel("attack rate (attempts / s)")
            if ylim:
                ax.set_ylim(*ylim)
            else:
                ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
