"""Paper-style comparisons: metrics vs number of MTs and vs sensing range.

For every point of a sweep, MADDPG and IDDPG fleets are trained (``seeds`` training seeds, a
fixed step budget each) and evaluated on ``episodes`` seeded episodes next to the greedy and
random baselines on the same episodes. Error bars are the standard deviation over all
(training seed, episode) pairs. ``quick`` uses the small world and short training so that the
whole figure set takes minutes; ``full`` is the real run on the paper world.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from chainsense.errors import ConfigError
from chainsense.marl import registry, session
from chainsense.marl.config import TrainConfig
from chainsense.marl.learned import LearnedPolicy
from chainsense.sim.metrics import PAPER_METRICS
from chainsense.sim.params import WorldParams, preset

#: the paper's comparison: the learned fleets and the classic baselines
SWEPT: tuple[str, ...] = (*registry.PAPER_LEARNED, *registry.CLASSIC)


@dataclass(frozen=True)
class Spec:
    """One reproduce run: base world, sweep values, budgets and the training config."""

    name: str
    world: WorldParams
    mts: tuple[int, ...]
    ranges: tuple[float, ...]
    seeds: int
    episodes: int
    train_steps: int
    train: TrainConfig


def spec(
    name: str,
    seeds: int | None = None,
    episodes: int | None = None,
    train_steps: int | None = None,
) -> Spec:
    """The ``quick`` or ``full`` preset, with optional overrides (validated)."""
    if name == "quick":
        base = Spec(
            name="quick",
            world=preset("small"),
            mts=(1, 2, 3, 4, 5),
            ranges=(0.7, 1.1, 1.5),
            seeds=1,
            episodes=10,
            train_steps=100_000,
            # 50-slot episodes and 100k steps: the paper world's horizon (gamma = 0.995) and
            # move penalty are tuned for 500 slots and 10 minutes; here they lower every score
            train=TrainConfig(
                num_envs=64,
                buffer_size=50_000,
                warmup_steps=2_000,
                noise_decay_steps=80_000,
                chunk_iters=50,
                gamma=0.99,
                move_penalty=0.25,
            ),
        )
    elif name == "full":
        base = Spec(
            name="full",
            world=preset("paper"),
            mts=(1, 2, 3, 4, 5),
            ranges=(0.7, 0.9, 1.1, 1.3, 1.5),
            seeds=2,
            episodes=10,
            train_steps=6_000_000,
            train=TrainConfig(),
        )
    else:
        raise ConfigError("preset", f"unknown reproduce preset {name!r} (known: full, quick)")
    changes: dict[str, int] = {}
    for field, value, low, high in (
        ("seeds", seeds, 1, 100),
        ("episodes", episodes, 1, 10_000),
        ("train_steps", train_steps, 1, 10**10),
    ):
        if value is not None:
            if not low <= value <= high:
                raise ConfigError(field, f"must be in [{low}, {high}], got {value}")
            changes[field] = value
    return dataclasses.replace(base, **changes)


def points(s: Spec) -> list[tuple[str, float, WorldParams]]:
    """Every (sweep, value, world) of the spec: first the MT counts, then the sensing ranges."""
    out: list[tuple[str, float, WorldParams]] = [
        ("mts", float(m), s.world.replace(num_mts=m)) for m in s.mts
    ]
    out += [("sensing_range", r, s.world.replace(sensing_range=r)) for r in s.ranges]
    return out


def count_runs(s: Spec) -> int:
    """Progress units: one per trained fleet plus one per baseline evaluation."""
    return len(points(s)) * (2 * s.seeds + 1)


def run(
    s: Spec, out_dir: str | Path, on_run: Callable[[int, str], None] | None = None
) -> list[Path]:
    """Train, evaluate and plot every point; returns the CSV and PNG paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    done = 0
    ep_seeds = list(range(10_000, 10_000 + s.episodes))
    for sweep, value, world in points(s):
        label = f"{sweep}={value:g}"
        baselines = [(name, registry.baseline(name)) for name in registry.CLASSIC]
        for tb in registry.compare(baselines, world, ep_seeds):
            rows += _rows(sweep, value, tb.policy, -1, ep_seeds, tb.per_episode)
        done += 1
        if on_run:
            on_run(done, f"{label} baselines")
        for algo in registry.PAPER_LEARNED:
            cfg = dataclasses.replace(s.train, algo=algo)
            for seed in range(s.seeds):
                res = session.run(cfg, world, seed=seed, steps=s.train_steps)
                fleet = LearnedPolicy(res.learner.actor, cfg)
                (tb,) = registry.compare([(algo, fleet)], world, ep_seeds)
                rows += _rows(sweep, value, algo, seed, ep_seeds, tb.per_episode)
                done += 1
                if on_run:
                    on_run(done, f"{label} {algo} seed {seed}")
    csv_path = out / "reproduce.csv"
    cols = ["sweep", "value", "policy", "train_seed", "episode_seed", *PAPER_METRICS, "collisions"]
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: r[k] for k in cols})
    summary = write_summary(rows, out / "reproduce_summary.csv")
    pngs = [
        plot_sweep(rows, "mts", "number of MTs", out / "metrics_vs_mts.png", s.name),
        plot_sweep(rows, "sensing_range", "sensing range", out / "metrics_vs_range.png", s.name),
    ]
    return [csv_path, summary, *pngs]


