"""Wall time per planner episode and per plan: plans, plan and solver seconds (``marl.planner``).

A plan's time is all of ``make_plan`` (stops, roadmap, passing costs, the solve, the follower);
the solver's share is bounded by ``--time-limit``.

.venv/bin/python benchmarks/bench_planner.py --preset paper --episodes 3
.venv/bin/python benchmarks/bench_planner.py --preset large --episodes 1
.venv/bin/python benchmarks/bench_planner.py --preset paper --energy 40 --time-limit 0.5
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import jax

from chainsense.marl.evaluate import rollout
from chainsense.marl.planner import PlannerPolicy
from chainsense.sim.params import preset


@dataclass
class Counting:
    """A PlanningPolicy that counts the plans and the solver time of the one it wraps."""

    inner: PlannerPolicy
    replan_every: int = 25
    plans: int = 0
    solver_s: list[float] = field(default_factory=list)
    plan_s: list[float] = field(default_factory=list)

    def plan(self, state, params):
        t0 = time.perf_counter()
        made = self.inner.make_plan(state, params)
        self.plan_s.append(time.perf_counter() - t0)
        self.plans += 1
        self.solver_s.append(made.solution.wall_s)
        return made.follower


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--energy", type=float, default=None, help="initial_energy per MT")
    ap.add_argument("--time-limit", type=float, default=1.0, help="solver seconds per plan")
    a = ap.parse_args()
    params = preset(a.preset)
    if a.energy is not None:
        params = params.replace(initial_energy=a.energy)
    for seed in range(a.first_seed, a.first_seed + a.episodes):
        pol = Counting(PlannerPolicy(time_limit_s=a.time_limit))
        pol.replan_every = pol.inner.replan_every
        t0 = time.perf_counter()
        r = rollout(pol, params, jax.random.PRNGKey(seed))
        wall = time.perf_counter() - t0
        print(
            f"seed {seed}: {wall:6.1f} s wall, {pol.plans} plans, "
            f"{sum(pol.plan_s) / pol.plans:.2f} s per plan (max {max(pol.plan_s):.2f}), "
            f"solver {sum(pol.solver_s):5.1f} s (max {max(pol.solver_s):.2f} s per plan), "
            f"{int(r.metrics['slots'])} slots, "
            f"collection {r.metrics['data_collection_ratio']:.3f}, "
            f"fairness {r.metrics['fairness']:.3f}, "
            f"efficiency {r.metrics['energy_efficiency']:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
