"""CLI commands of the 'learn' area: ``train`` (MADDPG / IDDPG / MAPPO fleets)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from chainsense.cli.world import MAP_HELP, load_site_file, metric_table
from chainsense.errors import ConfigError
from chainsense.marl.config import load_train_config
from chainsense.sim.params import load_world_params

_console = Console()


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=_console,
    )


def train_cmd(
    config: Path | None = typer.Option(  # noqa: B008
        None, "--config", help="TOML/YAML with 'world' and 'train' tables."
    ),
    preset_name: str = typer.Option(
        "paper", "--preset", help="World preset: paper, energy, charging, dynamic, large or small."
    ),
    algo: str | None = typer.Option(
        None, "--algo", help="maddpg, iddpg or mappo (overrides config)."
    ),
    shared: bool | None = typer.Option(
        None,
        "--shared/--no-shared",
        help="MADDPG/IDDPG: one actor and critic for all MTs with an agent id (overrides config).",
    ),
    memory: bool | None = typer.Option(
        None,
        "--memory/--no-memory",
        help="Last action and refused-move flag in the observation (overrides config).",
    ),
    imitate: str | None = typer.Option(
        None,
        "--imitate",
        help="MAPPO: 'planner' starts PPO from a DAgger clone of the planner; 'none' does not.",
    ),
    demo_episodes: int | None = typer.Option(
        None, "--demo-episodes", help="With --imitate: labelled episodes per DAgger round."
    ),
    dagger_rounds: int | None = typer.Option(
        None, "--dagger-rounds", help="With --imitate: rounds driven by the clone after the first."
    ),
    recurrent: bool | None = typer.Option(
        None,
        "--recurrent/--no-recurrent",
        help="MAPPO: a GRU actor that remembers the episode (overrides config).",
    ),
    shaping: str | None = typer.Option(
        None,
        "--shaping",
        help="Training reward: none (the paper's), move (minus a move penalty), efficiency "
        "(the judged metric's gain, energy priced at the fleet's own efficiency; MAPPO) or "
        "collection (the data the fleet collected).",
    ),
    recharge_reflex: bool | None = typer.Option(
        None,
        "--recharge-reflex/--no-recharge-reflex",
        help="MAPPO, worlds with charging: an MT low on energy drives to a station and tops up "
        "(greedy's rule); the actor learns the rest (overrides config).",
    ),
    action_space: str | None = typer.Option(
        None,
        "--action-space",
        help="MAPPO: move (the paper's heading and distance) or targets (the actor weighs "
        "greedy's target score per MT and slot; greedy's rule drives there).",
    ),
    max_distance_power: float | None = typer.Option(
        None,
        "--max-distance-power",
        help="Targets: the distance power at the top of the actor's range, 1..20 (2 by "
        "default; overrides config).",
    ),
    square_weights: bool | None = typer.Option(
        None,
        "--square-weights/--disk-weights",
        help="Targets: stretch the actor's unit disk onto the square of weights, so both can "
        "be at an end of their range at once (overrides config).",
    ),
    backlog_weight: float | None = typer.Option(
        None,
        "--backlog-weight",
        help="Targets: weight of each PoI's data beyond one slot's quota in greedy's score, "
        "0..100 (0, greedy's rule, by default; overrides config).",
    ),
    jain_weight: float | None = typer.Option(
        None,
        "--jain-weight",
        help="Targets: weight of what serving each PoI adds to Jain's index in greedy's score, "
        "0..10 (0, greedy's rule, by default; greedy-jain's is 0.3; overrides config).",
    ),
    isolation_weight: float | None = typer.Option(
        None,
        "--isolation-weight",
        help="Targets: divide a cluster's score by the PoIs with data round it to this power, "
        "0..20, so PoIs that would be left stranded go first (0, greedy's rule, by default; "
        "greedy-route's is 6; overrides config).",
    ),
    territory_weight: float | None = typer.Option(
        None,
        "--territory-weight",
        help="Targets: factor on a cluster another MT is nearer to, 0.001..1 (1, greedy's "
        "rule, by default; greedy-route's is 0.01; overrides config).",
    ),
    travel_weight: float | None = typer.Option(
        None,
        "--travel-weight",
        help="Targets: a place d away is worth exp(-w d) of its score, 0..10, so MTs do not "
        "hop for a slightly better disk (0, greedy's rule, by default; overrides config).",
    ),
    target_grid: float | None = typer.Option(
        None,
        "--target-grid",
        help="Targets: also offer the points of a lattice of this spacing within one move of "
        "each MT as places to stand, >= 0.01 (0, the PoIs only as greedy, by default; "
        "greedy-grid's is 0.125; overrides config).",
    ),
    charge_per_slot_left: float | None = typer.Option(
        None,
        "--charge-per-slot-left",
        help="Reflex or targets, worlds with charging: an MT charges no more than this much "
        "energy per slot left, 0..100 (0, greedy's rule, by default; 0.4 with --charge-full 1 "
        "is greedy-endgame; overrides config).",
    ),
    charge_below: float | None = typer.Option(
        None,
        "--charge-below",
        help="Reflex or targets, worlds with charging: an MT also goes back once it holds less "
        "than this fraction of its battery, 0..1 (0, greedy's rule, by default; overrides "
        "config).",
    ),
    charge_full: float | None = typer.Option(
        None,
        "--charge-full",
        help="Reflex or targets: the fraction of the battery an MT charges to, 0.05..1 (0.9, "
        "greedy's rule, by default; overrides config).",
    ),
    minutes: float | None = typer.Option(
        None, "--minutes", help="Wall-clock budget (10 when neither budget is given)."
    ),
    steps: int | None = typer.Option(None, "--steps", help="Environment-step budget."),
    seed: int = typer.Option(0, "--seed", help="Seed of networks, worlds and noise."),
    out: Path = typer.Option(Path("runs/train"), "--out", help="Output directory."),  # noqa: B008
    resume: Path | None = typer.Option(None, "--resume", help="Continue from a checkpoint."),  # noqa: B008
    map_file: Path | None = typer.Option(  # noqa: B008
        None, "--map", help=MAP_HELP + " Train (and evaluate) on this one site."
    ),
    eval_episodes: int = typer.Option(
        10, "--eval-episodes", help="Seeded evaluation episodes after training (0: skip)."
    ),
    compare: bool = typer.Option(
        True, "--compare/--no-compare", help="Also evaluate random and greedy on the same seeds."
    ),
    devices: int | None = typer.Option(
        None,
        "--devices",
        help="Split the worlds over N devices (CPU: XLA host devices; overrides config)",
    ),
    select_every: int | None = typer.Option(
        None,
        "--select-every",
        help="Score the fleet on validation maps every N env steps and keep the best "
        "(0: keep the last; overrides config).",
    ),
) -> None:
    """Train a MADDPG / IDDPG / MAPPO fleet; writes checkpoint, logs, curves, evaluation."""
    # imported here, not at the top: `chainsense --help` must not pay for JAX
    from chainsense.marl import registry, session, sharding
    from chainsense.marl.evaluate import write_table
    from chainsense.marl.learned import LearnedPolicy

    if algo is not None and algo not in registry.LEARNED:
        raise ConfigError("algo", f"must be one of {', '.join(registry.LEARNED)}, got {algo!r}")
    if minutes is None and steps is None:
        minutes = 10.0
    if not 0 <= seed < 2**31:
        raise ConfigError("seed", f"must be in [0, 2^31), got {seed}")
    if not 0 <= eval_episodes <= 10_000:
        raise ConfigError("eval_episodes", f"must be in [0, 10000], got {eval_episodes}")
    if imitate is not None and imitate not in ("none", "planner"):
        raise ConfigError("imitate", f"must be 'planner' or 'none', got {imitate!r}")
    cfg = load_train_config(
        config,
        algo,
        shared=shared,
        memory=memory,
        recurrent=recurrent,
        imitate=imitate,
        demo_episodes=demo_episodes,
        dagger_rounds=dagger_rounds,
        devices=devices,
        select_every=select_every,
        shaping=shaping,
        recharge_reflex=recharge_reflex,
        action_space=action_space,
        max_distance_power=max_distance_power,
        square_weights=square_weights,
        backlog_weight=backlog_weight,
        jain_weight=jain_weight,
        isolation_weight=isolation_weight,
        territory_weight=territory_weight,
        travel_weight=travel_weight,
        target_grid=target_grid,
        charge_per_slot_left=charge_per_slot_left,
        charge_full=charge_full,
        charge_below=charge_below,
    )
    # XLA reads the host device count when JAX first computes: ask before anything runs
    sharding.request_host_devices(cfg.devices)
    params = load_world_params(preset_name, config)
    site = load_site_file(map_file, params)
    params = site.params if site else params
    world_map = site.map if site else None
    budget = f"{minutes:g} min" if minutes is not None else f"{steps:,} steps"
    if cfg.imitate == "planner" and resume is None:
        budget += f", after cloning the planner ({cfg.dagger_rounds + 1} DAgger rounds)"
    _console.print(
        f"training {cfg.algo} on {preset_name} ({params.num_mts} MTs, {params.observation} obs), "
        f"{cfg.num_envs} worlds in parallel on {cfg.devices} device(s), budget {budget}; "
        "compiling first ..."
    )
    with _progress() as bar:
        task = bar.add_task(f"{cfg.algo}", total=1.0, info="compiling")

        def on_chunk(row: dict[str, float], frac: float) -> None:
            info = (
                f"steps {int(row['env_steps']):,}  upd {int(row['updates']):,}  "
                f"ep {int(row['episodes'])}"
            )
            if row["episodes"] > 0:
                info += (
                    f"  ret {row['return']:.1f}  eff {row['energy_efficiency']:.2f}  "
                    f"dcr {row['data_collection_ratio']:.2f}"
                )
            bar.update(task, completed=frac, info=info)

        result = session.run(
            cfg,
            params,
            seed=seed,
            steps=steps,
            minutes=minutes,
            out_dir=out,
            resume=resume,
            on_chunk=on_chunk,
            world_map=world_map,
        )
    if result.pretrain:
        pre = result.pretrain
        _console.print(
            f"cloned the planner first: {pre['env_steps']:,.0f} labelled env steps, "
            f"{pre['plans']:,.0f} plans, {pre['cpu_s']:.1f} CPU s (outside the budget)"
        )
    _console.print(
        f"trained {result.env_steps:,} env steps, {result.updates:,} updates, "
        f"{result.episodes:,} episodes in {result.seconds:.1f} s "
        f"({result.steps_per_second:,.0f} env steps/s incl. compilation)"
    )
    if result.selection.get("history"):
        chosen = result.selection
        _console.print(
            f"kept the fleet of env step {chosen['best_env_steps']:,}: "
            f"{chosen['metric']} {chosen['best_score']:.4f} on {chosen['episodes']} "
            f"validation maps (best of {len(chosen['history'])} scored)"
        )
    if result.selection.get("noise_scores"):
        _console.print(f"it acts with eval noise {result.cfg.eval_noise:g} (best on those maps)")
    if eval_episodes > 0:
        fleet = LearnedPolicy(result.learner.actor, result.cfg)
        contenders = registry.with_baselines(cfg.algo, fleet) if compare else [(cfg.algo, fleet)]
        tables = registry.compare(contenders, params, range(eval_episodes), world_map=world_map)
        files = write_table(tables, out)
        where = map_file.name if map_file else f"{preset_name} world"
        title = f"{where}, {eval_episodes} episodes (mean +- std)"
        _console.print(metric_table(tables, title, params))
        result.files.update({"eval": files[0]})
    _console.print("wrote " + ", ".join(str(f) for f in result.files.values()))


def register(app: typer.Typer) -> None:
    """Add this area's commands to app."""
    app.command("train")(train_cmd)
