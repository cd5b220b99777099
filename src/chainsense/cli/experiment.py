"""``chainsense experiment ddos``: availability of MariaDB (as deployed, defended, replicated) and
a geth network under request floods."""

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


def _names(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(x.strip() for x in text.split(",") if x.strip())


# config fields that an option sets under another name: errors name the option the user typed
_OPTION_OF = {"systems": "--systems", "attacks": "--attack", "attack_sources": "--sources"}


def _levels(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError("--levels", f"must be comma-separated numbers, got {text!r}") from None


@exp_app.command("ddos")
def ddos_cmd(
    preset: str = typer.Option("quick", help="quick (CI, ~3 min) or full (~35 min)."),
    out: Path = _OUT,
    levels: str | None = typer.Option(None, help="Override attack rates, e.g. 0,500,2000."),
    repetitions: int | None = typer.Option(None, help="Override repetitions per level."),
    duration: float | None = typer.Option(None, help="Override seconds of flood per trial."),
    seed: int | None = typer.Option(None, help="Override the seed (record contents, query ids)."),
    hold: float | None = typer.Option(
        None, help="Override how long each attack connection stays open after its answer (s)."
    ),
    systems: str | None = typer.Option(
        None, help="Systems, e.g. mariadb,mariadb-defended,mariadb-replicated,geth."
    ),
    attack: str | None = typer.Option(None, help="Attacks, e.g. connect,expensive,single-node."),
    sources: int | None = typer.Option(
        None, help="Attacker source addresses (127.0.0.2, ...); default one per attack process."
    ),
) -> None:
    """Flood MariaDB (plain, defended, replicated) and a geth network on loopback; measure
    legitimate queries."""
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
        "systems": _names(systems),
        "attacks": _names(attack),
        "attack_sources": sources,
    }
    try:
        cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        if exc.field not in _OPTION_OF:
            raise
        raise ConfigError(_OPTION_OF[exc.field], str(exc).split(": ", 1)[1]) from None
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_out,
    ) as bar:
        task = bar.add_task("ddos", total=cfg.trial_count)

        def progress(desc: str, done: int, total: int) -> None:
            bar.update(task, description=desc, completed=done, total=total)

        result = ddos.run(cfg, out, progress=progress)
    table = Table(title=f"availability under flood ({preset}; mean ± std over repetitions)")
    for col in (
        "system",
        "attack",
        "attack/s",
        "achieved/s",
        "success",
        "imm. failure",
        "timeout",
        "p50 ms",
        "p99 ms",
        "CPU %",
        "RSS MiB",
    ):
        table.add_column(col)
    for s in result.summary:
        table.add_row(
            s.system,
            s.attack,
            f"{s.level:g}",
            f"{s.attack_rate_achieved:.0f}",
            f"{s.success_mean:.3f} ± {s.success_std:.3f}",
            f"{s.failure_mean:.3f} ± {s.failure_std:.3f}",
            f"{s.timeout_mean:.3f} ± {s.timeout_std:.3f}",
            f"{s.p50_ms_mean:.1f}",
            f"{s.p99_ms_mean:.1f}",
            f"{s.server_cpu_pct:.0f}",
            f"{s.server_rss_mib:.0f}",
        )
    _out.print(table)
    for name, path in result.files.items():
        _out.print(f"{name}: {path}")


def register(app: typer.Typer) -> None:
    """Add the ``experiment`` command group to app."""
    app.add_typer(exp_app, name="experiment")
