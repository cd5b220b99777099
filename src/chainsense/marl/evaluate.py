"""Episode rollouts and evaluation tables for any policy (see ``marl.policies``).

A rollout is one ``lax.scan`` over the ``num_slots`` slots inside ``jit``; evaluation ``vmap``s
it over the episode seeds, so N episodes cost one compiled call. Episode ``seed`` uses
``PRNGKey(seed)``: the reset key is ``fold_in(key, 0)``, slot t's keys come from
``fold_in(key, t + 1)``. With a ``world_map`` (a loaded site, ``sim.sites``) every episode starts
on that fixed map instead of one drawn from the reset key; the seeds still drive the policy.
A ``PlanningPolicy`` (host-side planner) is played instead in chunks between plans, one episode
after another (``marl.replanning``), with the same results' shapes.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from matplotlib.figure import Figure

from chainsense.errors import ConfigError
from chainsense.marl import failures, memory
from chainsense.marl.policies import PlanningPolicy, Policy
from chainsense.marl.replanning import planned_episode
from chainsense.sim.events import CollectionEvent, collection_events
from chainsense.sim.maps import MapArrays, WorldMap, map_arrays
from chainsense.sim.metrics import ALL_METRICS, PAPER_METRICS, episode_metrics
from chainsense.sim.params import WorldParams
from chainsense.sim.state import WorldState
from chainsense.sim.world import episode_start, step

FixedMap = MapArrays | None
"""The arrays of a fixed map, or None: a map drawn from each reset key."""


@dataclass
class Rollout:
    """Result of one episode; ``positions``/``events``/``rewards`` only when recorded."""

    final_state: WorldState
    metrics: dict[str, float]
    positions: np.ndarray | None = None  # [T+1, M, 2]
    rewards: np.ndarray | None = None  # [T, M]
    events: list[CollectionEvent] = field(default_factory=list)
    data_history: np.ndarray | None = None  # [T+1, K] remaining data per PoI


def _fixed(world_map: WorldMap | None) -> FixedMap:
    return None if world_map is None else map_arrays(world_map)


def _episode(
    policy: Policy, key: Array, params: WorldParams, record: bool, fixed: FixedMap = None
) -> tuple[WorldState, dict[str, Array], Any]:
    state, obs = episode_start(key, params, fixed)

    def body(carry: tuple[WorldState, Array, Array, Array], t: Array) -> tuple[tuple, Any]:
        s, o, mem, fails = carry  # mem: what a policy with memory carries (marl.memory)
        k = jax.random.fold_in(key, t + 1)
        ka, ks = jax.random.split(k)
        actions, mem = memory.act_and_carry(policy, ka, o, s, params, mem)
        s2, o2, r, _, info = step(ks, s, actions, params)
        out = (s2.mt_pos, r, info.collected_per_poi, s2.poi_data) if record else None
        mem = memory.update(policy, mem, actions, info, params)
        return (s2, o2, mem, failures.count(fails, s, info, params)), out

    init = (state, obs, memory.initial(policy, params), failures.initial(params))
    (final, _, _, fails), trace = jax.lax.scan(body, init, jnp.arange(params.num_slots))
    if record:
        pos = jnp.concatenate([state.mt_pos[None], trace[0]], axis=0)
        data = jnp.concatenate([state.poi_data[None], trace[3]], axis=0)
        trace = (pos, trace[1], trace[2], data)
    metrics = {**episode_metrics(final, params), **failures.summary(fails, params)}
    return final, metrics, trace


@partial(jax.jit, static_argnames=("params", "record"))
def _rollout_jit(
    policy: Policy, key: Array, params: WorldParams, record: bool, fixed: FixedMap = None
) -> Any:
    return _episode(policy, key, params, record, fixed)


@partial(jax.jit, static_argnames=("params",))
def _batch_jit(policy: Policy, keys: Array, params: WorldParams, fixed: FixedMap = None) -> Any:
    # Blocks of up to 128 episodes are vmapped and scanned through all slots while their state
    # stays in cache (lax.map with batch_size): about twice the throughput of one wide vmap.
    # Only the metrics come back: lax.map cannot batch a state whose scenario arrays have size 0.
    block = min(keys.shape[0], 128)
    return jax.lax.map(
        lambda k: _episode(policy, k, params, False, fixed)[1], keys, batch_size=block
    )


def rollout(
    policy: Policy | PlanningPolicy,
    params: WorldParams,
    key: Array,
    record: bool = False,
    world_map: WorldMap | None = None,
) -> Rollout:
    """Play one episode of ``params.num_slots`` slots with ``policy`` from ``key`` (on
    ``world_map`` when given, else on the map drawn from ``key`` or ``params.map_seed``).

    With ``record``, also return MT positions [T+1,M,2], rewards [T,M], remaining data per slot and
    every collection event (slot, MT, PoI, amount, MT position after the move).
    """
    if isinstance(policy, PlanningPolicy):
        final, metrics, trace = planned_episode(policy, key, params, record, world_map)
    else:
        final, metrics, trace = _rollout_jit(policy, key, params, record, _fixed(world_map))
    result = Rollout(final, {k: float(v) for k, v in metrics.items()})
    if record:
        pos, rewards, per_poi, data = (np.asarray(x) for x in trace)
        result.positions, result.rewards, result.data_history = pos, rewards, data
        result.events = collection_events(per_poi, pos)
    return result


@dataclass(frozen=True)
class EvalTable:
    """Per-episode metrics and their mean / std for one policy."""

    policy: str
    seeds: tuple[int, ...]
    per_episode: dict[str, np.ndarray]  # metric -> [N]

    @property
    def mean(self) -> dict[str, float]:
        """Mean of every metric over the episodes."""
        return {k: float(np.mean(v)) for k, v in self.per_episode.items()}

    @property
    def std(self) -> dict[str, float]:
        """Population standard deviation of every metric over the episodes."""
        return {k: float(np.std(v)) for k, v in self.per_episode.items()}


def evaluate(
    policy: Policy | PlanningPolicy,
    params: WorldParams,
    seeds: Sequence[int],
    name: str = "policy",
    world_map: WorldMap | None = None,
) -> EvalTable:
    """Run one episode per seed (batched: vmap over seeds; a planner: one after another) and
    tabulate every metric; every episode on ``world_map`` when given."""
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ConfigError("episodes", "need at least one episode")
    if isinstance(policy, PlanningPolicy):
        runs = [rollout(policy, params, jax.random.PRNGKey(s), False, world_map) for s in seeds]
        per = {k: np.array([r.metrics[k] for r in runs], np.float64) for k in ALL_METRICS}
        # (the failure counters of marl.failures are counted in the jitted rollout only)
        return EvalTable(name, seeds, per)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    metrics = _batch_jit(policy, keys, params, _fixed(world_map))
    names = (*ALL_METRICS, *failures.NAMES)
    per = {k: np.asarray(metrics[k], dtype=np.float64) for k in names}
    return EvalTable(name, seeds, per)


def write_table(tables: Sequence[EvalTable], out_dir: str | Path) -> list[Path]:
    """Write ``eval.csv`` (a row per policy and episode), ``eval.json`` (mean/std), ``eval.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path, png_path = out / "eval.csv", out / "eval.json", out / "eval.png"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["policy", "seed", *ALL_METRICS])
        for tb in tables:
            for i, seed in enumerate(tb.seeds):
                w.writerow([tb.policy, seed, *(f"{tb.per_episode[m][i]:.6g}" for m in ALL_METRICS)])
    summary = {
        tb.policy: {
            "episodes": len(tb.seeds),
            "seeds": list(tb.seeds),
            "mean": tb.mean,
            "std": tb.std,
        }
        for tb in tables
    }
    json_path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    plot_table(tables, png_path)
    return [csv_path, json_path, png_path]


def plot_table(tables: Sequence[EvalTable], path: str | Path) -> None:
    """Bar chart (mean +- std) of the four ratio metrics, one bar group per policy."""
    shown = PAPER_METRICS
    fig = Figure(figsize=(3.2 * len(shown), 3.2))
    axes = fig.subplots(1, len(shown))
    names = [tb.policy for tb in tables]
    for ax, metric in zip(axes, shown, strict=True):
        means = [tb.mean[metric] for tb in tables]
        stds = [tb.std[metric] for tb in tables]
        ax.bar(names, means, yerr=stds, capsize=4, color=[f"C{i}" for i in range(len(names))])
        ax.set_title(metric.replace("_", " "), fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
    n = len(tables[0].seeds) if tables else 0
    fig.suptitle(f"mean +- std over {n} episodes", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
