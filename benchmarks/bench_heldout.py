"""Saved fleets on many held-out maps: each training seed's checkpoint next to the baselines on
the same maps, with the mean and 95% interval over training seeds.

``bench_learning.py`` scores every fleet on 20 held-out maps, as the issue asks. On ``paper`` a
fleet's efficiency varies by about 0.4 (SD) from map to map, so a 20-map mean is +- 0.1 per
seed: as wide as the 3% margin being measured. This script re-scores the checkpoints a run kept
(``--out`` of ``bench_learning.py``) on as many maps as wanted, starting at the same first map,
so the 20-map figures are the first 20 of these.

    python benchmarks/bench_heldout.py runs/sel/mappo_{0,1,2}/fleet.msgpack \
        --episodes 200 --json heldout200.json

With no checkpoint it scores the baselines alone on a preset (``--preset``, ``--world``): how
the heuristics stand on the same maps, e.g. after a change to their shared navigation.

    python benchmarks/bench_heldout.py --preset dynamic --baselines greedy,greedy-jain
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from bench_learning import SHOWN, baseline_row, print_table, row, world_params, write_report
from chainsense.marl import checkpoint
from chainsense.marl.evaluate import evaluate
from chainsense.marl.learned import LearnedPolicy
from chainsense.sim.params import WorldParams


def score(
    paths: list[Path], seeds: list[int], baselines: list[str], world: WorldParams | None = None
) -> dict[str, Any]:
    """Every checkpoint and baseline on ``seeds``; refuses checkpoints of different worlds.
    Without checkpoints, the baselines on ``world``."""
    fleets = [checkpoint.load(p) for p in paths]
    params = fleets[0].params if fleets else world
    if params is None:
        raise SystemExit("give checkpoints, or --preset for the baselines alone")
    for p, ck in zip(paths, fleets, strict=True):
        if ck.params != params:
            raise SystemExit(f"{p.name}: trained on another world than {paths[0].name}")
    runs = []
    for p, ck in zip(paths, fleets, strict=True):
        table = evaluate(LearnedPolicy(ck.learner.actor, ck.cfg), params, seeds, ck.cfg.algo)
        runs.append({"checkpoint": p.parent.name + "/" + p.name, "mean": table.mean})
        m = table.mean
        print(
            f"{p.parent.name}/{p.name}: efficiency {m['energy_efficiency']:.4f}, "
            f"collection {m['data_collection_ratio']:.4f}, failures {m['failure']:.2f}"
        )
    rows = {"fleet": row({k: [r["mean"][k] for r in runs] for k in SHOWN})} if runs else {}
    for name in baselines:
        rows[name] = baseline_row(name, params, seeds)
    world = dataclasses.asdict(params)  # the world the fleets were trained on, e.g. for plots
    return {"episodes": seeds, "runs": runs, "rows": rows, "params": world}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="*", type=Path, help="fleet.msgpack of each seed")
    ap.add_argument("--preset", default=None, help="without checkpoints: the baselines' world")
    ap.add_argument(
        "--world", action="append", default=[], help="world KEY=VALUE over --preset (repeatable)"
    )
    ap.add_argument("--episodes", type=int, default=200, help="held-out maps")
    ap.add_argument("--first-map", type=int, default=10_000, help="first held-out map seed")
    ap.add_argument("--baselines", default="greedy,greedy-local")
    ap.add_argument("--json", type=Path, default=None, help="write every figure here")
    args = ap.parse_args()
    if not 1 <= args.episodes <= 100_000:
        raise SystemExit(f"--episodes must be in [1, 100000], got {args.episodes}")
    seeds = list(range(args.first_map, args.first_map + args.episodes))
    if args.checkpoints and (args.preset or args.world):
        raise SystemExit(
            "--preset / --world: the checkpoints name their world; give one or the other"
        )
    world = world_params(args.preset, args.world) if args.preset else None
    baselines = [b for b in args.baselines.split(",") if b]
    report = score(args.checkpoints, seeds, baselines, world)
    print()
    print_table(report["rows"], {}, "greedy")
    if not args.checkpoints:
        write_report(report, args.json)
        return
    ref = report["rows"].get("greedy", {}).get("energy_efficiency", [float("nan")])[0]
    mean, half = report["rows"]["fleet"]["energy_efficiency"]
    report["per_seed_x_greedy"] = [r["mean"]["energy_efficiency"] / ref for r in report["runs"]]
    print(
        f"fleet: {mean / ref:.3f}x greedy, lower 95% bound {(mean - half) / ref:.3f}x; per seed "
        + ", ".join(f"{x:.3f}" for x in report["per_seed_x_greedy"])
    )
    write_report(report, args.json)


if __name__ == "__main__":
    main()
