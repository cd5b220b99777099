"""Greedy's rule at other fixed score weights, on a preset's validation maps: the grids behind
``greedy-fair``, ``greedy-near``, ``greedy-backlog``, ``greedy-endgame``, ``greedy-jain`` and
``greedy-route`` (docs/learning.md, eighth to fifteenth parts).

Each ``FAIRNESS,POWER[,BACKLOG[,JAIN[,ISOLATION[,TERRITORY[,TRAVEL]]]]][/FULL,PER_SLOT_LEFT]``
point is ``policies.WeightedGreedyPolicy`` with unvisited PoIs counted ``1 + FAIRNESS`` times,
the slots to a PoI raised to ``POWER``, ``BACKLOG`` times the data beyond one slot's quota and
``JAIN`` times what serving a PoI adds to Jain's index (``policies.jain_gain``), the score
divided by the PoIs with data round a cluster to the power ``ISOLATION``, ``TERRITORY`` the
factor on clusters another MT is nearer to and a place ``d`` away worth ``exp(-TRAVEL * d)``
of its score (``score_terms.ScoreTerms``); where MTs recharge,
``/FULL,PER_SLOT_LEFT[,BELOW]`` sets the recharge rule (``marl.recharge``: charge to ``FULL`` of
the battery, at most ``PER_SLOT_LEFT`` per slot left, and go back below ``BELOW`` of it;
greedy's is ``/0.9,0``, ``greedy-endgame``'s ``1,1/1,0.4``). ``--grid S`` lets every point also
stand anywhere within one move, on a lattice of spacing ``S`` (``marl.standing_grid``;
``greedy-grid`` is ``--grid 0.125 1,1,2``).
``greedy`` itself is scored on the same maps, and every point is printed as a ratio of it. The
maps are the validation ones (seeds 20000.., as model selection uses), so the held-out maps
that judge fleets stay unseen by the choice of weights. The last line takes the best point map
by map, with hindsight: an upper bound on what choosing among the points per episode could add
to the best single one.

    python benchmarks/bench_weights.py --preset dynamic --maps 32 1,1 1,1,1 1,1,2 1,1,3 \
        1,1,2,0.003 --json weights_dynamic.json
    python benchmarks/bench_weights.py --preset paper --world observe_radius=3 \
        --world share_delay=1 --belief 0.03,20 0.03,10,0,0,6,0.01
    python benchmarks/bench_weights.py --preset charging 1,1/1,0 1,1/1,0.3 1,1/1,0.4 1,1/1,0.5
    python benchmarks/bench_weights.py --preset dynamic --grid 0.125 1,1,2 1,1.2,2 0.3,1,2
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np

from bench_learning import world_params, write_report
from chainsense.errors import ConfigError
from chainsense.marl.config import MAX_DISTANCE_POWER
from chainsense.marl.evaluate import evaluate
from chainsense.marl.policies import GreedyPolicy, WeightedGreedyPolicy
from chainsense.marl.recharge import CONFIG_CONSTANTS, GREEDY_RULE, RechargeRule
from chainsense.marl.score_terms import TERM_BOUNDS
from chainsense.marl.standing_grid import grid_problem

#: metrics printed and written for every point
METRICS = (
    "energy_efficiency",
    "data_collection_ratio",
    "fairness",
    "energy_usage_ratio",
    "data_lost",
    "data_collected",
    "mean_age",
    "energy_charged",
)
#: column headings (10 characters at most)
HEADINGS = {
    "energy_efficiency": "efficiency",
    "data_collection_ratio": "collection",
    "energy_usage_ratio": "energy use",
    "data_lost": "lost",
    "data_collected": "collected",
    "mean_age": "mean age",
    "energy_charged": "charged",
}
#: the validation maps' first seed (``marl.selection``)
FIRST_VALIDATION_MAP = 20_000


Weights = tuple[float, float, float, float, float, float, float]
"""fairness, distance power, backlog, Jain, isolation, territory and travel weights of a point"""

#: the point format, for the help and the errors
POINT = "FAIRNESS,POWER[,BACKLOG[,JAIN[,ISOLATION[,TERRITORY[,TRAVEL]]]]]"


def parse_point(text: str) -> tuple[Weights, RechargeRule]:
    """:data:`POINT` ``[/FULL,PER_SLOT_LEFT]`` as numbers and a recharge rule, or exit naming
    the bad point."""
    weights, _, rule_text = text.partition("/")
    values = _weights(text, weights)
    if not rule_text:
        return values, GREEDY_RULE
    try:
        numbers = [float(x) for x in rule_text.split(",")]
        if len(numbers) not in (2, 3):
            raise ValueError(f"{len(numbers)} numbers")
        names = CONFIG_CONSTANTS[: len(numbers)]  # FULL, PER_SLOT_LEFT[, BELOW]
        rule = RechargeRule(**dict(zip(names, numbers, strict=True)))
    except (ValueError, ConfigError) as err:
        raise SystemExit(
            f"point {text!r}: want /FULL,PER_SLOT_LEFT[,BELOW] with FULL in [0.05, 1], "
            f"PER_SLOT_LEFT >= 0 and BELOW in [0, 1] ({err})"
        ) from None
    return values, rule


def _weights(text: str, weights: str) -> Weights:
    """The weights part (:data:`POINT`) of point ``text``, or exit naming it."""
    parts = weights.split(",")
    try:
        values = [float(x) for x in parts]
    except ValueError:
        values = []
    if not 2 <= len(values) <= 7 or not all(math.isfinite(v) for v in values):
        raise SystemExit(f"point {text!r}: want {POINT} as finite numbers")
    # the weights left out are greedy's: no backlog, Jain, isolation or travel term, territory 1
    fairness, power, backlog, jain, isolation, territory, travel = (
        *values,
        *(0.0, 0.0, 0.0, 1.0, 0.0)[len(values) - 2 :],
    )
    terms = dict(zip(TERM_BOUNDS, (backlog, jain, isolation, territory, travel), strict=True))
    if not (
        0.0 <= fairness <= 1e4
        and 0.0 <= power <= MAX_DISTANCE_POWER
        and all(low <= terms[name] <= high for name, (low, high) in TERM_BOUNDS.items())
    ):
        ranges = ", ".join(
            f"{name} in [{low:g}, {high:g}]" for name, (low, high) in TERM_BOUNDS.items()
        )
        raise SystemExit(
            f"point {text!r}: fairness in [0, 1e4], power in [0, {MAX_DISTANCE_POWER:g}], {ranges}"
        )
    return fairness, power, backlog, jain, isolation, territory, travel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("points", nargs="+", help=f"{POINT}[/FULL,PER_SLOT_LEFT[,BELOW]] to score")
    ap.add_argument("--preset", default="paper")
    ap.add_argument(
        "--world", action="append", default=[], help="world KEY=VALUE over the preset (repeatable)"
    )
    ap.add_argument("--maps", type=int, default=32, help="validation maps per point")
    ap.add_argument("--first-map", type=int, default=FIRST_VALIDATION_MAP)
    ap.add_argument("--belief", action="store_true", help="each MT on its own belief")
    ap.add_argument(
        "--grid",
        type=float,
        default=0.0,
        help="every point may also stand within one move on a lattice of this spacing (0: the "
        "PoIs only)",
    )
    ap.add_argument("--json", type=Path, default=None, help="write every figure here")
    args = ap.parse_args()
    if not 1 <= args.maps <= 10_000:
        raise SystemExit(f"--maps must be in [1, 10000], got {args.maps}")
    points = [parse_point(p) for p in args.points]
    params = world_params(args.preset, args.world)
    grid = grid_problem(params, args.grid)
    if grid:
        raise SystemExit(f"--grid {grid}")
    if args.belief and params.partial and any(w[3] for w, _ in points):
        raise SystemExit(
            "JAIN reads every PoI's visit count: not with --belief under partial observation"
        )
    seeds = list(range(args.first_map, args.first_map + args.maps))

    greedy = evaluate(GreedyPolicy(), params, seeds).mean
    per_map: list[np.ndarray] = []  # each point's efficiency on every map
    rows: list[dict[str, Any]] = []
    headings = " ".join(f"{HEADINGS.get(m, m)[:10]:>10}" for m in METRICS)
    print(f"{'weights':>24} {headings}   x greedy")
    print(f"{'greedy':>24} " + " ".join(f"{greedy[m]:10.4f}" for m in METRICS))
    for weights, rule in points:
        fairness, power, backlog, jain, isolation, territory, travel = weights
        policy = WeightedGreedyPolicy(
            fairness,
            power,
            args.belief,
            backlog,
            rule,
            jain,
            isolation,
            territory,
            args.grid,
            travel,
        )
        table = evaluate(policy, params, seeds)
        mean = table.mean
        per_map.append(table.per_episode["energy_efficiency"])
        ratio = {m: mean[m] / greedy[m] if greedy[m] else math.nan for m in METRICS[:2]}
        recharge = [rule.full, rule.per_slot_left, *([rule.below] if rule.below else [])]
        rows.append(
            {
                "weights": list(weights),
                "recharge": recharge,
                "mean": mean,
                "x_greedy": ratio,
            }
        )
        label = f"{fairness:g}, {power:g}, {backlog:g}" + (f", {jain:g}" if jain else "")
        if (isolation, territory, travel) != (0.0, 1.0, 0.0):
            label += f", {jain:g}" * (not jain) + f", {isolation:g}, {territory:g}"
        if travel:
            label += f", {travel:g}"
        if rule != GREEDY_RULE:
            label += f" / {rule.full:g}, {rule.per_slot_left:g}"
            label += f", {rule.below:g}" if rule.below else ""
        print(
            f"{label:>24} "
            + " ".join(f"{mean[m]:10.4f}" for m in METRICS)
            + f"   efficiency {ratio['energy_efficiency']:.3f}, "
            f"collection {ratio['data_collection_ratio']:.3f}",
            flush=True,
        )
    # choosing the point map by map, with hindsight: an upper bound on what choosing among these
    # points per episode (from anything a policy could know) can add to the best single point
    hindsight = float(np.mean(np.max(np.stack(per_map), axis=0)))
    best_point = max(r["mean"]["energy_efficiency"] for r in rows)
    print(
        f"{'best point per map':>24} {hindsight:10.4f}   efficiency "
        f"{hindsight / greedy['energy_efficiency']:.3f} x greedy, "
        f"{hindsight / best_point:.3f} x the best point (with hindsight)"
    )
    report = {
        "preset": args.preset,
        "world": args.world,
        "belief": args.belief,
        "grid": args.grid,
        "maps": seeds,
        "greedy": greedy,
        "points": rows,
        "hindsight_efficiency": hindsight,
    }
    write_report(report, args.json)


if __name__ == "__main__":
    main()
