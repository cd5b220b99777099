"""The policy that drives the MTs in ``chainsense run``: a baseline, a saved fleet, or a fleet
trained for a few minutes on the spot."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from chainsense.job.options import JobOptions
from chainsense.marl import registry, session
from chainsense.marl.config import TrainConfig
from chainsense.marl.learned import load_policy
from chainsense.marl.policies import Policy

Progress = Callable[[str, int, int], None]
"""``progress(phase, done, total)``; the CLI draws it as a Rich progress bar."""

_TRAIN_STEPS_SHOWN = 1000  # the training bar's resolution


def make_fleet(opts: JobOptions, progress: Progress) -> tuple[Policy, dict[str, float]]:
    """The fleet, and what its training cost (empty when nothing was trained)."""
    if opts.policy not in registry.LEARNED:
        return registry.baseline(opts.policy), {}
    if opts.checkpoint is not None:
        return load_policy(opts.policy, opts.checkpoint, opts.params)[0], {}
    cfg = dataclasses.replace(opts.train_config or TrainConfig(), algo=opts.policy)
    total = _TRAIN_STEPS_SHOWN

    def on_chunk(_row: dict[str, float], frac: float) -> None:
        progress("training", int(frac * total), total)

    result = session.run(
        cfg,
        opts.params,
        seed=opts.seed,
        minutes=opts.train_minutes,
        out_dir=opts.out / "fleet",
        on_chunk=on_chunk,
    )
    progress("training", total, total)
    policy, _ = load_policy(opts.policy, result.files["checkpoint"], opts.params)
    info = {
        "env_steps": float(result.env_steps),
        "updates": float(result.updates),
        "seconds": result.seconds,
    }
    return policy, info
