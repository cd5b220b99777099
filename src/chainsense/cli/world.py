"""CLI commands of the 'world' area: ``evaluate`` (baseline tables) and ``render`` (map + GIF)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from chainsense.errors import ConfigError
from chainsense.sim.params import WorldParams, load_world_params

if TYPE_CHECKING:
    from chainsense.marl.evaluate import EvalTable
    from chainsense.sim.params import WorldParams
    from chainsense.sim.sites import Site

_console = Console()


def metric_table(tables: Sequence[EvalTable], title: str, params: WorldParams) -> Table:
    """Mean +- std of every metric of the world, one column per policy (``evaluate``, ``train``)."""
    # imported here, not at the top: sim.metrics loads JAX, which `--help` must not pay for
    from chainsense.sim.metrics import metric_names

    table = Table(title=title)
    table.add_column("metric")
    for tb in tables:
        table.add_column(tb.policy, justify="right")
    for metric in metric_names(params):
        table.add_row(metric, *(f"{tb.mean[metric]:.4g} +- {tb.std[metric]:.2g}" for tb in tables))
    return table


def _check_run_args(episodes: int, seed: int) -> None:
    if not 1 <= episodes <= 100_000:
        raise ConfigError("episodes", f"must be in [1, 100000], got {episodes}")
    if not 0 <= seed < 2**31:
        raise ConfigError("seed", f"must be in [0, 2^31), got {seed}")


def load_site_file(map_file: Path | None, params: WorldParams) -> Site | None:
    """The site in ``--map FILE`` over the preset's parameters (None without ``--map``)."""
    if map_file is None:
        return None
    # imported here, not at the top: sim.sites loads JAX and shapely; `--help` must not pay
    from chainsense.sim.sites import load_site

    site = load_site(map_file, params)
    p = site.params
    _console.print(
        f"site {map_file.name}: {p.width:.4g} x {p.height:.4g} world ({site.scale:.4g} per site "
        f"unit), {p.num_pois} PoIs, {len(site.polygons)} obstacles as {p.num_obstacles} boxes "
        f"(tolerance {site.tolerance:g}, {site.added_area:.3g} extra area), "
        f"{len(site.stations)} stations"
    )
    return site


MAP_HELP = "A real site: GeoJSON, or a CSV of PoIs (see docs/world.md, Site maps)."


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=_console,
        transient=True,
    )


def evaluate_cmd(
    policy: list[str] = typer.Option(  # noqa: B008
        ["random", "greedy"],
        "--policy",
        "-p",
        help="Policy to evaluate (repeat to compare): random, greedy, greedy-local, planner, "
        "maddpg, iddpg, mappo.",
    ),
    preset_name: str = typer.Option(
        "paper", "--preset", help="World preset: paper, energy, charging, dynamic, large or small."
    ),
    episodes: int = typer.Option(10, "--episodes", "-n", help="Episodes per policy."),
    seed: int = typer.Option(0, "--seed", help="Episode i uses seed + i."),
    out: Path = typer.Option(Path("runs/eval"), "--out", help="Directory for CSV/JSON/plot."),  # noqa: B008
    config: Path | None = typer.Option(  # noqa: B008
        None, "--config", help="TOML/YAML with a \\[world] section."
    ),
    checkpoint: Path | None = typer.Option(  # noqa: B008
        None, "--checkpoint", help="Saved fleet of a learned --policy (chainsense train)."
    ),
    eval_noise: float | None = typer.Option(
        None,
        "--eval-noise",
        help="Action noise std of a learned fleet (default: the checkpoint's; 0: deterministic).",
    ),
    map_file: Path | None = typer.Option(None, "--map", help=MAP_HELP),  # noqa: B008
) -> None:
    """Run N seeded episodes per policy; print mean +- std of every metric, write CSV/JSON/PNG."""
    # imported here, not at the top: `chainsense --help` must not pay for JAX
    from chainsense.marl import registry
    from chainsense.marl.evaluate import write_table

    _check_run_args(episodes, seed)
    params = load_world_params(preset_name, config)
    site = load_site_file(map_file, params)
    params = site.params if site else params
    policies = [(n, registry.make_policy(n, checkpoint, params, eval_noise)) for n in policy]
    with _progress() as bar:
        task = bar.add_task(f"{episodes} episodes x {len(policies)} policies", total=len(policies))

        finished = iter(range(len(policies)))

        def on_policy(name: str) -> None:
            description = f"evaluating {name} ({episodes} episodes, batched)"
            bar.update(task, completed=next(finished), description=description)

        seeds = range(seed, seed + episodes)
        world_map = site.map if site else None
        tables = registry.compare(policies, params, seeds, on_policy, world_map)
        bar.update(task, completed=len(policies))
    files = write_table(tables, out)
    where = f"{map_file.name} on {preset_name}" if map_file else f"{preset_name} world"
    _console.print(metric_table(tables, f"{where}, {episodes} episodes (mean +- std)", params))
    _console.print("wrote " + ", ".join(str(f) for f in files))


