"""Every scenario x every baseline: the table and pictures of docs/scenarios.md.

For each preset (and ``paper`` with partial observation and ledger sharing), evaluates random,
greedy, greedy-local and the OR-Tools planner on the same seeded episodes (mean +- std), prints
a Markdown table, writes it with the per-episode CSVs to ``--out`` and draws one greedy episode
per scenario (map, trajectories, stations). Planner episodes take seconds each (1 s per plan).

    .venv/bin/python benchmarks/bench_scenarios.py --episodes 10 --out docs/scenarios
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax

from chainsense.marl import registry
from chainsense.marl.evaluate import rollout, write_table
from chainsense.sim.metrics import metric_names
from chainsense.sim.params import WorldParams, preset
from chainsense.sim.render import plot_map

POLICIES = ("random", "greedy", "greedy-local", "planner")
SHOWN = ("data_collection_ratio", "fairness", "energy_efficiency")


def scenarios() -> dict[str, WorldParams]:
    out = {name: preset(name) for name in ("paper", "energy", "charging", "dynamic", "large")}
    out["paper, observe 3, share 1"] = preset("paper").replace(observe_radius=3.0, share_delay=1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path("runs/scenarios"))
    ap.add_argument("--only", nargs="*", help="scenario names to run (default: all)")
    ap.add_argument("--policies", nargs="*", default=list(POLICIES))
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    seeds = range(a.episodes)
    rows, results = [], {}
    for name, params in scenarios().items():
        if a.only and name not in a.only:
            continue
        slug = "paper-partial" if "," in name else name
        t0 = time.perf_counter()
        contenders = [(p, registry.baseline(p)) for p in a.policies]
        tables = registry.compare(contenders, params, seeds)
        write_table(tables, a.out / slug)
        seconds = time.perf_counter() - t0
        episode = rollout(registry.baseline("greedy"), params, jax.random.PRNGKey(0), record=True)
        plot_map(
            episode.final_state,
            params,
            a.out / f"{slug}.png",
            positions=episode.positions,
            title=f"{name}: greedy, seed 0",
        )
        results[name] = {
            t.policy: {k: [t.mean[k], t.std[k]] for k in metric_names(params)} for t in tables
        }
        for t in tables:
            cells = " | ".join(f"{t.mean[k]:.3f} +- {t.std[k]:.3f}" for k in SHOWN)
            extra = ""
            if params.dynamic:
                extra = f" (lost {t.mean['data_lost']:.0f}, age {t.mean['mean_age']:.0f})"
            rows.append(f"| {name} | {t.policy} | {cells}{extra} |")
        print(f"{name}: {seconds:.0f} s", flush=True)
    head = "| scenario | policy | " + " | ".join(SHOWN) + " |\n|---|---|" + "---:|" * len(SHOWN)
    table = head + "\n" + "\n".join(rows) + "\n"
    (a.out / "scenarios.md").write_text(table, encoding="utf-8")
    (a.out / "scenarios.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
