"""Greedy's cluster sums: the dense K x K matrix against the cell list (``marl.poi_clusters``).

For each preset, times both on the same batch of freshly drawn worlds (vmapped, as in MAPPO's
training rollout with ``action_space = "targets"``), in one process, alternating rounds so the
machine's noise falls on both; prints worlds per second, the ratio, the largest difference and
the temporaries each compiled batch reserves.
``--train`` also times MAPPO's compiled training loop with ``action_space = "targets"`` with
each (env steps per second, updates included): the figure behind ``CELLS_FROM_POIS``.

    .venv/bin/python benchmarks/bench_poi_clusters.py --worlds 128 --rounds 5 --json out.json
    .venv/bin/python benchmarks/bench_poi_clusters.py --train --presets energy,large
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from chainsense.marl import algos, poi_clusters, policies
from chainsense.marl.config import TrainConfig
from chainsense.marl.poi_clusters import cell_sums, dense_sums
from chainsense.sim import world
from chainsense.sim.params import WorldParams, preset

PRESETS = ("paper", "energy", "large")


def time_once(fn: Callable[..., Any], *args: Any) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def temp_mb(fn: Any, *args: Any) -> float:
    """MB of temporaries XLA reserves for the compiled ``fn`` (both branches of a ``cond``
    included, whichever runs)."""
    stats = fn.lower(*args).compile().memory_analysis()
    return float("nan") if stats is None else stats.temp_size_in_bytes / 2**20


def measure(name: str, params: WorldParams, worlds: int, rounds: int) -> dict[str, float]:
    keys = jax.random.split(jax.random.PRNGKey(0), worlds)
    states = jax.vmap(lambda k: world.reset(k, params)[0])(keys)
    values = jnp.stack([states.poi_data, states.poi_init], axis=-1)
    cells = jax.jit(jax.vmap(lambda p, v: cell_sums(p, v, params)))
    dense = jax.jit(jax.vmap(lambda p, v: dense_sums(p, v, params.sensing_range)))
    diff = float(jnp.max(jnp.abs(cells(states.poi_pos, values) - dense(states.poi_pos, values))))
    spent = {"cells": 0.0, "dense": 0.0}
    for _ in range(rounds):
        spent["cells"] += time_once(cells, states.poi_pos, values)
        spent["dense"] += time_once(dense, states.poi_pos, values)
    rate = {k: worlds * rounds / v for k, v in spent.items()}
    temp = {k: temp_mb(f, states.poi_pos, values) for k, f in (("cells", cells), ("dense", dense))}
    row = {
        "preset": name,
        "pois": params.num_pois,
        "cells_worlds_s": rate["cells"],
        "dense_worlds_s": rate["dense"],
        "speedup": rate["cells"] / rate["dense"],
        "max_abs_diff": diff,
        "cells_temp_mb": temp["cells"],
        "dense_temp_mb": temp["dense"],
    }
    print(
        f"{name:8s} K={params.num_pois:5d}: cell list {rate['cells']:9,.0f} worlds/s, "
        f"dense {rate['dense']:9,.0f} worlds/s, x{row['speedup']:.2f}, max |diff| {diff:.2e}; "
        f"compiled temporaries {temp['cells']:,.0f} MB against {temp['dense']:,.0f} MB",
        flush=True,
    )
    return row


def train_rate(params: WorldParams, method: str, chunk_iters: int) -> float:
    """Env steps/s of MAPPO's compiled loop (2 x 2, targets) with the sums by ``method``."""
    sums = {"cells": cell_sums, "dense": lambda p, v, w: dense_sums(p, v, w.sensing_range)}
    saved = policies.cluster_sums
    policies.cluster_sums = sums[method]  # what weighted_goals calls; restored below
    try:
        cfg = TrainConfig(
            algo="mappo",
            action_space="targets",
            shaping="efficiency",
            ppo_epochs=2,
            ppo_minibatches=2,
            chunk_iters=chunk_iters,
        )
        carry = algos.init_carry(jax.random.PRNGKey(0), cfg, params)
        chunk = algos.make_chunk(cfg, params)
        carry, _ = chunk(carry)  # compile
        jax.block_until_ready(carry)
        start = time.perf_counter()
        for _ in range(2):
            carry, _ = chunk(carry)
        jax.block_until_ready(carry)
        return 2 * algos.steps_per_chunk(cfg) / (time.perf_counter() - start)
    finally:
        policies.cluster_sums = saved


def measure_training(name: str, params: WorldParams, chunk_iters: int) -> dict[str, float]:
    rate = {m: train_rate(params, m, chunk_iters) for m in ("cells", "dense")}
    print(
        f"{name:8s} K={params.num_pois:5d}: MAPPO targets {rate['cells']:7,.0f} env steps/s with "
        f"the cell list, {rate['dense']:7,.0f} dense, x{rate['cells'] / rate['dense']:.2f} "
        f"(auto uses {'cells' if params.num_pois >= poi_clusters.CELLS_FROM_POIS else 'dense'})",
        flush=True,
    )
    return {"preset": name, **{f"{m}_env_steps_s": v for m, v in rate.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--worlds", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--train", action="store_true", help="also time MAPPO's training loop")
    ap.add_argument("--chunk-iters", type=int, default=10, help="iterations per timed chunk")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    if not 1 <= args.worlds <= 4096 or not 1 <= args.rounds <= 1000:
        raise SystemExit("--worlds must be in [1, 4096] and --rounds in [1, 1000]")
    names = args.presets.split(",")
    rows = [measure(n, preset(n), args.worlds, args.rounds) for n in names]
    report: dict[str, Any] = {"worlds": args.worlds, "rows": rows}
    if args.train:
        if not 1 <= args.chunk_iters <= 1000:
            raise SystemExit("--chunk-iters must be in [1, 1000]")
        report["training"] = [measure_training(n, preset(n), args.chunk_iters) for n in names]
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
