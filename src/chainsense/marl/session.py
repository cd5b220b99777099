"""A training session: budget, progress bar, CSV / TensorBoard logs, curves and checkpoints.

The heavy lifting runs in the chunk of ``marl.algos.make_chunk``; this module only calls it
repeatedly from Python, turns each chunk's statistics into a log row and stops on a step or
wall-clock budget. Time spent compiling counts against the budget.
"""

from __future__ import annotations

import csv
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np
from matplotlib.figure import Figure
from tensorboardX import SummaryWriter

from chainsense.errors import ChainsenseError, ConfigError
from chainsense.marl import algos, checkpoint, imitation, selection, train
from chainsense.marl.config import TrainConfig
from chainsense.marl.standing_grid import grid_problem
from chainsense.sim.maps import WorldMap, map_arrays
from chainsense.sim.params import WorldParams

LOG_COLUMNS = (
    "env_steps",
    "updates",
    "seconds",
    "episodes",
    "return",
    *train.METRIC_NAMES,
    *train.LOSS_NAMES,
    "noise",
    "energy_price",  # lambda of shaping = "efficiency" after the chunk (rewards.next_price), or NaN
    "validation",  # validation-map score when the fleet was scored after this chunk, else NaN
)


@dataclass
class TrainResult:
    """Outcome of :func:`run`: final learner, log rows, counters and the files written."""

    cfg: TrainConfig
    params: WorldParams
    learner: Any
    rows: list[dict[str, float]]
    env_steps: int
    updates: int
    episodes: int
    seconds: float
    interrupted: bool = False
    files: dict[str, Path] = field(default_factory=dict)
    pretrain: dict[str, Any] = field(default_factory=dict)  # ``marl.imitation`` report, if any
    selection: dict[str, Any] = field(default_factory=dict)  # ``marl.selection`` report, if any

    @property
    def steps_per_second(self) -> float:
        """Environment steps per wall-clock second, compilation included."""
        return self.env_steps / max(self.seconds, 1e-9)


class _Logger:
    """CSV + TensorBoard event files in ``out``; both flushed on every row."""

    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.csv_path = out / "train_log.csv"
        self._fh = self.csv_path.open("w", newline="", encoding="utf-8")
        self._csv = csv.DictWriter(self._fh, fieldnames=LOG_COLUMNS)
        self._csv.writeheader()
        self.tb_dir = out / "tensorboard"
        self._tb = SummaryWriter(logdir=str(self.tb_dir))

    def write(self, row: dict[str, float]) -> None:
        self._csv.writerow({k: f"{row[k]:.6g}" for k in LOG_COLUMNS})
        self._fh.flush()
        step = int(row["env_steps"])
        for k in LOG_COLUMNS[2:]:
            group = "episode" if k in ("return", *train.METRIC_NAMES) else "train"
            if group == "episode" and row["episodes"] == 0:
                continue
            if not np.isfinite(row[k]):
                continue
            self._tb.add_scalar(f"{group}/{k}", row[k], step)
        self._tb.flush()

    def close(self) -> None:
        self._fh.close()
        self._tb.close()


def _prices(cfg: TrainConfig) -> bool:
    """Whether the run's carry holds an energy price (MAPPO with ``shaping = "efficiency"``)."""
    return cfg.algo == "mappo" and cfg.shaping == "efficiency"


def _row(out: dict[str, Any], env_steps: int, updates: int, seconds: float, noise: float) -> dict:
    n = float(out["episodes"])
    row: dict[str, float] = {
        "env_steps": float(env_steps),
        "updates": float(updates),
        "seconds": seconds,
        "episodes": n,
        "noise": noise,
        "energy_price": float("nan"),
        "validation": float("nan"),
    }
    for k in ("return", *train.METRIC_NAMES):
        row[k] = float(out[k]) / n if n > 0 else float("nan")
    for k in train.LOSS_NAMES:
        row[k] = float(out[k])
    return row


