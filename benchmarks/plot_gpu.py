"""The GPU measurement in one figure: throughput of the compiled training loops against the number
of worlds stepped at once (``bench_learning.py --throughput --num-envs ... --json`` reports, GPU
sweeps as lines, CPU runs as points), and the validation curves of training runs
(``bench_learning.py --json`` comparison reports) against env steps, so that what a GPU's
hundredfold budget buys in fleet quality sits beside what it buys in speed.

    python benchmarks/plot_gpu.py --throughput gpu_mappo_paper.json gpu_maddpg_paper.json \
        cpu_paper.json --training gpu_energy_3min.json="GPU, 3 min" \
        energy_targets_jain_3s.json="CPU, 2 M steps" --target 250000 --out gpu.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from figures import labelled, save_figure


def load(path: Path, key: str, kind: str) -> dict[str, Any]:
    """A report holding ``key``, or exit naming the file that is not a ``kind`` report."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise SystemExit(f"{path.name}: cannot read a report: {err}") from err
    if not isinstance(report, dict) or key not in report:
        raise SystemExit(f"{path.name}: not a {kind} report")
    return report


def sweep_series(report: dict[str, Any]) -> dict[str, list[tuple[int, float]]]:
    """``{"gpu paper mappo": [(worlds, env steps/s), ...]}`` of one throughput report."""
    device, preset = report["args"].get("device") or "default", report["preset"]
    series: dict[str, list[tuple[int, float]]] = {}
    for name, t in report["throughput"].items():
        algo = name.split("/")[0].split("@")[0]
        label = f"{device} {preset} {algo}" + (f" on {t['devices']}" if t["devices"] > 1 else "")
        series.setdefault(label, []).append((int(t["num_envs"]), float(t["env_steps_s"])))
    return {k: sorted(v) for k, v in series.items()}


def draw_throughput(ax: Any, reports: list[dict[str, Any]], target: float | None) -> None:
    for report in reports:
        for label, points in sweep_series(report).items():
            xs, ys = zip(*points, strict=True)
            style = "o-" if len(points) > 1 else "s"
            ax.plot(xs, ys, style, label=label, markersize=5)
    if target:
        ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target:,.0f}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("worlds stepped at once (num_envs)")
    ax.set_ylabel("env steps per second, updates included")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    ax.set_title("throughput of the compiled loop", fontsize=9)


def draw_training(ax: Any, runs: list[tuple[str, dict[str, Any]]]) -> None:
    for (label, report), colour in zip(runs, ("tab:red", "tab:blue", "tab:green"), strict=False):
        for algo, seeds in report["runs"].items():
            ratio = (
                report["rows"][algo]["energy_efficiency"][0]
                / report["rows"]["greedy"]["energy_efficiency"][0]
            )
            for i, run in enumerate(seeds):
                history = (run.get("selection") or {}).get("history") or []
                if not history:
                    continue
                xs, ys = zip(*history, strict=True)
                name = f"{label}: {algo}, {ratio:.3f}x greedy held out" if i == 0 else None
                ax.plot(xs, ys, "o-", color=colour, markersize=3, alpha=0.8, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("env steps")
    ax.set_ylabel("efficiency on the validation maps")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    ax.set_title("what the budget buys: validation curves", fontsize=9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--throughput", type=Path, nargs="+", required=True)
    ap.add_argument("--training", nargs="*", default=[], help="FILE=LABEL comparison reports")
    ap.add_argument("--target", type=float, default=None, help="a throughput target to draw")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    sweeps = [load(p, "throughput", "--throughput") for p in args.throughput]
    runs = []
    for item in args.training:
        path, label = labelled(item)
        report = load(path, "runs", "training (comparison)")
        if "greedy" not in report.get("rows", {}):
            raise SystemExit(f"{path.name}: has no greedy row to scale by")
        runs.append((label or path.stem, report))
    fig = Figure(figsize=(12.0 if runs else 6.5, 4.8))
    axes = fig.subplots(1, 2 if runs else 1, squeeze=False)[0]
    draw_throughput(axes[0], sweeps, args.target)
    if runs:
        draw_training(axes[1], runs)
    save_figure(fig, args.out)


if __name__ == "__main__":
    main()
