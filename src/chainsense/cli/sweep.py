"""``chainsense sweep SPEC`` / ``sweep report DIR`` and ``reproduce --preset``: experiment grids
on Ray (a local Ray by default, a cluster with ``--address`` or ``RAY_ADDRESS``)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from chainsense.errors import ConfigError

_console = Console()
_ADDRESS = typer.Option(
    None, "--address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)."
)
_CPUS = typer.Option(1, "--cpus", help="CPUs per run (a Ray resource; JAX threads per run).")
_SEQUENTIAL = typer.Option(
    False, "--sequential", help="Run one after another in this process, without Ray."
)


def _execute(spec: object, out: Path, address: str | None, cpus: int, sequential: bool) -> None:
    # imported here, not at the top: `chainsense --help` must not pay for Ray and JAX
    from chainsense.experiments import sweep_engine

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=_console,
    ) as bar:
        task = bar.add_task("runs", total=None, info="starting")

        def on_progress(p: sweep_engine.Progress) -> None:
            slow = ", ".join(f"{rid} {sec:.0f}s" for rid, sec in p.running[:2])
            failed = f"{p.failed} failed; " if p.failed else ""
            bar.update(task, completed=p.finished, total=p.total, info=failed + slow)

        outcome = sweep_engine.run_sweep(
            spec,  # type: ignore[arg-type]
            out,
            address=address,
            cpus_per_run=cpus,
            sequential=sequential,
            on_progress=on_progress,
        )
    _console.print(
        f"{outcome.ran} runs done, {outcome.skipped} already there, "
        f"{len(outcome.failures)} failed, in {outcome.seconds:.0f} s"
    )
    _report(out)
    for run_id, error in outcome.failures.items():
        _console.print(f"[red]failed[/] {run_id}: {error}", highlight=False)
    if outcome.failures:
        raise typer.Exit(1)


def _report(out: Path) -> None:
    # imported here, not at the top: the report loads matplotlib and SciPy
    from chainsense.experiments import sweep_report

    rep = sweep_report.write_report(out)
    for note in rep.skipped:
        _console.print(f"[yellow]skipped[/] {note}", highlight=False)
    if not rep.points:
        _console.print(f"no finished runs in {out}")
        return
    table = Table(title=f"{rep.runs} finished runs (mean +- 95% CI)")
    for col in ("scenario", "axis", "value", "policy", "n", *sweep_report.PAPER_METRICS):
        table.add_column(col.replace("_", " "))
    for p in rep.points:
        cells = [p.text(m) for m in sweep_report.PAPER_METRICS]
        table.add_row(p.scenario, p.axis, str(p.value), p.policy, p.count, *cells)
    _console.print(table)
    _console.print("wrote " + ", ".join(str(f) for f in rep.files))


def sweep_cmd(
    target: str = typer.Argument(..., help="A spec file (TOML/YAML), or 'report'."),
    directory: Path | None = typer.Argument(  # noqa: B008
        None, help="With 'report': the sweep's output directory."
    ),
    out: Path = typer.Option(Path("runs/sweep"), "--out", help="Output directory."),  # noqa: B008
    address: str | None = _ADDRESS,
    cpus: int = _CPUS,
    sequential: bool = _SEQUENTIAL,
) -> None:
    """Run every (configuration, seed) of a spec as a Ray task, resuming what is missing in
    --out; or 'report DIR': the table and figures of whatever has finished."""
    # imported here, not at the top: the spec checks worlds (JAX); `--help` must not pay
    from chainsense.experiments import sweep_spec

    if target == "report":
        if directory is None or not (directory / "runs").is_dir():
            raise ConfigError("DIR", f"not a sweep output directory: {directory}")
        _report(directory)
        return
    if directory is not None:
        raise ConfigError("DIR", "only 'sweep report DIR' takes a directory; use --out")
    _execute(sweep_spec.load(target), out, address, cpus, sequential)


def reproduce_cmd(
    preset_name: str = typer.Option(
        "smoke", "--preset", help="smoke (seconds), quick (minutes), paper (~90 min), full."
    ),
    out: Path = typer.Option(Path("runs/reproduce"), "--out", help="Output directory."),  # noqa: B008
    seeds: int | None = typer.Option(None, "--seeds", help="Training seeds per point."),
    episodes: int | None = typer.Option(None, "--episodes", help="Evaluation episodes per run."),
    address: str | None = _ADDRESS,
    cpus: int = _CPUS,
    sequential: bool = _SEQUENTIAL,
) -> None:
    """The paper's figures: metrics vs number of MTs and vs sensing range, learned fleets and
    baselines, as a named sweep (resumable: rerun with the same --out)."""
    # imported here, not at the top: the presets are checked specs (JAX); `--help` must not pay
    from chainsense.experiments import sweep_presets

    spec = sweep_presets.preset(preset_name, seeds=seeds, episodes=episodes)
    _execute(spec, out, address, cpus, sequential)


def register(app: typer.Typer) -> None:
    """Add this area's commands to app."""
    app.command("sweep")(sweep_cmd)
    app.command("reproduce")(reproduce_cmd)
