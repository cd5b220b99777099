"""``chainsense tune``: hyperparameter search (Ray Tune, ASHA) for one algorithm on one world,
writing the best config as a ``[train]`` file that ``chainsense train --config`` reads."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from chainsense.config import read_section
from chainsense.sim.params import load_world_params

_console = Console()


def tune_cmd(
    algo: str = typer.Option("mappo", "--algo", help="maddpg, iddpg or mappo."),
    preset_name: str = typer.Option("paper", "--preset", help="World preset."),
    config: Path | None = typer.Option(  # noqa: B008
        None, "--config", help="TOML/YAML: its [world] and [train] are the base of every trial."
    ),
    steps: int = typer.Option(1_000_000, "--steps", help="Env steps per trial (if not stopped)."),
    trials: int = typer.Option(8, "--trials", help="Sampled configs."),
    rungs: int = typer.Option(4, "--rungs", help="Evaluations per trial (ASHA's rungs)."),
    episodes: int = typer.Option(5, "--episodes", help="Held-out episodes per evaluation."),
    seed: int = typer.Option(0, "--seed", help="Training seed of every trial."),
    out: Path = typer.Option(Path("runs/tune"), "--out", help="Output directory."),  # noqa: B008
    address: str | None = typer.Option(
        None, "--address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)."
    ),
    cpus: int = typer.Option(1, "--cpus", help="CPUs per trial."),
) -> None:
    """Search learning rates, exploration and batch settings with ASHA early stopping."""
    # imported here, not at the top: `chainsense --help` must not pay for Ray and JAX
    from chainsense.experiments import tune

    job = tune.TuneJob(
        algo=algo,
        world=load_world_params(preset_name, config),
        base=read_section(config, "train"),
        steps=steps,
        trials=trials,
        rungs=rungs,
        episodes=episodes,
        seed=seed,
    )
    _console.print(
        f"tuning {algo} on {preset_name}: {trials} trials of up to {steps:,} steps, "
        f"{rungs} rungs of {episodes} held-out episodes each"
    )
    best = tune.run_tune(job, out, address=address, cpus=cpus)
    _console.print(f"best config: {best} (all trials: {best.parent / tune.TRIALS_FILE})")
    _console.print(f"train with it: chainsense train --preset {preset_name} --config {best}")


def register(app: typer.Typer) -> None:
    """Add this area's command to app."""
    app.command("tune")(tune_cmd)
