"""Value of sharing: energy efficiency vs ``share_delay`` from ``bench_learning.py --json`` files.

Each report is one ``bench_learning.py --world observe_radius=R --world share_delay=D`` run, or
one ``bench_heldout.py`` report of its fleets on more maps; the plot puts every policy's
held-out efficiency (error bars: its 95% interval, over training seeds for a learned fleet and
over episodes for a baseline) against the delay, "never" for -1 (no ledger: an MT only knows
what it saw itself).

    python benchmarks/plot_sharing.py runs/share_*.json --out docs/figures/learning_sharing.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from matplotlib.figure import Figure

from figures import save_figure

#: legend names where a report's row name alone would mislead
LABELS = {"fleet": "learned fleet (bench_heldout.py)", "greedy": "greedy (sees all data)"}


def share_delay(report: dict) -> int:
    """The ``share_delay`` a report ran with (0, the world's default, when not overridden)."""
    if "params" in report:  # bench_heldout.py: the fleets' own world
        return int(report["params"]["share_delay"])
    for item in report["args"].get("world", []):
        key, _, value = item.partition("=")
        if key == "share_delay":
            return int(value)
    return 0


def series(reports: list[dict]) -> dict[str, list[tuple[int, float, float]]]:
    """{policy: [(delay, mean efficiency, 95% half-width)]}, ordered by delay, never last."""
    out: dict[str, list[tuple[int, float, float]]] = {}
    for rep in reports:
        d = share_delay(rep)
        for name, row in rep["rows"].items():
            mean, half = row["energy_efficiency"]
            out.setdefault(name, []).append((d, mean, half))
    order = lambda p: (p[0] < 0, p[0])  # noqa: E731  (-1, "never", goes last)
    return {name: sorted(pts, key=order) for name, pts in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reports", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=Path("sharing.png"))
    args = ap.parse_args()
    reports = [json.loads(p.read_text(encoding="utf-8")) for p in args.reports]
    data = series(reports)
    delays = sorted({d for pts in data.values() for d, _, _ in pts}, key=lambda d: (d < 0, d))
    pos = {d: i for i, d in enumerate(delays)}
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    for name, pts in data.items():
        ax.errorbar(
            [pos[d] for d, _, _ in pts],
            [m for _, m, _ in pts],
            yerr=[h for _, _, h in pts],
            marker="o",
            capsize=3,
            label=LABELS.get(name, name),
        )
    ax.set_xticks(range(len(delays)), ["never" if d < 0 else str(d) for d in delays])
    ax.set_xlabel("share_delay (slots until an MT learns the others' collections)")
    ax.set_ylabel("energy efficiency (held-out maps)")
    first = reports[0]
    world = (
        f"observe_radius = {first['params']['observe_radius']}"
        if "params" in first
        else f"{first['preset']} with observe_radius"
    )
    ax.set_title(f"value of sharing, {world}")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, args.out, dpi=120)


if __name__ == "__main__":
    main()