def _rows(
    sweep: str,
    value: float,
    policy: str,
    train_seed: int,
    seeds: list[int],
    per: dict[str, np.ndarray],
) -> list[dict[str, object]]:
    return [
        {
            "sweep": sweep,
            "value": value,
            "policy": policy,
            "train_seed": train_seed,
            "episode_seed": seed,
            **{k: float(per[k][i]) for k in (*PAPER_METRICS, "collisions")},
        }
        for i, seed in enumerate(seeds)
    ]


def _group(
    rows: list[dict[str, object]], sweep: str, policy: str, metric: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sel = [r for r in rows if r["sweep"] == sweep and r["policy"] == policy]
    xs = sorted({float(r["value"]) for r in sel})  # type: ignore[arg-type]
    mean = [np.mean([r[metric] for r in sel if r["value"] == x]) for x in xs]
    std = [np.std([r[metric] for r in sel if r["value"] == x]) for x in xs]
    return np.array(xs), np.array(mean), np.array(std)


def write_summary(rows: list[dict[str, object]], path: Path) -> Path:
    """Mean and std of every metric per (sweep, value, policy)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "sweep",
                "value",
                "policy",
                *(f"{m}_{s}" for m in PAPER_METRICS for s in ("mean", "std")),
            ]
        )
        for sweep in ("mts", "sensing_range"):
            for pol in SWEPT:
                stats = [_group(rows, sweep, pol, m) for m in PAPER_METRICS]
                for i, x in enumerate(stats[0][0]):
                    vals = [f"{v:.6g}" for _, mean, std in stats for v in (mean[i], std[i])]
                    w.writerow([sweep, f"{x:g}", pol, *vals])
    return path


def plot_sweep(
    rows: list[dict[str, object]], sweep: str, xlabel: str, path: Path, name: str
) -> Path:
    """Four panels (one per metric), one line with error bars per policy."""
    fig = Figure(figsize=(4.0 * len(PAPER_METRICS), 3.4))
    axes = fig.subplots(1, len(PAPER_METRICS))
    for ax, metric in zip(axes, PAPER_METRICS, strict=True):
        for i, pol in enumerate(SWEPT):
            x, mean, std = _group(rows, sweep, pol, metric)
            if len(x):
                ax.errorbar(
                    x, mean, yerr=std, marker="o", ms=4, capsize=3, label=pol, color=f"C{i}"
                )
        ax.set_title(metric.replace("_", " "), fontsize=10)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{name} preset: mean +- std over training seeds x evaluation episodes")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
