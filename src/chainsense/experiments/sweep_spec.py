"""What a sweep runs: the spec file (``[sweep]``, ``[world]``, ``[train]``) and its runs.

A sweep is scenarios (world presets, or site map files over a preset) x grid points x policies
x training seeds. Every learned (policy, seed) and every baseline (once per point: it has
nothing to train) is one :class:`RunSpec`, the unit that a Ray task executes and that a resumed
sweep skips when its result exists. Everything a run needs (its world, its training config) is
built and checked here, before any worker starts, so a bad spec fails at once with the field
named instead of halfway through a cluster's night. A map file is read here (bounded) and
travels inside the runs, so cluster workers need no shared disk; whether it fits a run's world
(say, a grid that shrinks the area under its PoIs) is found by that run, which then fails alone
and is reported.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chainsense.config import load_file
from chainsense.errors import ConfigError
from chainsense.marl import registry
from chainsense.marl.config import TrainConfig
from chainsense.sim.params import PRESETS, WorldParams, preset

MAX_RUNS = 5_000
MAX_SPEC_BYTES = 1024 * 1024
MAX_SEEDS = 100
MAX_EPISODES = 10_000
MAX_AXIS_VALUES = 100
MAX_STEPS = 10**10
MAX_MINUTES = 24 * 60.0
#: evaluation episodes use seeds from here on: training draws from its own key stream, so these
#: maps are held out (the convention of ``reproduce`` and ``bench_learning``)
EVAL_SEED_START = 10_000
_KNOWN_SECTIONS = {"sweep", "world", "train"}
_SWEEP_KEYS = {
    "name",
    "scenarios",
    "maps",
    "map_preset",
    "grid",
    "product",
    "policies",
    "seeds",
    "episodes",
    "budget",
}
_BUDGET_KEYS = {"steps", "minutes"}
_WORLD_FIELDS = {f.name for f in dataclasses.fields(WorldParams)}
_TOKEN = re.compile(r"^[A-Za-z0-9_.+-]{1,40}$")
GridValue = int | float | bool | str
MAX_MAPS = 20
MAX_MAP_BYTES = 4 * 1024 * 1024
MAP_TYPES = (".geojson", ".json", ".csv")
MAP_PREFIX = "map:"


@dataclass(frozen=True)
class RunSpec:
    """One task: train (or just evaluate a baseline) on one world, evaluate on held-out seeds."""

    run_id: str
    scenario: str
    axis: str
    value: GridValue
    policy: str
    seed: int  # training seed; -1 for a baseline
    world: WorldParams
    train: TrainConfig | None
    steps: int | None
    minutes: float | None
    eval_seeds: tuple[int, ...]
    site: tuple[str, bytes] | None = None  # (file name, contents) of a site map

    @property
    def learned(self) -> bool:
        """Whether this run trains a fleet."""
        return self.train is not None


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep; ``runs()`` lists its tasks in the order they are submitted."""

    name: str
    scenarios: tuple[str, ...]
    grid: tuple[tuple[str, tuple[GridValue, ...]], ...]
    product: bool
    policies: tuple[str, ...]
    seeds: int
    episodes: int
    steps: dict[str, int]
    minutes: float | None
    world: dict[str, Any]
    train: dict[str, Any]
    maps: tuple[tuple[str, bytes], ...] = ()  # (file name, contents), scenario "map:<name>"
    map_preset: str = "paper"

    def _scenarios(self) -> list[tuple[str, str]]:
        """(label, base preset) of every scenario, presets first, then the maps."""
        out = [(s, s) for s in self.scenarios]
        return out + [(MAP_PREFIX + name, self.map_preset) for name, _ in self.maps]

    def site(self, scenario: str) -> tuple[str, bytes] | None:
        """The map file of a ``map:`` scenario."""
        return next((m for m in self.maps if MAP_PREFIX + m[0] == scenario), None)

    def points(self) -> list[tuple[str, str, GridValue, WorldParams]]:
        """(scenario, axis label, value, world) of every grid point."""
        out = []
        for scen, preset_name in self._scenarios():
            base = _world(preset_name, self.world, "world")
            if not self.grid:
                out.append((scen, "base", 0, base))
            elif self.product:
                names = [a for a, _ in self.grid]
                for combo in itertools.product(*(v for _, v in self.grid)):
                    label = ",".join(f"{a}={_fmt(v)}" for a, v in zip(names, combo, strict=True))
                    changes = dict(zip(names, combo, strict=True))
                    where = f"sweep.grid ({label})"
                    world = _world(preset_name, {**self.world, **changes}, where)
                    out.append((scen, "+".join(names), label, world))
            else:
                for axis, values in self.grid:
                    for v in values:
                        where = f"sweep.grid.{axis} ({_fmt(v)})"
                        world = _world(preset_name, {**self.world, axis: v}, where)
                        out.append((scen, axis, v, world))
        return out

    def runs(self) -> list[RunSpec]:
        """Baselines first (fast), then seed 0 of every learned run, then seed 1, ...: an
        interrupted sweep has the widest coverage of the grid for its time."""
        eval_seeds = tuple(range(EVAL_SEED_START, EVAL_SEED_START + self.episodes))
        pts = self.points()
        runs: list[RunSpec] = []
        for scen, axis, value, world in pts:
            for pol in self.policies:
                if pol not in registry.LEARNED:
                    runs.append(self._run(scen, axis, value, pol, -1, world, None, eval_seeds))
        for seed in range(self.seeds):
            for scen, axis, value, world in pts:
                for pol in self.policies:
                    if pol in registry.LEARNED:
                        cfg = _train(pol, self.train)
                        runs.append(self._run(scen, axis, value, pol, seed, world, cfg, eval_seeds))
        return runs

    def _run(
        self,
        scen: str,
        axis: str,
        value: GridValue,
        pol: str,
        seed: int,
        world: WorldParams,
        cfg: TrainConfig | None,
        eval_seeds: tuple[int, ...],
    ) -> RunSpec:
        point = "base" if axis == "base" else (value if "+" in axis else f"{axis}={_fmt(value)}")
        tag = f"seed{seed}" if seed >= 0 else "baseline"
        return RunSpec(
            run_id=f"{scen}/{point}/{pol}/{tag}",
            scenario=scen,
            axis=axis,
            value=value,
            policy=pol,
            seed=seed,
            world=world,
            train=cfg,
            steps=self.steps.get(pol) if cfg is not None else None,
            minutes=self.minutes if cfg is not None else None,
            eval_seeds=eval_seeds,
            site=self.site(scen),
        )


