"""What a sweep costs, from its runs' own figures, and what a bigger preset would take.

Reads the ``result.json`` of every finished run in a sweep directory and prints, per policy, the
runs, their mean wall and CPU seconds and (learned fleets) env steps per CPU-second; then scales
the CPU-seconds to ``--preset`` (default ``full``): a learned run by its step budget and a
baseline by its episodes (an upper bound: compilation, a fixed cost, is scaled too), per point
and seed of that preset. Runs not finished yet are estimated from the finished runs of the same
policy. Prints the total CPU time and the wall time on N one-CPU workers (the total / N, at
least the longest run; N = 2 is one 2-core machine running two runs at once).

    .venv/bin/python benchmarks/sweep_cost.py runs/reproduce-paper --preset full --workers 1,2,8,32
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

from chainsense.experiments import sweep_presets, sweep_report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("directory", type=Path)
    ap.add_argument("--preset", default="full", choices=sorted(sweep_presets.PRESETS))
    ap.add_argument("--workers", default="1,2,8,32", help="one-CPU worker counts (2: a 2-core box)")
    args = ap.parse_args()
    results, skipped = sweep_report.load_results(args.directory)
    if not results:
        raise SystemExit(f"no finished runs in {args.directory}")
    by_policy: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_policy[r["policy"]].append(r)
    print(f"{len(results)} finished runs ({len(skipped)} skipped) in {args.directory}")
    print(f"{'policy':<14}{'runs':>5}{'wall s':>9}{'CPU s':>9}{'steps/CPU-s':>13}")
    cpu_per_unit: dict[str, float] = {}
    for pol, runs in sorted(by_policy.items()):
        cpu = [r["cpu_seconds"] for r in runs]
        wall = statistics.mean(r["wall_seconds"] for r in runs)
        steps = [r["training"]["env_steps"] for r in runs if r["training"]]
        rate = f"{sum(steps) / sum(cpu):>13,.0f}" if steps else f"{'-':>13}"
        print(f"{pol:<14}{len(runs):>5}{wall:>9.0f}{statistics.mean(cpu):>9.0f}{rate}")
        # CPU-seconds per env step (learned) or per episode (baselines)
        units = sum(steps) if steps else sum(len(r["eval_seeds"]) for r in runs)
        cpu_per_unit[pol] = sum(cpu) / units
    spec = sweep_presets.preset(args.preset)
    total, longest, missing = 0.0, 0.0, set()
    for run in spec.runs():
        if run.policy not in cpu_per_unit:
            missing.add(run.policy)
            continue
        units = run.steps if run.steps is not None else len(run.eval_seeds)
        cost = cpu_per_unit[run.policy] * units
        total += cost
        longest = max(longest, cost)
    print(f"\n{args.preset}: {len(spec.runs())} runs, {total / 3600:.1f} CPU-hours (upper bound)")
    if missing:
        print(f"  not counted (no finished run to measure): {', '.join(sorted(missing))}")
    for n in (int(x) for x in args.workers.split(",")):
        print(f"  {n} one-CPU workers: {max(total / n, longest) / 3600:.2f} h")


if __name__ == "__main__":
    main()
