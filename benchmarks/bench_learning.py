"""Learning benchmark: learned fleets against the baselines on held-out maps, with CIs.

For every algorithm of ``--algos`` and every training seed 0..S-1, trains a fleet for
``--minutes`` of wall clock (compilation included) on random maps of ``--preset``, then evaluates
it on ``--episodes`` held-out map seeds (10000.. by default: training draws its maps from
its own key stream) next to ``random``, ``greedy``, ``greedy-local`` and ``planner`` on the same
seeds. Prints one row per policy: each metric's mean over training seeds with a 95% Student-t
interval over training seeds (baselines: over episodes), the failure-episode rate, env steps/s
and updates/s of the training runs (compilation included) and the process's peak memory;
``--json`` writes every figure and every run's learning curve. ``--throughput`` instead times
the compiled training loop alone (after compilation) per algorithm, in wall-clock and in CPU
seconds (the figure that holds on a shared machine).

    python benchmarks/bench_learning.py --preset paper --minutes 20 --algos mappo,maddpg \
        --seeds 3 --json runs/bench_paper.json
    python benchmarks/bench_learning.py --preset paper --throughput --algos mappo,maddpg
    python benchmarks/bench_learning.py --preset energy --minutes 3 --algos mappo --seeds 1 \
        --set memory=true --set num_envs=512
    python benchmarks/bench_learning.py --preset paper --world observe_radius=3 \
        --world share_delay=5 --minutes 3 --algos mappo --seeds 1 --baselines greedy-local
    python benchmarks/bench_learning.py --device gpu --throughput --algos mappo \
        --num-envs 256,4096,32768 --min-seconds 3   # cuda extra
    python benchmarks/bench_learning.py --throughput --algos mappo --devices 1,2   # data parallel
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from scipy import stats

from chainsense.errors import ChainsenseError
from chainsense.marl import registry, session, sharding
from chainsense.marl.config import TrainConfig, load_train_config
from chainsense.marl.evaluate import EvalTable, evaluate
from chainsense.marl.learned import LearnedPolicy
from chainsense.sim.params import WorldParams, preset
from loop_throughput import device_peak_mb, peak_mb, run_throughput

SHOWN = ("energy_efficiency", "data_collection_ratio", "fairness", "failure")
BASELINES = ("random", "greedy", "greedy-local", "planner")


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% Student-t interval (0 for a single value)."""
    x = np.asarray(values, np.float64)
    if len(x) < 2:
        return float(x.mean()), 0.0
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean()), float(half)


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` overrides of the train config; VALUE is read as JSON when it parses."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise SystemExit(f"--set wants KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def world_params(name: str, items: list[str]) -> WorldParams:
    """The preset with the ``--world KEY=VALUE`` overrides, or exit naming the bad one."""
    changes = parse_sets(items)
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(WorldParams)})
    if unknown:
        raise SystemExit(f"--world: unknown world parameter(s) {', '.join(unknown)}")
    try:
        return preset(name).replace(**changes)
    except ChainsenseError as err:
        raise SystemExit(f"--world: {err}") from err


def select_device(platform: str) -> None:
    """Run every computation on the first device of ``platform``, or exit naming the flag."""
    try:
        device = jax.devices(platform)[0]
    except RuntimeError as err:
        extra = ' (install the cuda extra: pip install -e ".[cuda]")' if platform == "gpu" else ""
        raise SystemExit(f"--device {platform}: no such JAX device here{extra}: {err}") from err
    jax.config.update("jax_default_device", device)
    jax.config.update("jax_platforms", platform)


def train_and_evaluate(
    cfg: TrainConfig,
    params: WorldParams,
    seed: int,
    minutes: float | None,
    seeds: list[int],
    out: Path | None,
    steps: int | None = None,
) -> tuple[EvalTable, dict[str, Any]]:
    """One training run (``steps`` env steps when given, else ``minutes``) and its
    evaluation; the run's counters and learning curve."""
    cpu0 = time.process_time()
    res = session.run(cfg, params, seed=seed, minutes=minutes, steps=steps, out_dir=out)
    cpu_seconds = (
        time.process_time() - cpu0
    )  # the training's CPU, the figure a shared machine keeps
    table = evaluate(LearnedPolicy(res.learner.actor, res.cfg), params, seeds, cfg.algo)
    run = {
        "seed": seed,
        "env_steps": res.env_steps,
        "updates": res.updates,
        "seconds": res.seconds,
        "cpu_seconds": cpu_seconds,
        "env_steps_s": res.env_steps / res.seconds,
        "updates_s": res.updates / res.seconds,
        "mean": table.mean,
        "pretrain": res.pretrain,  # cost of the planner clone PPO started from (imitate=planner)
        "selection": res.selection,  # the validation-map choice (select_every, select_noise)
        "eval_noise": res.cfg.eval_noise,  # what the fleet acted with on the held-out maps
        "curve": [
            {
                k: r[k]
                for k in (
                    "env_steps",
                    "seconds",
                    "return",
                    "energy_efficiency",
                    "data_collection_ratio",
                    "validation",
                )
            }
            for r in res.rows
        ],
    }
    return table, run


def row(means: dict[str, list[float]]) -> dict[str, list[float]]:
    """Mean and CI of every shown metric: {metric: [mean, half-width]}."""
    return {k: list(mean_ci(means[k])) for k in SHOWN}


def baseline_row(name: str, params: WorldParams, seeds: list[int]) -> dict[str, list[float]]:
    """Baseline ``name`` on the maps ``seeds``: every shown metric's mean and 95% interval
    over the episodes."""
    tb = evaluate(registry.baseline(name), params, seeds, name)
    nan = np.full(len(seeds), np.nan)  # a planner reports no failure counters
    return row({k: list(tb.per_episode.get(k, nan)) for k in SHOWN})


def print_table(
    rows: dict[str, dict[str, list[float]]], runs: dict[str, list[dict]], greedy: str
) -> None:
    width = max(14, *(len(n) + 2 for n in rows))
    head = (
        f"{'policy':{width}s}"
        + "".join(f"{k:>26s}" for k in SHOWN)
        + f"{'x greedy':>10s}{'env steps/s':>13s}{'updates/s':>11s}"
    )
    print(head)
    ref = rows[greedy]["energy_efficiency"][0] if greedy in rows else float("nan")
    for name, r in rows.items():
        cells = "".join(f"{r[k][0]:>16.4f} +- {r[k][1]:<6.3f}" for k in SHOWN)
        ratio = r["energy_efficiency"][0] / ref
        speed = ""
        if name in runs:
            sps = np.mean([x["env_steps_s"] for x in runs[name]])
            ups = np.mean([x["updates_s"] for x in runs[name]])
            speed = f"{sps:>13,.0f}{ups:>11,.1f}"
        print(f"{name:{width}s}{cells}{ratio:>10.3f}{speed}")


def counts_flag(flag: str, text: str, top: int) -> tuple[int, ...]:
    """``1,2`` -> (1, 2), each in [1, top], or exit naming the flag."""
    try:
        counts = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1 or max(counts) > top:
        raise SystemExit(f"{flag} wants counts in [1, {top}] like 1,2, got {text!r}")
    return counts


def run_comparison(
    args: argparse.Namespace, base: TrainConfig, params: WorldParams, algo_names: list[str]
) -> dict[str, Any]:
    """Train and evaluate every algorithm and seed, evaluate the baselines, print the table."""
    seeds = list(range(args.first_map, args.first_map + args.episodes))
    rows: dict[str, dict[str, list[float]]] = {}
    runs: dict[str, list[dict]] = {}
    configs = {}
    devices = int(args.devices)  # one count here (checked in main)
    for algo in algo_names:
        cfg = dataclasses.replace(base, algo=algo, devices=devices)
        configs[algo] = cfg.to_dict()
        runs[algo], per_seed = [], {k: [] for k in SHOWN}
        for s in range(args.seeds):
            out = args.out / f"{algo}_{s}" if args.out else None
            minutes = None if args.steps else args.minutes
            table, run = train_and_evaluate(cfg, params, s, minutes, seeds, out, args.steps)
            runs[algo].append(run)
            for k in SHOWN:
                per_seed[k].append(table.mean[k])
            m = table.mean
            if run["selection"]:
                sel = run["selection"]
                print(
                    f"{algo} seed {s}: kept env step {sel['best_env_steps']:,} "
                    f"(validation {sel['metric']} {sel['best_score']:.4f}, "
                    f"{len(sel['history'])} scored), eval noise {run['eval_noise']:g}"
                )
            print(
                f"{algo} seed {s}: {run['env_steps']:,} env steps, {run['updates']:,} updates "
                f"in {run['seconds']:.0f} s ({run['cpu_seconds']:.0f} CPU-s); "
                f"efficiency {m['energy_efficiency']:.4f}, "
                f"collection {m['data_collection_ratio']:.4f}, failures {m['failure']:.2f}"
            )
        rows[algo] = row(per_seed)
    for name in [b for b in args.baselines.split(",") if b]:
        t0 = time.perf_counter()
        rows[name] = baseline_row(name, params, seeds)
        print(f"{name}: evaluated in {time.perf_counter() - t0:.0f} s")
    print()
    print_table(rows, runs, "greedy")
    return {"rows": rows, "runs": runs, "episodes": seeds, "config": configs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--config", type=Path, default=None, help="TOML/YAML with a [train] section")
    ap.add_argument("--set", action="append", default=[], help="train KEY=VALUE (repeatable)")
    ap.add_argument(
        "--world", action="append", default=[], help="world KEY=VALUE over the preset (repeatable)"
    )
    ap.add_argument(
        "--device",
        choices=("cpu", "gpu"),
        default=None,
        help="JAX platform to run on (default: JAX's choice; gpu needs the cuda extra)",
    )
    ap.add_argument(
        "--devices",
        default=None,
        help="data parallel over N devices (XLA host devices on a CPU); --throughput "
        "takes a list such as 1,2 and times each",
    )
    ap.add_argument("--minutes", type=float, default=20.0, help="training budget per fleet")
    ap.add_argument(
        "--steps",
        type=int,
        default=None,
        help="env-step budget per fleet instead of --minutes (equal budgets on a shared machine)",
    )
    ap.add_argument("--algos", default="mappo,maddpg")
    ap.add_argument("--seeds", type=int, default=3, help="training seeds per algorithm")
    ap.add_argument("--episodes", type=int, default=20, help="held-out evaluation maps")
    ap.add_argument("--first-map", type=int, default=10_000, help="first held-out map seed")
    ap.add_argument("--baselines", default=",".join(BASELINES))
    ap.add_argument("--throughput", action="store_true", help="time the compiled loop only")
    ap.add_argument("--chunks", type=int, default=5, help="chunks timed with --throughput")
    ap.add_argument(
        "--min-seconds",
        type=float,
        default=0.0,
        help="--throughput times chunks until this many seconds have passed (fast devices)",
    )
    ap.add_argument(
        "--num-envs",
        default=None,
        help="--throughput sweeps these numbers of worlds, such as 256,4096,32768",
    )
    ap.add_argument("--json", type=Path, default=None, help="write every figure here")
    ap.add_argument("--out", type=Path, default=None, help="keep checkpoints and logs here")
    args = ap.parse_args()

    counts = counts_flag("--devices", args.devices, 64) if args.devices else None
    worlds = counts_flag("--num-envs", args.num_envs, 1 << 20) if args.num_envs else ()
    if args.chunks < 1 or not 0 <= args.min_seconds <= 3600:
        raise SystemExit("--chunks wants 1 or more and --min-seconds 0 to 3600")
    if worlds and not args.throughput:
        raise SystemExit("--num-envs: a sweep over numbers of worlds needs --throughput")
    if counts and len(counts) > 1 and not args.throughput:
        raise SystemExit("--devices: a list of device counts needs --throughput")
    sets = parse_sets(args.set)  # `--set algo=mappo` lets MAPPO-only settings (recurrent) pass
    base = load_train_config(args.config, sets.pop("algo", None), **sets)
    counts = counts or (base.devices,)
    args.devices = ",".join(map(str, counts))
    # XLA reads the host device count when JAX first computes: ask before anything runs
    sharding.request_host_devices(max(counts))
    if args.device is not None:
        select_device(args.device)
    params = world_params(args.preset, args.world)
    algo_names = [a for a in args.algos.split(",") if a]
    load = os.getloadavg()
    print(
        f"device: {jax.devices()[0].platform} x{jax.device_count()}, preset {args.preset} "
        f"{dict(parse_sets(args.world))}, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    report: dict[str, Any] = {
        "preset": args.preset,
        "load_before": load,
        # file names only: a report must not carry a path of the machine it ran on
        "args": {k: v.name if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    if args.throughput:
        report["throughput"] = run_throughput(
            base, params, algo_names, args.chunks, counts, worlds, args.min_seconds
        )
    else:
        report |= run_comparison(args, base, params, algo_names)
    report["peak_mb"] = peak_mb()
    report["device_peak_mb"] = device_peak_mb()
    report["load_after"] = os.getloadavg()
    after = report["load_after"][0]
    on_device = report["device_peak_mb"]
    held = "" if on_device is None else f" (the device's allocator: {on_device:,.0f} MB)"
    print(f"peak memory: {report['peak_mb']:,.0f} MB{held}; load average after {after:.2f}")
    write_report(report, args.json)


def write_report(report: dict[str, Any], path: Path | None) -> None:
    """The report as JSON at ``path`` (nothing when None), its folder made if missing."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=float), encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
