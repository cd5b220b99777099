"""``chainsense run``: the main job (world -> fleet -> ledger -> verified records -> report)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from chainsense.cli.world import MAP_HELP, load_site_file

_console = Console()


def run_cmd(
    preset_name: str = typer.Option(
        "paper", "--preset", help="World preset: paper, energy, charging, dynamic, large or small."
    ),
    config: Path | None = typer.Option(  # noqa: B008
        None, "--config", help="TOML/YAML with [world], [train] and [ledger] sections."
    ),
    policy: str = typer.Option(
        "maddpg", "--policy", "-p", help="maddpg | iddpg | greedy | random."
    ),
    checkpoint: Path | None = typer.Option(  # noqa: B008
        None, "--checkpoint", help="A saved fleet (chainsense train); else a quick one is trained."
    ),
    train_minutes: float = typer.Option(
        2.0, "--train-minutes", help="Budget of the quick training run when no checkpoint is given."
    ),
    mode: str | None = typer.Option(
        None,
        "--mode",
        help="record: one record per transaction (as in the paper); "
        "batch: records under one Merkle root per transaction (default, or [ledger] mode).",
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", help="Records per batch in batch mode (default 500)."
    ),
    network: Path | None = typer.Option(  # noqa: B008
        None,
        "--network",
        help="network.json of `chainsense network up` instead of the embedded chain.",
    ),
    rpc: list[str] = typer.Option(  # noqa: B008
        [], "--rpc", help="JSON-RPC endpoint(s) instead of the embedded chain (repeatable)."
    ),
    orgs: int = typer.Option(
        1,
        "--orgs",
        help="Organisations of the consortium: each runs its own CA service (on the embedded "
        "chain; a --network file that lists organisations brings their CA keys).",
    ),
    threshold: int | None = typer.Option(
        None,
        "--threshold",
        "-k",
        help="Countersignatures of distinct CAs each record and batch root needs "
        "(default 1, or [ledger] threshold).",
    ),
    episodes: int = typer.Option(
        10, "--episodes", "-n", help="Episodes for the baseline comparison."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the map, the episode and the keys."),
    out: Path = typer.Option(Path("runs/latest"), "--out", help="Output directory."),  # noqa: B008
    include: list[Path] = typer.Option(  # noqa: B008
        [],
        "--include",
        help="Experiment output directories (reproduce, ddos) to add to the report.",
    ),
    map_file: Path | None = typer.Option(  # noqa: B008
        None,
        "--map",
        help=MAP_HELP + " The episode and the comparison play on it; a quick training run "
        "trains on drawn maps of the site's size.",
    ),
) -> None:
    """Run the whole system once and write a summary and a self-contained HTML report."""
    # imported here, not at the top: `chainsense --help` must not pay for JAX and web3
    from chainsense.job.options import JobOptions
    from chainsense.job.run import run_job
    from chainsense.job.summary import summary_rows
    from chainsense.ledger.config import load_ledger_config
    from chainsense.marl.config import load_train_config
    from chainsense.marl.registry import LEARNED
    from chainsense.sim.params import load_world_params

    params = load_world_params(preset_name, config)
    site = load_site_file(map_file, params)
    flags = {"mode": mode, "batch_size": batch_size, "threshold": threshold}
    ledger = dataclasses.replace(  # the command line overrides the [ledger] section
        load_ledger_config(config).with_chain(tuple(rpc), network),
        **{k: v for k, v in flags.items() if v is not None},
    )
    opts = JobOptions(
        params=site.params if site else params,
        policy=policy,
        checkpoint=checkpoint,
        train_minutes=train_minutes,
        train_config=load_train_config(config, policy) if policy in LEARNED else None,
        ledger=ledger,
        episodes=episodes,
        seed=seed,
        out=out,
        include=tuple(include),
        site=site,
        orgs=orgs,
    )
    tasks: dict[str, TaskID] = {}
    with Progress(
        TextColumn("{task.description:<34}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=_console,
    ) as bar:

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        result = run_job(opts, progress)
    table = Table(title="chainsense run")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for k, v in summary_rows(result):
        table.add_row(k, v)
    _console.print(table)
    _console.print(f"report: {result.files['report']}")
    if not result.ledger.all_accounted:
        _console.print(
            "[bold red]ledger verification failed[/]: "
            + "; ".join(result.ledger.verify_failures[:5])
        )
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``run`` to ``app``."""
    app.command("run")(run_cmd)
