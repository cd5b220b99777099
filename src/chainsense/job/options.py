"""What ``chainsense run`` was asked to do, validated before any work starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from chainsense.errors import ConfigError
from chainsense.ledger.config import LedgerConfig
from chainsense.ledger.consortium import MAX_CAS
from chainsense.marl import registry
from chainsense.marl.config import TrainConfig
from chainsense.sim.params import WorldParams
from chainsense.sim.sites import Site


@dataclass(frozen=True)
class JobOptions:
    """The world, the fleet, the ledger settings and the outputs of one run.

    ``ledger`` is the one source of the chain backend and the ledger mode (``[ledger]`` of a
    config file, overridden by ``--mode``, ``--batch-size``, ``--network`` and ``--rpc``).
    ``site``: a real site (``--map``); the recorded episode and every compared episode then play
    on its map, and ``params`` must be the site's (``site.params``).
    ``orgs``: organisations of the consortium, each with its own CA service; records need
    ``ledger.threshold`` (k) of their countersignatures.
    """

    params: WorldParams
    policy: str = "maddpg"
    checkpoint: Path | None = None
    train_minutes: float = 2.0
    train_config: TrainConfig | None = None  # None: TrainConfig's defaults
    ledger: LedgerConfig = field(default_factory=LedgerConfig)
    episodes: int = 10
    seed: int = 0
    out: Path = Path("runs/latest")
    include: tuple[Path, ...] = ()
    site: Site | None = None
    orgs: int = 1

    def __post_init__(self) -> None:
        registry.check_name(self.policy)
        if self.site is not None and self.site.params != self.params:
            raise ConfigError("map", "the world parameters must be the site's (site.params)")
        if self.checkpoint is not None:
            if self.policy not in registry.LEARNED:
                raise ConfigError(
                    "checkpoint", f"only a learned policy loads one, not {self.policy}"
                )
            if not self.checkpoint.is_file():
                raise ConfigError("checkpoint", f"file not found: {self.checkpoint}")
        if not 0 < self.train_minutes <= 24 * 60:
            raise ConfigError("train_minutes", f"must be in (0, 1440], got {self.train_minutes}")
        if not 1 <= self.episodes <= 10_000:
            raise ConfigError("episodes", f"must be in [1, 10000], got {self.episodes}")
        if not 0 <= self.seed < 2**31:
            raise ConfigError("seed", f"must be in [0, 2^31), got {self.seed}")
        if isinstance(self.orgs, bool) or not 1 <= self.orgs <= MAX_CAS:
            raise ConfigError("orgs", f"must be in [1, {MAX_CAS}], got {self.orgs}")
        if self.ledger.threshold > self.orgs:
            raise ConfigError(
                "threshold", f"must be at most --orgs ({self.orgs}), got {self.ledger.threshold}"
            )
        for path in self.include:
            if not path.is_dir():
                raise ConfigError("include", f"not a directory: {path}")
