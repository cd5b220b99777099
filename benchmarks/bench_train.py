"""Training benchmark: throughput of the default loop, then a timed MADDPG/IDDPG training run.

Prints (1) env steps/s and gradient updates/s of the jit-compiled collect-and-update loop
(compilation excluded, measured over whole chunks), (2) for each algorithm a training run of
``--minutes`` wall clock (compilation included) and an evaluation over ``--episodes`` seeded
episodes next to greedy and random on the same seeds, (3) the issue's targets with PASS/MISS,
and the process's peak resident memory.

    python benchmarks/bench_train.py                      # paper preset, 10 min per algorithm
    python benchmarks/bench_train.py --minutes 2 --algos maddpg
    python benchmarks/bench_train.py --throughput-only
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import jax

from chainsense.marl import session
from chainsense.marl.config import load_train_config
from chainsense.marl.evaluate import evaluate
from chainsense.marl.learned import LearnedPolicy
from chainsense.marl.registry import baseline
from chainsense.sim.params import preset
from loop_throughput import peak_mb, throughput


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--config", type=Path, default=None, help="TOML/YAML with a [train] section")
    ap.add_argument("--minutes", type=float, default=10.0, help="training budget per algorithm")
    ap.add_argument("--algos", default="maddpg,iddpg")
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--chunks", type=int, default=10, help="chunks timed for throughput")
    ap.add_argument("--throughput-only", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="keep checkpoints/logs here")
    args = ap.parse_args()

    params = preset(args.preset)
    cfg = load_train_config(args.config, None)
    print(f"device: {jax.devices()[0].platform} x{jax.device_count()}, preset {args.preset}")
    print(
        f"loop: {cfg.num_envs} worlds, {cfg.updates_per_iter} update(s) of batch "
        f"{cfg.batch_size} per iteration, {cfg.chunk_iters} iterations per jit call"
    )
    rates = throughput(cfg, params, args.chunks)
    sps, ups = rates["env_steps_s"], rates["updates_s"]
    print(f"throughput: {sps:,.0f} env steps/s, {ups:,.1f} gradient updates/s (incl. updates)")
    print(f"throughput target >= 50,000 env steps/s: {'PASS' if sps >= 50_000 else 'MISS'}")
    if args.throughput_only:
        print(f"peak memory: {peak_mb():,.0f} MB")
        return

    seeds = list(range(args.episodes))
    tables = {}
    for algo in args.algos.split(","):
        c = dataclasses.replace(cfg, algo=algo)
        out = args.out / algo if args.out else None
        res = session.run(c, params, seed=0, minutes=args.minutes, out_dir=out)
        print(
            f"{algo}: trained {res.seconds:.0f} s, {res.env_steps:,} env steps, "
            f"{res.updates:,} updates ({res.steps_per_second:,.0f} steps/s incl. compile)"
        )
        tables[algo] = evaluate(LearnedPolicy(res.learner.actor, c), params, seeds, algo)
    for name in ("greedy", "random"):
        tables[name] = evaluate(baseline(name), params, seeds, name)

    cols = ("data_collection_ratio", "energy_usage_ratio", "fairness", "energy_efficiency")
    print(f"\n{'policy':8s} " + " ".join(f"{c:>24s}" for c in cols))
    for name, tb in tables.items():
        cells = " ".join(f"{tb.mean[c]:>15.4f} +- {tb.std[c]:<6.3f}" for c in cols)
        print(f"{name:8s} {cells}")
    rand = tables["random"].mean["energy_efficiency"]
    greedy = tables["greedy"].mean["energy_efficiency"]
    for algo in args.algos.split(","):
        m = tables[algo].mean
        checks = [
            (f"efficiency >= 3 x random ({3 * rand:.3f})", m["energy_efficiency"] >= 3 * rand),
            (f"efficiency > greedy ({greedy:.3f})", m["energy_efficiency"] > greedy),
            ("data collection ratio >= 0.9", m["data_collection_ratio"] >= 0.9),
            ("fairness >= 0.9", m["fairness"] >= 0.9),
        ]
        print(
            f"{algo} ({m['energy_efficiency'] / rand:.2f} x random efficiency, "
            f"{m['energy_efficiency'] / greedy:.2f} x greedy): "
            + "; ".join(f"{txt}: {'PASS' if ok else 'MISS'}" for txt, ok in checks)
        )
    print(f"training budget per algorithm: {args.minutes:g} min wall clock")
    print(f"peak memory: {peak_mb():,.0f} MB")


if __name__ == "__main__":
    main()
