"""Every policy by name, and the one way to compare several on the same episodes.

Baselines are built from their name; learned fleets (one per training algorithm of
``marl.config``) are loaded from a checkpoint. ``chainsense run``, ``evaluate``, ``train`` and
the reproduce sweeps all pick policies here and compare them with :func:`compare`, so a new
policy is added in one place. The ``planner`` (``marl.planner``) plans on the host and takes
seconds per episode, so it is a baseline by name (``PLANNERS``) but not one of the
``BASELINES`` that every comparison (``with_baselines``, the reproduce sweeps) adds.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from chainsense.errors import ConfigError
from chainsense.marl.config import Algo, TrainConfig
from chainsense.marl.coverage import CoveragePolicy
from chainsense.marl.evaluate import EvalTable, evaluate
from chainsense.marl.greedy_local import GreedyLocalPolicy
from chainsense.marl.learned import load_policy
from chainsense.marl.planner import PlannerPolicy
from chainsense.marl.policies import (
    GreedyPolicy,
    PlanningPolicy,
    Policy,
    RandomPolicy,
    WeightedGreedyPolicy,
)
from chainsense.marl.recharge import ENDGAME_RULE
from chainsense.sim.maps import WorldMap
from chainsense.sim.params import WorldParams

AnyPolicy = Policy | PlanningPolicy
#: greedy-jain's weight of a visit of shortfall, in units of data (docs/learning.md, fourteenth
#: part)
JAIN_WEIGHT = 0.3
#: greedy-fair's score weights, the best fixed ones of a grid on `energy`'s and `large`'s
#: validation maps (greedy-fair-jain keeps them and adds the Jain term)
FAIR_WEIGHT = 30.0
FAIR_DISTANCE_POWER = 1.5
#: greedy-fair-jain's weight of the Jain term: where energy binds every PoI is served once at
#: most, and the term spreads the single visits (docs/learning.md, seventeenth part)
FAIR_JAIN_WEIGHT = 3.0
#: greedy-route's isolation power and territory factor (score_terms.ScoreTerms)
ROUTE_ISOLATION = 6.0
ROUTE_TERRITORY = 0.01
#: greedy-grid's spacing of the standing points within one move of an MT (marl.
#: standing_grid): on `dynamic`'s validation maps a finer lattice gains nothing more
GRID_SPACING = 0.125
#: greedy-travel's Jain weight and travel price (score_terms.ScoreTerms): the best of a grid on
#: `charging`'s validation maps (docs/learning.md, twentieth part)
TRAVEL_JAIN_WEIGHT = 0.03
TRAVEL_WEIGHT = 0.3
#: jitted baselines, cheap enough to accompany every comparison
BASELINES: dict[str, Callable[[], Policy]] = {
    "greedy": GreedyPolicy,
    "greedy-local": GreedyLocalPolicy,
    # greedy at its best fixed score weights (of a grid, on the validation maps of `energy` and
    # `large`): the opponent of fleets that learn those weights (marl.target_actions)
    "greedy-fair": lambda: WeightedGreedyPolicy(
        fairness_weight=FAIR_WEIGHT, distance_power=FAIR_DISTANCE_POWER
    ),
    # greedy-fair that also weighs what serving each PoI adds to Jain's index (policies.
    # jain_gain): the best of a grid on `energy`'s validation maps (and of a smaller one on
    # `large`'s), where a battery serves about half the PoIs once and Jain's index is most of the
    # efficiency left to win; the opponent of fleets that learn greedy's weights over that term
    "greedy-fair-jain": lambda: WeightedGreedyPolicy(
        fairness_weight=FAIR_WEIGHT,
        distance_power=FAIR_DISTANCE_POWER,
        jain_weight=FAIR_JAIN_WEIGHT,
    ),
    # greedy's rule on each MT's own belief: the heuristic that knows, under partial observation,
    # what a learned MT knows (with full observation it is greedy)
    "greedy-belief": lambda: WeightedGreedyPolicy(belief=True),
    # greedy's rule on what the MTs know (the truth, or each one's belief) at its best fixed weights
    # on `paper`'s validation maps: counting unvisited PoIs 1.03x and nearness to the power 20 (the
    # nearest PoIs first, the most data among them) saves travel where every PoI is drained anyway
    # (where data keeps arriving, `dynamic`, the trickle within one move beats any longer trip and
    # the MTs never leave their neighbourhood: not a baseline there)
    "greedy-near": lambda: WeightedGreedyPolicy(
        fairness_weight=0.03, distance_power=20.0, belief=True
    ),
    # greedy that also counts each PoI's backlog (its data beyond one slot's quota) twice: the best
    # of a grid on `dynamic`'s validation maps, where a full buffer and a nearly empty one have
    # the same quota; the opponent of fleets that learn greedy's weights over that backlog
    "greedy-backlog": lambda: WeightedGreedyPolicy(backlog_weight=2.0),
    # greedy-backlog that also weighs what serving each PoI adds to Jain's index (policies.
    # jain_gain): where data keeps arriving every PoI is visited again and again, and greedy's
    # unvisited term no longer sees which are served less; the best of a grid on `dynamic`'s
    # validation maps. It reads the true visit counts (not a baseline under partial observation)
    "greedy-jain": lambda: WeightedGreedyPolicy(backlog_weight=2.0, jain_weight=JAIN_WEIGHT),
    # greedy-backlog that may also stand anywhere within one move, on a lattice 0.125 apart
    # (marl.standing_grid): where data keeps arriving the disk between PoIs and the next step of
    # a sweep are the places worth standing; it collects the most of any rule measured on
    # `dynamic` (docs/learning.md, nineteenth part)
    "greedy-grid": lambda: WeightedGreedyPolicy(backlog_weight=2.0, grid=GRID_SPACING),
    # greedy-near that routes: a cluster's score divided by the PoIs with data round it to the
    # power 6 (a PoI that would be left stranded is drained before the MT moves on) and worth a
    # hundredth where another MT is nearer (the MTs split the area), nearness to the power 10:
    # the best of a grid on `paper`'s validation maps under partial observation (each MT on its
    # belief; the truth where every MT sees everything). For worlds that get drained, as
    # greedy-near
    "greedy-route": lambda: WeightedGreedyPolicy(
        fairness_weight=0.03,
        distance_power=10.0,
        belief=True,
        isolation_weight=ROUTE_ISOLATION,
        territory_weight=ROUTE_TERRITORY,
    ),
    # greedy that charges only what the slots left can spend (full, but at most 0.4 per slot
    # left; marl.recharge): the best of a grid on `charging`'s validation maps, where greedy's own
    # rule ends an episode with energy it spent slots charging; the same as greedy elsewhere
    "greedy-endgame": lambda: GreedyPolicy(recharge=ENDGAME_RULE),
    # greedy-endgame with the Jain term, standing on the lattice within one move, and a place d
    # away worth exp(-0.3 d): it drains the disk it stands on instead of hopping to a slightly
    # better one, as moving costs energy that must be charged back (`charging`; the met fleets
    # also go back below 40% of the battery, marl.recharge.EARLY_RULE, which this rule does not)
    "greedy-travel": lambda: WeightedGreedyPolicy(
        recharge=ENDGAME_RULE,
        jain_weight=TRAVEL_JAIN_WEIGHT,
        grid=GRID_SPACING,
        travel_weight=TRAVEL_WEIGHT,
    ),
    # the classical coverage path (marl.coverage): the fleet spread along one boustrophedon tour
    # at full speed, reading no data; where energy binds it serves the PoIs most evenly
    "coverage": CoveragePolicy,
    "random": RandomPolicy,
}
#: host-side planners (seconds per episode): compared only when named
PLANNERS: dict[str, Callable[[], PlanningPolicy]] = {"planner": PlannerPolicy}
LEARNED: tuple[str, ...] = typing.get_args(Algo)
#: the learned fleets of the paper's comparison (the reproduce sweeps): MADDPG and its ablation
PAPER_LEARNED: tuple[str, ...] = ("maddpg", "iddpg")
#: every policy name, learned fleets first (the order of tables and plots)
POLICY_NAMES: tuple[str, ...] = (*LEARNED, *BASELINES, *PLANNERS)


def check_name(name: str, field: str = "policy") -> str:
    """``name`` if it names a policy; else a ConfigError listing the known ones."""
    if name not in POLICY_NAMES:
        raise ConfigError(field, f"unknown policy {name!r} (known: {', '.join(POLICY_NAMES)})")
    return name


def baseline(name: str) -> AnyPolicy:
    """A baseline policy by name (one of :data:`BASELINES` or :data:`PLANNERS`)."""
    known: dict[str, Callable[[], AnyPolicy]] = {**BASELINES, **PLANNERS}
    if name not in known:
        raise ConfigError("policy", f"unknown baseline {name!r} (known: {', '.join(known)})")
    return known[name]()


def make_policy(
    name: str,
    checkpoint: str | Path | None,
    params: WorldParams,
    eval_noise: float | None = None,
) -> AnyPolicy:
    """Any policy by name: a baseline, or a learned fleet loaded from ``checkpoint`` (acting with
    ``eval_noise`` instead of the checkpoint's own when given)."""
    check_name(name)
    if eval_noise is not None:  # checked even when only baselines are named
        TrainConfig(eval_noise=eval_noise)  # TrainConfig owns the bounds; names eval_noise
    if name not in LEARNED:
        return baseline(name)
    if checkpoint is None:
        raise ConfigError("checkpoint", f"--policy {name} needs --checkpoint PATH")
    policy = load_policy(name, checkpoint, params)[0]
    if eval_noise is None:
        return policy
    return policy.replace(cfg=dataclasses.replace(policy.cfg, eval_noise=eval_noise))


#: the paper's comparison: what ``chainsense run`` and ``train`` put a fleet next to
CLASSIC: tuple[str, ...] = ("greedy", "random")


def with_baselines(name: str, policy: AnyPolicy) -> list[tuple[str, AnyPolicy]]:
    """``policy`` first, then the classic baselines of another name: the usual comparison."""
    return [(name, policy), *((b, baseline(b)) for b in CLASSIC if b != name)]


def compare(
    contenders: Sequence[tuple[str, AnyPolicy]],
    params: WorldParams,
    seeds: Iterable[int],
    on_policy: Callable[[str], None] | None = None,
    world_map: WorldMap | None = None,
) -> list[EvalTable]:
    """Evaluate every ``(name, policy)`` on the same seeded episodes; one table each, in order.
    ``on_policy(name)`` is called before each (for progress bars); ``world_map``: a fixed map
    for every episode (a loaded site)."""
    seeds = list(seeds)
    tables = []
    for name, policy in contenders:
        if on_policy is not None:
            on_policy(name)
        tables.append(evaluate(policy, params, seeds, name, world_map))
    return tables
