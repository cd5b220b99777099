"""World parameters: every knob of the crowdsensing world, validated, hashable, with presets.

``WorldParams`` is a frozen dataclass of plain Python scalars, so it hashes and can be passed to
``jax.jit`` as a static argument: array shapes (K, C, M, grid sizes) come from it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from chainsense.config import from_mapping, is_integer, is_number, read_section
from chainsense.errors import ConfigError

Observation = Literal["paper", "rich"]

_INT_FIELDS = (
    "num_pois",
    "num_obstacles",
    "num_mts",
    "num_slots",
    "obs_grid",
    "local_grid",
    "fine_factor",
    "num_stations",
    "share_delay",
)
_FLOAT_FIELDS = (
    "width",
    "height",
    "initial_energy",
    "sensing_range",
    "max_move",
    "collect_fraction",
    "move_cost",
    "sense_cost",
    "collision_penalty",
    "obstacle_min_size",
    "obstacle_max_size",
    "charge_radius",
    "charge_rate",
    "data_rate",
    "buffer_capacity",
)


@dataclass(frozen=True)
class WorldParams:
    """Geometry, agents, energy model, reward and observation of one crowdsensing world.

    Defaults are the ``paper`` preset (16 x 16 area, K=256, C=16, M=2, T=500).
    ``map_seed=None`` draws a fresh map from every reset key; an integer fixes the map (PoIs,
    obstacles, data) for all episodes, as in the paper's single-map training.

    Scenario options (all off by default, so ``paper`` is the paper's world):

    * charging: ``num_stations`` stations are part of the map; an MT within ``charge_radius`` of
      one gains ``charge_rate`` energy per slot, up to ``initial_energy`` (its battery).
    * data that keeps arriving: with ``data_rate`` > 0 every PoI generates data each slot at its
      own rate, drawn per map from U[0, 2 * data_rate], into a buffer of ``buffer_capacity``;
      what overflows is lost.
    * partial observation: with ``observe_radius`` set, an MT sees the remaining data only within
      that radius; beyond it, it knows what the shared ledger tells it: its own collections at
      once, the other MTs' after ``share_delay`` slots (0: at once; -1: never shared).
    """

    width: float = 16.0
    height: float = 16.0
    num_pois: int = 256
    num_obstacles: int = 16
    num_mts: int = 2
    initial_energy: float = 500.0
    sensing_range: float = 1.1
    max_move: float = 1.0
    num_slots: int = 500
    collect_fraction: float = 0.2
    move_cost: float = 0.1
    sense_cost: float = 1.0
    collision_penalty: float = 1.0
    observation: Observation = "rich"
    obs_grid: int = 8
    local_grid: int = 5
    fine_factor: int = 2
    obstacle_min_size: float = 0.5
    obstacle_max_size: float = 2.0
    start_x: float | None = None
    start_y: float | None = None
    map_seed: int | None = None
    num_stations: int = 0
    charge_radius: float = 0.5
    charge_rate: float = 0.0
    data_rate: float = 0.0
    buffer_capacity: float = 1.0
    observe_radius: float | None = None
    share_delay: int = 0

    def __post_init__(self) -> None:
        self._normalise_types()
        for name in ("width", "height"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0.0 < v <= 1.0e4):
                raise ConfigError(name, f"must be a finite number in (0, 10000], got {v!r}")
        if not 1 <= self.num_pois <= 100_000:
            raise ConfigError("num_pois", f"must be in [1, 100000], got {self.num_pois!r}")
        if not 0 <= self.num_obstacles <= 10_000:
            raise ConfigError("num_obstacles", f"must be in [0, 10000], got {self.num_obstacles!r}")
        capacity = max(1, int(self.width * self.height))
        if self.num_mts < 1:
            raise ConfigError("num_mts", f"must be at least 1, got {self.num_mts!r}")
        if self.num_mts > capacity:
            raise ConfigError(
                "num_mts",
                f"{self.num_mts} MTs do not fit in a {self.width:g} x {self.height:g} area "
                f"(at most {capacity}, one per unit of area)",
            )
        self._positive("initial_energy", self.initial_energy)
        self._positive("sensing_range", self.sensing_range)
        self._positive("max_move", self.max_move)
        if self.max_move > max(self.width, self.height):
            raise ConfigError(
                "max_move", f"must not exceed the area's larger side, got {self.max_move!r}"
            )
        if not 1 <= self.num_slots <= 1_000_000:
            raise ConfigError("num_slots", f"must be in [1, 1000000], got {self.num_slots!r}")
        if not (math.isfinite(self.collect_fraction) and 0.0 < self.collect_fraction <= 1.0):
            raise ConfigError(
                "collect_fraction", f"must be in (0, 1], got {self.collect_fraction!r}"
            )
        self._non_negative("move_cost", self.move_cost)
        self._positive("sense_cost", self.sense_cost)
        self._non_negative("collision_penalty", self.collision_penalty)
        if self.observation not in ("paper", "rich"):
            raise ConfigError("observation", f"must be 'paper' or 'rich', got {self.observation!r}")
        if not 1 <= self.obs_grid <= 64:
            raise ConfigError("obs_grid", f"must be in [1, 64], got {self.obs_grid!r}")
        if not 1 <= self.local_grid <= 31 or self.local_grid % 2 == 0:
            raise ConfigError(
                "local_grid", f"must be an odd number in [1, 31], got {self.local_grid!r}"
            )
        if not 1 <= self.fine_factor <= 16:
            raise ConfigError("fine_factor", f"must be in [1, 16], got {self.fine_factor!r}")
        if self.obs_grid * self.fine_factor > 128:
            raise ConfigError(
                "fine_factor", f"obs_grid * fine_factor must be <= 128, got {self.fine_factor!r}"
            )
        self._positive("obstacle_min_size", self.obstacle_min_size)
        if self.obstacle_max_size < self.obstacle_min_size:
            raise ConfigError(
                "obstacle_max_size",
                f"must be >= obstacle_min_size ({self.obstacle_min_size:g}), "
                f"got {self.obstacle_max_size!r}",
            )
        # the size rules exist so that obstacles can be placed; without obstacles they do not bind
        if self.num_obstacles and self.obstacle_max_size >= min(self.width, self.height) / 2:
            raise ConfigError(
                "obstacle_max_size",
                f"must be below half the area's smaller side, got {self.obstacle_max_size!r}",
            )
        covered = self.num_obstacles * self.obstacle_max_size**2
        if covered > 0.4 * self.width * self.height:
            raise ConfigError(
                "num_obstacles",
                f"{self.num_obstacles} obstacles of side up to {self.obstacle_max_size:g} may "
                f"cover more than 40% of the area; use fewer or smaller obstacles",
            )
        sx, sy = self.start
        if not (0.0 <= sx <= self.width):
            raise ConfigError("start_x", f"must lie in [0, width], got {sx!r}")
        if not (0.0 <= sy <= self.height):
            raise ConfigError("start_y", f"must lie in [0, height], got {sy!r}")
        if self.map_seed is not None and not 0 <= self.map_seed < 2**31:
            raise ConfigError("map_seed", f"must be in [0, 2^31), got {self.map_seed!r}")
        self._check_scenario()

    def _check_scenario(self) -> None:
        if not 0 <= self.num_stations <= 64:
            raise ConfigError("num_stations", f"must be in [0, 64], got {self.num_stations!r}")
        self._positive("charge_radius", self.charge_radius)
        self._non_negative("charge_rate", self.charge_rate)
        if self.charge_rate > 0 and self.num_stations == 0:
            raise ConfigError("charge_rate", "needs charging stations (num_stations > 0)")
        self._non_negative("data_rate", self.data_rate)
        self._positive("buffer_capacity", self.buffer_capacity)
        if self.data_rate > self.buffer_capacity:
            raise ConfigError(
                "data_rate", f"must not exceed buffer_capacity, got {self.data_rate!r}"
            )
        if self.observe_radius is not None:
            if not is_number(self.observe_radius):
                raise ConfigError(
                    "observe_radius", f"must be a number, got {self.observe_radius!r}"
                )
            object.__setattr__(self, "observe_radius", float(self.observe_radius))
            self._positive("observe_radius", self.observe_radius)
        if not -1 <= self.share_delay <= 1000:
            raise ConfigError("share_delay", f"must be in [-1, 1000], got {self.share_delay!r}")
        if self.share_delay and self.observe_radius is None:
            raise ConfigError("share_delay", "only applies with an observe_radius")

    @property
    def charging(self) -> bool:
        """Whether MTs can recharge (stations that give energy)."""
        return self.num_stations > 0 and self.charge_rate > 0

    @property
    def dynamic(self) -> bool:
        """Whether PoIs keep generating data."""
        return self.data_rate > 0

    @property
    def partial(self) -> bool:
        """Whether MTs see remaining data only within ``observe_radius``."""
        return self.observe_radius is not None

    def _normalise_types(self) -> None:
        """Counts must be integers and sizes real numbers (a bool is neither); numpy scalars and
        ints given for sizes are stored as plain ``int`` / ``float`` so equal parameters hash
        alike (they are the static argument of every jitted function)."""
        for name in _INT_FIELDS:
            v = getattr(self, name)
            if not is_integer(v):
                raise ConfigError(name, f"must be an integer, got {v!r}")
            object.__setattr__(self, name, int(v))
        for name in (*_FLOAT_FIELDS, "start_x", "start_y"):
            v = getattr(self, name)
            if v is None and name.startswith("start_"):
                continue
            if not is_number(v):
                raise ConfigError(name, f"must be a number, got {v!r}")
            try:
                object.__setattr__(self, name, float(v))
            except OverflowError:
                raise ConfigError(name, f"must be a finite number, got {v!r}") from None
        if self.map_seed is not None:
            if not is_integer(self.map_seed):
                raise ConfigError("map_seed", f"must be an integer or None, got {self.map_seed!r}")
            object.__setattr__(self, "map_seed", int(self.map_seed))
        if not isinstance(self.observation, str):
            raise ConfigError("observation", f"must be 'paper' or 'rich', got {self.observation!r}")

    @staticmethod
    def _positive(name: str, v: float) -> None:
        if not (math.isfinite(v) and v > 0.0):
            raise ConfigError(name, f"must be a finite number > 0, got {v!r}")

    @staticmethod
    def _non_negative(name: str, v: float) -> None:
        if not (math.isfinite(v) and v >= 0.0):
            raise ConfigError(name, f"must be a finite number >= 0, got {v!r}")

    @property
    def start(self) -> tuple[float, float]:
        """Where every MT starts (the centre of the area unless set)."""
        sx = self.width / 2 if self.start_x is None else self.start_x
        sy = self.height / 2 if self.start_y is None else self.start_y
        return float(sx), float(sy)

    def replace(self, **changes: object) -> WorldParams:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


PRESETS: dict[str, WorldParams] = {
    # the paper's world (16 x 16, 256 PoIs, 16 obstacles, 2 MTs, 500 slots): its figures are the
    # reproduction, keep it as it is
    "paper": WorldParams(),
    # the paper's map with a budget that binds: the 256 PoIs hold 128 units of data on average
    # and sensing costs 1 per unit, so 2 x 38 energy collects at most ~60% of it even with no
    # travel; every unit spent moving is a unit not collected
    "energy": WorldParams(initial_energy=38.0),
    # small batteries (25: a fifth of the map's data per MT) and 3 stations that give 0.5 per
    # slot: a full charge takes 50 slots and the 128 units of data need about 5 of them, so when
    # and where to go back decides what fits in 300 slots (with 500, greedy collects 99%), as in
    # the authors' group's follow-up work on energy-efficient distributed crowdsensing
    "charging": WorldParams(
        initial_energy=25.0,
        num_stations=3,
        charge_radius=0.5,
        charge_rate=0.5,
        num_slots=300,
    ),
    # continuous IIoT sensing: every PoI generates U[0, 0.008] per slot (0.004 on average, ~1
    # unit per slot over the map, about what two MTs can collect) into a buffer of 1 unit, so
    # a PoI left alone for 125-250 slots overflows and loses data; which PoIs to revisit when
    # decides how much is lost and how old the collected data is
    "dynamic": WorldParams(data_rate=0.004, buffer_capacity=1.0, initial_energy=500.0),
    # four times the area and PoIs, 8 MTs, 1,000 slots: coordination at fleet scale, with
    # budgets that bind (8 x 40 energy senses at most ~60% of the 512 units of data)
    "large": WorldParams(
        width=32.0,
        height=32.0,
        num_pois=1024,
        num_obstacles=64,
        num_mts=8,
        num_slots=1000,
        initial_energy=40.0,
    ),
    "small": WorldParams(
        width=8.0,
        height=8.0,
        num_pois=32,
        num_obstacles=2,
        num_mts=2,
        initial_energy=10.0,
        num_slots=50,
        obs_grid=4,
        obstacle_min_size=0.5,
        obstacle_max_size=1.5,
    ),
}


def preset(name: str) -> WorldParams:
    """The named preset; ConfigError naming the known presets otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            "preset", f"unknown preset {name!r} (known: {', '.join(sorted(PRESETS))})"
        ) from None


