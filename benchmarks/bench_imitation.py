"""Planner-guided MAPPO against MAPPO from scratch at equal env-step budgets, on held-out maps.

For every training seed: DAgger + behaviour cloning from the planner (``marl.imitation``), the
clone evaluated as it is ("BC only"), then PPO fine-tuning from it for ``--steps`` env steps
("BC + PPO"), and MAPPO from scratch for ``--steps`` plus the env steps the demonstrations took
("scratch", the same total env steps). All on ``--episodes`` held-out maps (10000.. by default)
beside the baselines, with bench_learning's table (mean +- 95% CI over training seeds), the
failure-episode share, and the CPU seconds of every phase (the planner's share of the
demonstrations included): CPU seconds, not wall clock, are the budget that holds on a shared
machine. ``--json`` keeps every figure and the fine-tuning's learning curves.

    python benchmarks/bench_imitation.py --preset paper --steps 1500000 --seeds 1 \
        --json docs/figures/learning/imitation/paper.json
    python benchmarks/bench_imitation.py --preset energy --steps 1500000 --seeds 1 \
        --set demo_episodes=24 --set dagger_rounds=3 --baselines greedy,greedy-local
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import jax

from bench_learning import (
    SHOWN,
    baseline_row,
    parse_sets,
    print_table,
    row,
    world_params,
    write_report,
)
from chainsense.marl import imitation, session
from chainsense.marl.config import TrainConfig, load_train_config
from chainsense.marl.evaluate import EvalTable, evaluate
from chainsense.marl.learned import LearnedPolicy
from chainsense.sim.params import WorldParams
from loop_throughput import peak_mb

CURVE = ("env_steps", "seconds", "return", "energy_efficiency", "data_collection_ratio")


def _summary(table: EvalTable, cpu_s: float, env_steps: float, **extra: Any) -> dict[str, Any]:
    return {"mean": table.mean, "cpu_s": cpu_s, "env_steps": env_steps, **extra}


def one_seed(
    cfg: TrainConfig, params: WorldParams, seed: int, steps: int, maps: list[int], scratch: bool
) -> dict[str, dict[str, Any]]:
    """BC only, BC + PPO and (with ``scratch``) MAPPO from scratch for one training seed."""
    c0 = time.process_time()
    learner, report = imitation.pretrain(
        cfg, params, seed, on_round=lambda r: print(f"  round {int(r['round'])}: {r}", flush=True)
    )
    bc_cpu = time.process_time() - c0
    demo_steps = report["env_steps"]
    out: dict[str, dict[str, Any]] = {}
    bc = evaluate(LearnedPolicy(learner.actor, cfg), params, maps, "bc")
    out["bc"] = _summary(bc, bc_cpu, demo_steps, pretrain=report)
    c1 = time.process_time()
    res = session.run(cfg, params, seed=seed, steps=steps, learner=learner)
    ppo_cpu = time.process_time() - c1
    tuned = evaluate(LearnedPolicy(res.learner.actor, cfg), params, maps, "bc+ppo")
    curve = [{k: r[k] for k in CURVE} for r in res.rows]
    out["bc+ppo"] = _summary(tuned, bc_cpu + ppo_cpu, demo_steps + res.env_steps, curve=curve)
    if scratch:
        plain = dataclasses.replace(cfg, imitate="none")
        c2 = time.process_time()
        res = session.run(plain, params, seed=seed, steps=steps + int(demo_steps))
        cpu = time.process_time() - c2
        table = evaluate(LearnedPolicy(res.learner.actor, plain), params, maps, "mappo")
        curve = [{k: r[k] for k in CURVE} for r in res.rows]
        out["mappo scratch"] = _summary(table, cpu, res.env_steps, curve=curve)
    for name, r in out.items():
        m = r["mean"]
        print(
            f"seed {seed} {name}: {r['env_steps']:,.0f} env steps, {r['cpu_s']:.0f} CPU s; "
            f"efficiency {m['energy_efficiency']:.4f}, collection "
            f"{m['data_collection_ratio']:.4f}, failures {m['failure']:.2f}",
            flush=True,
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--world", action="append", default=[], help="world KEY=VALUE (repeatable)")
    ap.add_argument("--set", action="append", default=[], help="train KEY=VALUE (repeatable)")
    ap.add_argument("--steps", type=int, default=1_500_000, help="PPO fine-tuning env steps")
    ap.add_argument("--seeds", type=int, default=1, help="training seeds")
    ap.add_argument("--first-seed", type=int, default=0, help="first training seed")
    ap.add_argument("--episodes", type=int, default=20, help="held-out evaluation maps")
    ap.add_argument("--first-map", type=int, default=10_000, help="first held-out map seed")
    ap.add_argument("--baselines", default="greedy,greedy-local,planner")
    ap.add_argument("--no-scratch", action="store_true", help="skip MAPPO from scratch")
    ap.add_argument("--json", type=Path, default=None, help="write every figure here")
    args = ap.parse_args()
    if args.steps <= 0 or args.seeds <= 0 or args.episodes <= 0 or args.first_seed < 0:
        raise SystemExit("--steps, --seeds and --episodes must be positive, --first-seed >= 0")

    params = world_params(args.preset, args.world)
    sets = {"imitate": "planner", **parse_sets(args.set)}
    cfg = load_train_config(None, "mappo", **sets)
    maps = list(range(args.first_map, args.first_map + args.episodes))
    load = os.getloadavg()
    print(f"device {jax.devices()[0].platform}, preset {args.preset}, load average {load}")
    runs: dict[str, list[dict[str, Any]]] = {}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for name, r in one_seed(cfg, params, seed, args.steps, maps, not args.no_scratch).items():
            runs.setdefault(name, []).append(r)
    rows = {name: row({k: [r["mean"][k] for r in rs] for k in SHOWN}) for name, rs in runs.items()}
    for name in [b for b in args.baselines.split(",") if b]:
        t0, c0 = time.perf_counter(), time.process_time()
        rows[name] = baseline_row(name, params, maps)
        cpu = time.process_time() - c0
        print(f"{name}: evaluated in {time.perf_counter() - t0:.0f} s, {cpu:.0f} CPU s")
    print()
    print_table(rows, {}, "greedy")
    report = {
        "preset": args.preset,
        "world": parse_sets(args.world),
        "config": cfg.to_dict(),
        "steps": args.steps,
        "episodes": maps,
        "rows": rows,
        "runs": runs,
        "load_before": load,
        "load_after": os.getloadavg(),
        "peak_mb": peak_mb(),
    }
    print(f"peak memory {report['peak_mb']:,.0f} MB; load average after {report['load_after']}")
    write_report(report, args.json)


if __name__ == "__main__":
    main()