def run(
    cfg: TrainConfig,
    params: WorldParams,
    *,
    seed: int = 0,
    steps: int | None = None,
    minutes: float | None = None,
    out_dir: str | Path | None = None,
    resume: str | Path | None = None,
    on_chunk: Callable[[dict[str, float], float], None] | None = None,
    world_map: WorldMap | None = None,
    learner: Any = None,
) -> TrainResult:
    """Train until ``steps`` env steps or ``minutes`` of wall clock, whichever comes first.

    With ``out_dir``, writes ``train_log.csv``, TensorBoard events under ``tensorboard/``,
    ``curves.png`` and ``fleet.msgpack``. ``resume`` continues from a checkpoint (its learner,
    optimiser state and step counters; the replay buffer starts empty and refills).
    ``on_chunk(row, fraction_done)`` is called after every chunk (progress bars). With
    ``world_map`` (a loaded site, ``sim.sites``) every episode is on that map instead of a
    random one (``params`` must be the site's). Ctrl-C stops
    after the current chunk is lost and still writes the checkpoint of the last finished chunk.
    MAPPO starts from ``learner`` when given; else, with ``cfg.imitate = "planner"`` and no
    ``resume``, from a clone of the planner (``marl.imitation``; its cost is in
    ``result.pretrain``, outside the step and time budgets).
    With ``cfg.select_every > 0`` the result's learner (and ``fleet.msgpack``) is the one that
    scored best on the validation maps (``marl.selection``); the last one, to resume from, is
    then also written as ``fleet_last.msgpack``.
    """
    if steps is None and minutes is None:
        raise ConfigError("steps", "give a step budget (--steps) or a time budget (--minutes)")
    if steps is not None and steps <= 0:
        raise ConfigError("steps", f"must be positive, got {steps}")
    if minutes is not None and not minutes > 0:
        raise ConfigError("minutes", f"must be positive, got {minutes}")
    if cfg.recharge_reflex and not params.charging:
        raise ConfigError(
            "recharge_reflex", "needs a world where MTs recharge (num_stations, charge_rate > 0)"
        )
    if cfg.recharge_setting and not params.charging:
        raise ConfigError(
            cfg.recharge_setting,
            "sets the recharge rule: needs a world where MTs recharge (num_stations, "
            "charge_rate > 0)",
        )
    if cfg.jain_weight and params.partial:
        raise ConfigError(
            "jain_weight", "reads every PoI's visit count: not under partial observation"
        )
    grid = grid_problem(params, cfg.target_grid)
    if grid:
        raise ConfigError("target_grid", grid)
    out = Path(out_dir) if out_dir is not None else None
    start_steps = start_episodes = 0
    start_seconds = 0.0
    site = None if world_map is None else map_arrays(world_map)
    pretrain: dict[str, Any] = {}
    # a missing or mismatched checkpoint is refused before anything is compiled
    ck = checkpoint.load(resume) if resume is not None else None
    if ck is not None:
        # how it trained, how it is chosen and how it acts, not what: resume with any of these
        how = (
            "devices",
            "select_every",
            "select_episodes",
            "select_noise",
            "select_metric",
            "eval_noise",
        )
        how = {k: getattr(cfg, k) for k in how}
        if dataclasses.replace(ck.cfg, **how) != cfg or ck.params != params:
            raise ConfigError(
                "resume",
                "checkpoint was trained with a different config or world; "
                "resume with the same --config/--preset",
            )
    if learner is None and ck is None and cfg.imitate == "planner":
        learner, pretrain = imitation.pretrain(cfg, params, seed, world_map)
    carry = algos.init_carry(jax.random.PRNGKey(seed), cfg, params, site, learner)
    if ck is not None:
        start_steps = int(ck.progress["env_steps"])
        start_episodes = int(ck.progress["episodes"])
        start_seconds = float(ck.progress["seconds"])
        key = jax.random.fold_in(jax.random.PRNGKey(seed), start_steps)
        carry = carry.replace(learner=ck.learner, env_steps=jax.numpy.int32(start_steps), key=key)
        if "energy_price" in ck.progress:  # the running lambda goes on where it stopped
            carry = carry.replace(price=jax.numpy.float32(ck.progress["energy_price"]))
    chunk = algos.make_chunk(cfg, params, site)
    chooser = selection.Selection(cfg, params, world_map)
    logger = _Logger(out) if out is not None else None
    rows: list[dict[str, float]] = []
    per_chunk = algos.steps_per_chunk(cfg)
    budget_steps = steps if steps is not None else None
    budget_seconds = minutes * 60.0 if minutes is not None else None
    t0 = time.perf_counter()
    done_steps = 0
    episodes = start_episodes
    interrupted = False
    try:
        while True:
            elapsed = time.perf_counter() - t0
            if budget_steps is not None and done_steps >= budget_steps:
                break
            if budget_seconds is not None and elapsed >= budget_seconds:
                break
            carry, stats = chunk(carry)
            stats = jax.device_get(stats)
            done_steps += per_chunk
            episodes += int(stats["episodes"])
            env_steps = start_steps + done_steps
            noise = (
                0.0 if cfg.algo == "mappo" else float(train.noise_scale(cfg, np.int64(env_steps)))
            )
            updates = int(carry.learner.updates)  # restored with the learner on resume
            elapsed = time.perf_counter() - t0
            row = _row(stats, env_steps, updates, start_seconds + elapsed, noise)
            if _prices(cfg):
                row["energy_price"] = float(carry.price)
            if chooser.due(env_steps):
                row["validation"] = chooser.consider(carry.learner, env_steps)
            rows.append(row)
            if logger is not None:
                logger.write(row)
            if on_chunk is not None:
                fracs = []
                if budget_steps is not None:
                    fracs.append(done_steps / budget_steps)
                if budget_seconds is not None:
                    fracs.append(elapsed / budget_seconds)
                on_chunk(row, min(1.0, max(fracs)))
    except KeyboardInterrupt:
        interrupted = True  # keep what was learned: fall through to the checkpoint
    finally:
        if logger is not None:
            logger.close()
    if any(x.is_deleted() for x in jax.tree_util.tree_leaves(carry.learner)):
        raise ChainsenseError("train: interrupted inside a compiled chunk; nothing was saved")
    final_steps = start_steps + done_steps
    if cfg.select_every > 0 and chooser.history and chooser.history[-1][0] != final_steps:
        chooser.consider(carry.learner, final_steps)  # the last fleet is a candidate too
    seconds = time.perf_counter() - t0
    chosen = chooser.best_learner if chooser.best_learner is not None else carry.learner
    chosen_cfg = chooser.choose_noise(chosen)  # cfg, or with the eval noise that scored best
    result = TrainResult(
        cfg=chosen_cfg,
        params=params,
        learner=chosen,
        rows=rows,
        env_steps=final_steps,
        updates=int(carry.learner.updates),
        episodes=episodes,
        seconds=seconds,
        interrupted=interrupted,
        pretrain=pretrain,
        selection=chooser.report() if chooser.history or chooser.noise_scores else {},
    )
    if out is not None:
        progress = {
            "env_steps": result.env_steps,
            "updates": result.updates,
            "episodes": episodes,
            "seconds": start_seconds + seconds,
            "seed": seed,
        }
        if _prices(cfg):
            progress["energy_price"] = float(carry.price)
        if chosen is not carry.learner:  # the last learner is the one to resume from
            result.files["last_checkpoint"] = checkpoint.save(
                out / "fleet_last.msgpack",
                checkpoint.Checkpoint(cfg, params, carry.learner, progress),
            )
            progress = {**progress, "chosen_env_steps": chooser.best_env_steps}
        ck_path = checkpoint.save(
            out / "fleet.msgpack", checkpoint.Checkpoint(chosen_cfg, params, chosen, progress)
        )
        result.files |= {
            "checkpoint": ck_path,
            "log": logger.csv_path if logger else out / "train_log.csv",
            "tensorboard": out / "tensorboard",
            "curves": plot_curves(rows, out / "curves.png", title=f"{cfg.algo} training"),
        }
    return result


def plot_curves(rows: list[dict[str, float]], path: str | Path, title: str = "") -> Path:
    """Learning curves (per-chunk means of finished training episodes) vs env steps, as PNG."""
    p = Path(path)
    shown = (
        ("return", "episode return (sum over MTs)"),
        ("energy_efficiency", "energy efficiency"),
        ("data_collection_ratio", "data collection ratio"),
        ("fairness", "fairness"),
        ("critic_loss", "critic loss"),
        ("q_mean", "mean Q"),
    )
    fig = Figure(figsize=(12, 6))
    axes = fig.subplots(2, 3)
    x = np.array([r["env_steps"] for r in rows], dtype=float)
    for ax, (key, label) in zip(axes.ravel(), shown, strict=True):
        y = np.array([r[key] for r in rows], dtype=float)
        ok = np.isfinite(y)
        ax.plot(x[ok], y[ok], lw=1.2)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("env steps", fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title + " (training episodes, with exploration noise)", fontsize=10)
    fig.tight_layout()
    fig.savefig(p, dpi=110)
    return p
