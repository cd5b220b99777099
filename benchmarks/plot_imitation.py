"""Plot bench_imitation.py reports: fine-tuning from the clone against MAPPO from scratch.

Per report (one preset), left: efficiency of the training episodes against env steps for
"BC + PPO" (shifted right by the demonstrations' env steps, so equal x means an equal budget)
and "scratch", with the held-out evaluation of BC only, greedy and planner as horizontal lines;
right: efficiency of the episodes each DAgger round played (round 0: the planner; round r >= 1:
the clone fitted after round r - 1, with evaluation noise).

    python benchmarks/plot_imitation.py docs/figures/learning/imitation/paper.json \
        docs/figures/learning/imitation/energy.json --out docs/figures/learning/imitation.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from figures import save_figure


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reports", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    fig = Figure(figsize=(11, 3.6 * len(args.reports)))
    axes = np.atleast_2d(fig.subplots(len(args.reports), 2))
    for (curves, rounds), path in zip(axes, args.reports, strict=True):
        rep = json.loads(path.read_text(encoding="utf-8"))
        for name, runs in rep["runs"].items():
            for run in runs:
                if "curve" not in run:
                    continue
                # bc+ppo's env steps include the demonstrations; its curve counts PPO's alone
                shift = run["env_steps"] - run["curve"][-1]["env_steps"]
                x = np.array([c["env_steps"] for c in run["curve"]], float) + shift
                y = np.array([c["energy_efficiency"] for c in run["curve"]], float)
                ok = np.isfinite(y)
                curves.plot(x[ok], y[ok], lw=1.2, label=f"{name} (training episodes)")
        for name, style in (("bc", ":"), ("greedy", "--"), ("planner", "-.")):
            if name in rep["rows"]:
                level = rep["rows"][name]["energy_efficiency"][0]
                curves.axhline(level, ls=style, lw=1, color="k", alpha=0.6)
                where = curves.get_yaxis_transform()  # x in axes units, y in data units
                curves.text(0.01, level, f"{name} (held-out)", transform=where, fontsize=7)
        curves.set_title(f"{path.stem}: energy efficiency vs env steps", fontsize=9)
        curves.set_xlabel("env steps (demonstrations included)", fontsize=8)
        curves.legend(fontsize=7)
        curves.grid(alpha=0.3)
        for run in rep["runs"].get("bc", []):
            played = run["pretrain"]["rounds"]
            r = [x["round"] for x in played]
            rounds.plot(r, [x["energy_efficiency"] for x in played], "o-")
        rounds.set_title(f"{path.stem}: episodes played in each DAgger round", fontsize=9)
        rounds.set_xlabel("round (0: the planner; r: the clone of round r - 1)", fontsize=8)
        rounds.set_ylabel("energy efficiency", fontsize=8)
        rounds.grid(alpha=0.3)
    save_figure(fig, args.out)


if __name__ == "__main__":
    main()
