"""Greedy's cluster sums: the dense K x K matrix against the cell list (``marl.poi_clusters``).

For each preset, times both on the same batch of freshly drawn worlds (vmapped, as in MAPPO's
training rollout with ``action_space = "targets"``), in one process, alternating rounds so the
machine's noise falls on both; prints worlds per second, the ratio and the largest difference.

    .venv/bin/python benchmarks/bench_poi_clusters.py --worlds 128 --rounds 5 --json out.json
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

from chainsense.marl.poi_clusters import cluster_sums, dense_sums
from chainsense.sim import world
from chainsense.sim.params import WorldParams, preset

PRESETS = ("paper", "energy", "large")


def time_once(fn: Callable[..., Any], *args: Any) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def measure(name: str, params: WorldParams, worlds: int, rounds: int) -> dict[str, float]:
    keys = jax.random.split(jax.random.PRNGKey(0), worlds)
    states = jax.vmap(lambda k: world.reset(k, params)[0])(keys)
    values = jnp.stack([states.poi_data, states.poi_init], axis=-1)
    cells = jax.jit(jax.vmap(lambda p, v: cluster_sums(p, v, params)))
    dense = jax.jit(jax.vmap(lambda p, v: dense_sums(p, v, params.sensing_range)))
    diff = float(jnp.max(jnp.abs(cells(states.poi_pos, values) - dense(states.poi_pos, values))))
    spent = {"cells": 0.0, "dense": 0.0}
    for _ in range(rounds):
        spent["cells"] += time_once(cells, states.poi_pos, values)
        spent["dense"] += time_once(dense, states.poi_pos, values)
    rate = {k: worlds * rounds / v for k, v in spent.items()}
    row = {
        "preset": name,
        "pois": params.num_pois,
        "cells_worlds_s": rate["cells"],
        "dense_worlds_s": rate["dense"],
        "speedup": rate["cells"] / rate["dense"],
        "max_abs_diff": diff,
    }
    print(
        f"{name:8s} K={params.num_pois:5d}: cell list {rate['cells']:9,.0f} worlds/s, "
        f"dense {rate['dense']:9,.0f} worlds/s, x{row['speedup']:.2f}, max |diff| {diff:.2e}",
        flush=True,
    )
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--worlds", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    if not 1 <= args.worlds <= 4096 or not 1 <= args.rounds <= 1000:
        raise SystemExit("--worlds must be in [1, 4096] and --rounds in [1, 1000]")
    rows = [measure(n, preset(n), args.worlds, args.rounds) for n in args.presets.split(",")]
    if args.json:
        args.json.write_text(json.dumps({"worlds": args.worlds, "rows": rows}, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
