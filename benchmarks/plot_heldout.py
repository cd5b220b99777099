"""Fleets and heuristics on the same held-out maps, per scenario, as a ratio of greedy: a plot
of ``bench_heldout.py --json`` reports.

Each argument is ``LABEL=REPORT[,REPORT...]``: the reports of one scenario, scored on the same
maps of the same world (checked), whose rows are drawn together; e.g. a fleets' report and a
later one that scored another baseline on those maps. A policy in two reports must have the
same figures in both (a report made before a change to the heuristics is refused). Every bar is
a policy's mean energy efficiency over ``greedy``'s in the same group, its error bar the 95%
interval on that scale (over training seeds for fleets, over the maps for baselines); the
dashed line is 1.10x.

    python benchmarks/plot_heldout.py energy=fleets200.json,coverage200.json \
        large=large200.json,coverage_large200.json --out heldout.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from matplotlib import colormaps
from matplotlib.figure import Figure

from figures import save_figure
from plot_standing import ratios_to

TARGET = 1.10


def merged_rows(paths: list[Path]) -> dict[str, Any]:
    """The rows of reports scored on the same maps of the same world, in order of appearance;
    SystemExit naming the report whose maps, world or shared rows differ, or a group without
    greedy."""
    reports = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    rows: dict[str, Any] = {}
    for path, rep in zip(paths, reports, strict=True):
        for key in ("episodes", "params"):
            if rep.get(key) != reports[0].get(key):
                raise SystemExit(f"{path}: its {key} differ from {paths[0]}'s")
        for name, row in rep["rows"].items():
            if name in rows and rows[name]["energy_efficiency"] != row["energy_efficiency"]:
                raise SystemExit(f"{path}: its {name} row differs from an earlier report's")
            rows[name] = row
    if "greedy" not in rows:
        raise SystemExit(f"{', '.join(map(str, paths))}: no greedy row, the yardstick")
    return rows


def ratios(rows: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """{policy: (efficiency / greedy's, 95% half-width on that scale)}."""
    return ratios_to(rows, rows["greedy"]["energy_efficiency"][0])


def parse_group(text: str) -> tuple[str, list[Path]]:
    """``LABEL=REPORT[,REPORT...]`` -> (label, paths); SystemExit on a malformed argument."""
    label, sep, files = text.partition("=")
    paths = [Path(f) for f in files.split(",") if f]
    if not sep or not label or not paths:
        raise SystemExit(f"{text!r}: expected LABEL=REPORT[,REPORT...]")
    return label, paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("groups", nargs="+", help="LABEL=REPORT[,REPORT...] per scenario")
    ap.add_argument("--out", type=Path, default=Path("heldout.png"))
    args = ap.parse_args()
    groups = [(label, ratios(merged_rows(paths))) for label, paths in map(parse_group, args.groups)]
    names = list(dict.fromkeys(n for _, r in groups for n in r))
    width = 0.8 / max(len(r) for _, r in groups)
    palette = colormaps["tab20"].colors
    fig = Figure(figsize=(max(6.4, 2.2 * len(groups)), 4.2))
    ax = fig.add_subplot()
    labelled: set[str] = set()
    for i, (_, r) in enumerate(groups):  # each group's bars side by side, a colour per policy
        left = i - width * len(r) / 2
        for k, (name, (y, e)) in enumerate(r.items()):
            colour = palette[names.index(name) % len(palette)]
            label = None if name in labelled else name
            labelled.add(name)
            ax.bar(left + width * (k + 0.5), y, width, yerr=e, capsize=2, color=colour, label=label)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.axhline(TARGET, color="black", linestyle="--", linewidth=0.8, label=f"{TARGET:g}x greedy")
    ax.set_xticks(range(len(groups)), [label for label, _ in groups])
    ax.set_ylabel("energy efficiency / greedy's (held-out maps)")
    ax.set_ylim(bottom=min(0.6, *(v for _, r in groups for v, _ in r.values())) - 0.05)
    ax.legend(fontsize=7, ncol=2)
    save_figure(fig, args.out, dpi=120)


if __name__ == "__main__":
    main()
