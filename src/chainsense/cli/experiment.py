"""``chainsense experiment ddos``: availability of a geth network vs MariaDB under a flood."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from chainsense.errors import ConfigError

exp_app = typer.Typer(help="Experiments that start real servers.", no_args_is_help=True)
_out = Console()
_OUT = typer.Option(Path("reports/ddos"), "--out", help="Directory for CSV, plot and table.")


def _levels(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError("--levels", f"must be comma-separated numbers, got {text!r}") from None


@exp_app.command("ddos")
def ddos_cmd(
    preset: str = typer.Option("quick", help="quick (CI, ~3 min) or full (~10 min)."),
    out: Path = _OUT,
    levels: str | None = typer.Option(None, help="Override attack rates, e.g. 0,500,2000."),
    repetitions: int | None = typer.Option(None, help="Override repetitions per level."),
    duration: float | None = typer.Option(None, help="Override seconds of flood per trial."),
    seed: int | None = typer.Option(None, help="Override the seed (record contents, query ids)."),
    hold: float | None = typer.Option(
        None, help="Override how long each attack connection stays open after its answer (s)."
    ),
) -> None:
    """Flood a MariaDB server and a geth network on loopback; measure legitimate queries."""
    # imported here, not at the top: the experiment loads web3 and pymysql, which
    # `chainsense --help` must not pay for
    from chainsense.experiments import ddos

    if preset not in ddos.PRESETS:
        raise ConfigError("--preset", f"must be one of {sorted(ddos.PRESETS)}, got {preset!r}")
    cfg = ddos.PRESETS[preset]
    overrides = {
        "levels": _levels(levels),
        "repetitions": repetitions,
        "duration_s": duration,
        "seed": seed,
        "hold_s": hold,
    }
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_out,
    ) as bar:
        task = bar.add_task("ddos", total=len(cfg.levels) * cfg.repetitions * len(cfg.systems))

        def progress(desc: str, done: int, total: int) -> None:
            bar.update(task, description=desc, completed=done, total=total)

        result = ddos.run(cfg, out, progress=progress)
    table = Table(title=f"availability under flood ({preset}; mean ± std over repetitions)")
    for col in (
        "system",
        "attack/s",
        "achieved/s",
        "success",
        "imm. failure",
        "timeout",
        "p50 ms",
        "p99 ms",
    ):
        table.add_column(col)
    for s in result.summary:
        table.add_row(
            s.system,
            f"{s.level:g}",
            f"{s.attack_rate_achieved:.0f}",
            f"{s.success_mean:.3f} ± {s.success_std:.3f}",
            f"{s.failure_mean:.3f} ± {s.failure_std:.3f}",
            f"{s.timeout_mean:.3f} ± {s.timeout_std:.3f}",
            f"{s.p50_ms_mean:.1f}",
            f"{s.p99_ms_mean:.1f}",
        )
    _out.print(table)
    for name, path in result.files.items():
        _out.print(f"{name}: {path}")


def register(app: typer.Typer) -> None:
    """Add the ``experiment`` command group to app."""
    app.add_typer(exp_app, name="experiment")