def _fmt(v: GridValue) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v).lower()


def _world(scenario: str, overrides: dict[str, Any], where: str) -> WorldParams:
    base = preset(scenario)
    try:
        return base.replace(**overrides)
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(where, str(exc)) from None


def _train(algo: str, section: dict[str, Any]) -> TrainConfig:
    return TrainConfig.from_dict({**section, "algo": algo})


def _bounded_int(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(field, f"must be an integer in [{low}, {high}], got {value!r}")
    return value


def _names(field: str, value: Any, known: tuple[str, ...]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(field, f"must be a non-empty list, got {value!r}")
    if len(value) > len(known) or len(set(map(str, value))) != len(value):
        raise ConfigError(field, f"must list distinct names, got {value!r}")
    for v in value:
        if v not in known:
            raise ConfigError(field, f"unknown {v!r} (known: {', '.join(known)})")
    return tuple(value)


def _grid(raw: Any) -> tuple[tuple[str, tuple[GridValue, ...]], ...]:
    if not isinstance(raw, dict):
        raise ConfigError("sweep.grid", "must be a table of world field = [values]")
    axes = []
    for axis, values in raw.items():
        field = f"sweep.grid.{axis}"
        if axis not in _WORLD_FIELDS:
            raise ConfigError(
                field, f"not a world setting (known: {', '.join(sorted(_WORLD_FIELDS))})"
            )
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_AXIS_VALUES:
            raise ConfigError(field, f"must be a list of 1..{MAX_AXIS_VALUES} values")
        for v in values:
            ok_number = isinstance(v, int | float) and (isinstance(v, bool) or math.isfinite(v))
            if not ok_number and not (isinstance(v, str) and _TOKEN.match(v)):
                raise ConfigError(
                    field, f"values must be finite numbers, booleans or names, got {v!r}"
                )
        if len({_fmt(v) for v in values}) != len(values):
            raise ConfigError(field, "values must be distinct")
        axes.append((axis, tuple(values)))
    return tuple(axes)


def _budget(raw: Any, policies: tuple[str, ...]) -> tuple[dict[str, int], float | None]:
    learned = [p for p in policies if p in registry.LEARNED]
    if not isinstance(raw, dict) or set(raw) - _BUDGET_KEYS:
        raise ConfigError("sweep.budget", "must be a table with steps and/or minutes")
    if learned and not raw:
        raise ConfigError("sweep.budget", "learned policies need steps or minutes per run")
    steps: dict[str, int] = {}
    if "steps" in raw:
        given = raw["steps"]
        per = given if isinstance(given, dict) else {p: given for p in learned}
        for algo, n in per.items():
            if algo not in learned:
                raise ConfigError(f"sweep.budget.steps.{algo}", "not a learned policy of the sweep")
            steps[algo] = _bounded_int(f"sweep.budget.steps.{algo}", n, 1, MAX_STEPS)
        if "minutes" not in raw and (missing := [p for p in learned if p not in steps]):
            raise ConfigError("sweep.budget.steps", f"no budget for {', '.join(missing)}")
    minutes = raw.get("minutes")
    if minutes is not None:
        if isinstance(minutes, bool) or not isinstance(minutes, int | float):
            raise ConfigError("sweep.budget.minutes", f"must be a number, got {minutes!r}")
        if not 0 < minutes <= MAX_MINUTES:
            raise ConfigError("sweep.budget.minutes", f"must be in (0, {MAX_MINUTES:g}]")
        minutes = float(minutes)
    return steps, minutes


def _maps(raw: Any, base_dir: Path) -> tuple[tuple[str, bytes], ...]:
    if not isinstance(raw, list) or len(raw) > MAX_MAPS:
        raise ConfigError("sweep.maps", f"must be a list of at most {MAX_MAPS} site files")
    out = []
    for i, item in enumerate(raw):
        field = f"sweep.maps[{i}]"
        if not isinstance(item, str) or not item:
            raise ConfigError(field, f"must be a file path, got {item!r}")
        path = base_dir / item
        if path.suffix.lower() not in MAP_TYPES:
            raise ConfigError(field, f"must be one of {', '.join(MAP_TYPES)}: {item}")
        if not path.is_file():
            raise ConfigError(field, f"file not found: {item}")
        if path.stat().st_size > MAX_MAP_BYTES:
            raise ConfigError(field, f"{item} is larger than {MAX_MAP_BYTES} bytes")
        if not _TOKEN.match(path.name) or any(path.name == n for n, _ in out):
            raise ConfigError(field, "needs a distinct short file name (letters, digits, _.+-)")
        out.append((path.name, path.read_bytes()))
    return tuple(out)


def from_mapping(data: dict[str, Any], base_dir: Path = Path()) -> SweepSpec:
    """A validated spec from the parsed file (every run's world and config built once); map
    paths are relative to ``base_dir`` (the spec file's directory)."""
    unknown = sorted(set(data) - _KNOWN_SECTIONS)
    if unknown:
        raise ConfigError(
            unknown[0], f"unknown section (known: {', '.join(sorted(_KNOWN_SECTIONS))})"
        )
    sw = data.get("sweep")
    if not isinstance(sw, dict):
        raise ConfigError("sweep", "the spec needs a [sweep] table")
    if bad := sorted(set(sw) - _SWEEP_KEYS):
        raise ConfigError(
            f"sweep.{bad[0]}", f"unknown setting (known: {', '.join(sorted(_SWEEP_KEYS))})"
        )
    world, train = data.get("world", {}), data.get("train", {})
    for name, section in (("world", world), ("train", train)):
        if not isinstance(section, dict):
            raise ConfigError(name, "must be a table of settings")
    if bad := sorted(set(world) - _WORLD_FIELDS):
        raise ConfigError(f"world.{bad[0]}", "unknown setting")
    if "algo" in train:
        raise ConfigError("train.algo", "set the algorithms in sweep.policies")
    name = sw.get("name", "sweep")
    if not isinstance(name, str) or not _TOKEN.match(name):
        raise ConfigError("sweep.name", f"must be a short name of letters, digits, _.+-: {name!r}")
    policies = _names("sweep.policies", sw.get("policies"), registry.POLICY_NAMES)
    steps, minutes = _budget(sw.get("budget", {}), policies)
    product = sw.get("product", False)
    if not isinstance(product, bool):
        raise ConfigError("sweep.product", f"must be true or false, got {product!r}")
    maps = _maps(sw.get("maps", []), base_dir)
    scenarios = sw.get("scenarios", [] if maps else ["paper"])
    map_preset = sw.get("map_preset", "paper")
    if map_preset not in PRESETS:
        raise ConfigError("sweep.map_preset", f"unknown preset {map_preset!r}")
    spec = SweepSpec(
        name=name,
        scenarios=_names("sweep.scenarios", scenarios, tuple(PRESETS)) if scenarios else (),
        maps=maps,
        map_preset=map_preset,
        grid=_grid(sw.get("grid", {})),
        product=product,
        policies=policies,
        seeds=_bounded_int("sweep.seeds", sw.get("seeds", 1), 1, MAX_SEEDS),
        episodes=_bounded_int("sweep.episodes", sw.get("episodes", 10), 1, MAX_EPISODES),
        steps=steps,
        minutes=minutes,
        world=dict(world),
        train=dict(train),
    )
    for pol in policies:
        if pol in registry.LEARNED:
            try:
                _train(pol, spec.train)
            except ConfigError as exc:
                field = exc.field if exc.field.startswith("train") else f"train.{exc.field}"
                raise ConfigError(field, f"({pol}) {str(exc).split(': ', 1)[-1]}") from None
    sizes = [len(v) for _, v in spec.grid]
    per_scenario = math.prod(sizes) if spec.product else max(sum(sizes), 1)
    points = per_scenario * (len(spec.scenarios) + len(spec.maps))
    learned = sum(p in registry.LEARNED for p in policies)
    total = points * (learned * spec.seeds + len(policies) - learned)
    if total > MAX_RUNS:  # counted before any world is built
        raise ConfigError("sweep", f"{total} runs is more than the limit of {MAX_RUNS}")
    spec.points()  # builds (and so checks) every world
    return spec


def load(path: str | Path) -> SweepSpec:
    """Read and validate a TOML/YAML spec file (at most 1 MiB)."""
    p = Path(path)
    if p.is_file() and p.stat().st_size > MAX_SPEC_BYTES:
        raise ConfigError("spec", f"{p.name} is larger than {MAX_SPEC_BYTES} bytes")
    return from_mapping(load_file(p), p.parent)