def render_cmd(
    policy: str = typer.Option(
        "greedy",
        "--policy",
        "-p",
        help="Policy to play: random, greedy, greedy-local, planner, maddpg, iddpg, mappo.",
    ),
    preset_name: str = typer.Option(
        "paper", "--preset", help="World preset: paper, energy, charging, dynamic, large or small."
    ),
    seed: int = typer.Option(0, "--seed", help="Episode seed."),
    out: Path = typer.Option(Path("runs/render"), "--out", help="Directory for PNG/GIF/CSV."),  # noqa: B008
    config: Path | None = typer.Option(  # noqa: B008
        None, "--config", help="TOML/YAML with a \\[world] section."
    ),
    fps: int = typer.Option(12, "--fps", help="GIF frames per second."),
    frames: int = typer.Option(100, "--frames", help="Most GIF frames (slots are subsampled)."),
    gif: bool = typer.Option(True, "--gif/--no-gif", help="Also write the animated GIF."),
    checkpoint: Path | None = typer.Option(  # noqa: B008
        None, "--checkpoint", help="Saved fleet of a learned --policy (chainsense train)."
    ),
    map_file: Path | None = typer.Option(None, "--map", help=MAP_HELP),  # noqa: B008
) -> None:
    """Play one episode; write map.png, heat.png (visits), episode.gif and events.csv."""
    # imported here, not at the top: `chainsense --help` must not pay for JAX and matplotlib
    import jax

    from chainsense.marl import registry
    from chainsense.marl.evaluate import rollout
    from chainsense.sim.render import animate_episode, plot_map

    _check_run_args(1, seed)
    if not 1 <= fps <= 60:
        raise ConfigError("fps", f"must be in [1, 60], got {fps}")
    if not 2 <= frames <= 2000:
        raise ConfigError("frames", f"must be in [2, 2000], got {frames}")
    params = load_world_params(preset_name, config)
    site = load_site_file(map_file, params)
    params = site.params if site else params
    pol = registry.make_policy(policy, checkpoint, params)
    out.mkdir(parents=True, exist_ok=True)
    with _progress() as bar:
        task = bar.add_task("playing the episode", total=3 if gif else 2)
        key = jax.random.PRNGKey(seed)
        result = rollout(pol, params, key, record=True, world_map=site.map if site else None)
        bar.update(task, advance=1, description="drawing the map")
        title = f"{policy}: collected {result.metrics['data_collection_ratio']:.1%}, " + (
            f"fairness {result.metrics['fairness']:.2f}"
        )
        final, trace = result.final_state, result.positions
        written = [
            plot_map(final, params, out / "map.png", trace, title=title, site=site),
            plot_map(final, params, out / "heat.png", trace, heat=True, site=site),
        ]
        bar.advance(task)
        if gif:
            bar.update(task, description="animating the episode")
            gif_path = out / "episode.gif"
            written.append(animate_episode(result, params, gif_path, fps, frames, site=site))
            bar.advance(task)
    events = out / "events.csv"
    with events.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["slot", "mt", "poi", "amount", "x", "y"])
        for e in result.events:
            w.writerow([e.slot, e.mt, e.poi, f"{e.amount:.6g}", f"{e.x:.4f}", f"{e.y:.4f}"])
    written.append(events)
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items())
    where = f"{map_file.name} on {preset_name}" if map_file else preset_name
    _console.print(f"{policy} on {where} (seed {seed}): {metrics}")
    _console.print("wrote " + ", ".join(str(f) for f in written))


def register(app: typer.Typer) -> None:
    """Add this area's commands to app."""
    app.command("evaluate")(evaluate_cmd)
    app.command("render")(render_cmd)