def obs_dim(params: WorldParams) -> int:
    """Length of one MT's observation vector.

    paper: (x, y, e). rich: (x, y, e, time left), the other MTs' offsets (2 per MT), a global
    ``obs_grid``^2 map of remaining data and a ``local_grid``^2 window of the fine map
    (``obs_grid * fine_factor`` cells per side) centred on the MT's fine cell; where MTs can
    recharge, last, the offset to the nearest station (2).
    """
    if params.observation == "paper":
        return 3
    station = 2 if params.charging else 0
    return 4 + 2 * (params.num_mts - 1) + params.obs_grid**2 + params.local_grid**2 + station


def state_dim(params: WorldParams) -> int:
    """Length of the global state vector for centralised critics (see ``world.global_state``).

    PoI positions (2K), remaining data (K), initial data (K), visits (K), obstacles (4C),
    MT positions and energies (3M) and the time elapsed (1).
    """
    return 5 * params.num_pois + 4 * params.num_obstacles + 3 * params.num_mts + 1


def load_world_params(preset_name: str, config: str | Path | None = None) -> WorldParams:
    """The named world preset, overridden by the ``[world]`` section of ``config`` when given."""
    base = preset(preset_name)
    section = read_section(config, "world")
    if not section:
        return base
    return from_mapping(WorldParams, {**dataclasses.asdict(base), **section}, "world")
