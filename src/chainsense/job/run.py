"""``chainsense run``: the paper's whole system in one pass.

chain -> fleet (loaded, or trained quickly) -> one recorded episode -> the ledger phase (every
collection event signed, countersigned, stored, read back, verified) -> the fleet against the
baselines -> a summary and one HTML report. Each phase is a function of its own module; this one
strings them together, times them and owns no protocol logic.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import jax

from chainsense.chain.base import Chain
from chainsense.chain.keys import KeyPair
from chainsense.job.fleet import Progress, make_fleet
from chainsense.job.ledger_phase import share_on_ledger
from chainsense.job.options import JobOptions
from chainsense.job.report import write_job_report
from chainsense.job.summary import JobResult, plot_ledger, write_summary
from chainsense.ledger.config import open_chain
from chainsense.marl import registry
from chainsense.marl.evaluate import rollout, write_table
from chainsense.marl.policies import Policy
from chainsense.sim.render import animate_episode, plot_map


def _noop(_phase: str, _done: int, _total: int) -> None:
    return None


@contextmanager
def _timed(phases: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = time.perf_counter() - start


def run_job(opts: JobOptions, progress: Progress = _noop) -> JobResult:
    """Run the whole system once (see the module docstring); writes into ``opts.out``."""
    phases: dict[str, float] = {}
    chain, funder = open_chain(opts.ledger)  # an unreachable node fails before any work
    try:
        opts.out.mkdir(parents=True, exist_ok=True)
        with _timed(phases, "fleet"):
            fleet, training = make_fleet(opts, progress)
        return _run_with_chain(opts, chain, funder, fleet, training, phases, progress)
    finally:
        chain.close()


def _run_with_chain(
    opts: JobOptions,
    chain: Chain,
    funder: KeyPair | None,
    fleet: Policy,
    training: dict[str, float],
    phases: dict[str, float],
    progress: Progress,
) -> JobResult:
    """Episode, ledger, baselines and report, once the chain and the fleet are ready."""
    files: dict[str, Path] = {}
    site = opts.site
    world_map = site.map if site else None
    with _timed(phases, "episode"):
        progress("episode", 0, 1)
        key = jax.random.PRNGKey(opts.seed)
        episode = rollout(fleet, opts.params, key, record=True, world_map=world_map)
        progress("episode", 1, 1)
        files["map"] = plot_map(
            episode.final_state,
            opts.params,
            opts.out / "map.png",
            positions=episode.positions,
            heat=True,
            title=f"{opts.policy} fleet, seed {opts.seed}",
            site=site,
        )
        files["animation"] = animate_episode(
            episode, opts.params, opts.out / "episode.gif", site=site
        )
    with _timed(phases, "ledger"):
        ledger = share_on_ledger(opts, chain, funder, episode.events, progress)
        files["ledger_plot"] = plot_ledger(ledger, opts.out / "ledger.png")
    with _timed(phases, "baselines"):
        progress("baselines", 0, 1)
        seeds = range(opts.seed, opts.seed + opts.episodes)
        contenders = registry.with_baselines(opts.policy, fleet)
        tables = registry.compare(contenders, opts.params, seeds, world_map=world_map)
        _, _, files["metrics_plot"] = write_table(tables, opts.out / "metrics")
        progress("baselines", 1, 1)
    result = JobResult(
        options=opts,
        episode_metrics=episode.metrics,
        comparison=tables,
        ledger=ledger,
        phases=phases,
        files=files,
        training=training,
    )
    files["summary"] = write_summary(result, opts.out / "summary.json")
    files["report"] = write_job_report(result, opts.out / "report.html")
    return result
