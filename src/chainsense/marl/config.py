"""Training settings of the MADDPG / IDDPG / MAPPO learners (section ``[train]`` of a config)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from chainsense.config import check_number, from_mapping, read_section
from chainsense.errors import ConfigError
from chainsense.marl.recharge import CONFIG_CONSTANTS, RULE_BOUNDS, RechargeRule
from chainsense.marl.score_terms import GREEDY_TERMS, TERM_BOUNDS, ScoreTerms
from chainsense.marl.standing_grid import spacing_problem

Algo = Literal["maddpg", "iddpg", "mappo"]
CriticInput = Literal["joint_obs", "global"]
Imitate = Literal["none", "planner"]
Shaping = Literal["none", "move", "efficiency", "collection"]
SelectMetric = Literal["energy_efficiency", "data_collection_ratio"]
ActionSpace = Literal["move", "targets"]
#: the highest ``max_distance_power`` accepted (beyond it greedy only ever takes the nearest PoI)
MAX_DISTANCE_POWER = 20.0


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters; frozen and hashable so it can be a static argument of ``jit``.

    ``critic_input`` picks the centralised state an MADDPG critic sees: ``joint_obs`` is the
    concatenated observations of all MTs (the original MADDPG choice; with the ``rich``
    observation it holds every MT's position, energy, the time left and the coarse global map of
    remaining data), ``global`` is the world's full ``global_state`` (every PoI; about 7x slower
    per update and 7x the replay memory on the ``paper`` preset). IDDPG ignores it.

    One *iteration* of the training loop steps all ``num_envs`` worlds once (``num_envs`` env
    steps) and then runs ``updates_per_iter`` gradient updates of every agent. A MAPPO
    iteration instead collects ``ppo_steps`` slots in every world and then runs ``ppo_epochs``
    passes of ``ppo_minibatches`` clipped-surrogate updates over them (``marl.mappo_*``).

    ``memory`` adds the MT's last action and a refused-move flag to the learner observation
    (``marl.features``); ``shared`` gives MADDPG / IDDPG one actor and one critic for all MTs,
    told apart by an agent id (MAPPO always shares its actor).

    ``recharge_reflex`` (MAPPO, worlds with charging) puts greedy's recharge rule on top of the
    actor, in training and when the fleet acts: an MT low on energy drives to the nearest
    station and stays until 90% full (``policies.recharge_reflex``); the actor learns the rest.

    ``charge_full``, ``charge_per_slot_left`` and ``charge_below`` set the recharge rule of the
    reflex and of the targets decoding (``marl.recharge``; 0.9, 0 and 0 are greedy's rule; 1.0
    and 0.4 charge only what the slots left can spend; ``charge_below`` goes back below that
    fraction of the battery).

    ``action_space = "targets"`` (MAPPO only) makes the actor's output the per-MT weights of
    greedy's target score instead of a move; greedy's rule claims the targets and drives there
    (``marl.target_actions``); ``max_distance_power`` is the distance power at the top of the
    actor's range (greedy's is 1), ``square_weights`` stretches the actor's unit disk onto a
    square so that both weights can be at an end of their range at once, and ``backlog_weight``
    (fixed, not learned; 0 is greedy's rule) also counts each PoI's data beyond one slot's quota,
    ``jain_weight`` (fixed; 0 is greedy's rule) what serving each PoI adds to Jain's index
    (``policies.jain_gain``; it reads the true visit counts, so not under partial observation),
    ``isolation_weight`` (fixed; 0 is greedy's rule) divides a cluster's score by the PoIs with
    data round it to that power, and ``territory_weight`` (fixed; 1 is greedy's rule) is the
    factor on a cluster another MT is nearer to (``score_terms.ScoreTerms``); ``target_grid``
    (fixed; 0 is greedy's rule) also offers the points of a lattice of that spacing within one
    move of each MT as places to stand (``marl.standing_grid``); ``travel_weight`` (fixed; 0 is
    greedy's rule) prices the distance to a place: it is worth ``exp(-travel_weight * d)``.

    ``imitate = "planner"`` (MAPPO only) starts PPO from a clone of the OR-Tools planner
    (``marl.imitation``): ``dagger_rounds`` + 1 rounds of ``demo_episodes`` labelled episodes
    (solver limit ``demo_time_limit_s`` per plan), each followed by ``bc_epochs`` of Adam
    (``bc_lr``); the clone's log std is set to ``bc_log_std``.
    ``recurrent`` gives MAPPO's shared actor a GRU of ``gru_hidden`` units
    (``marl.mappo_networks.RecurrentActor``): the actor then remembers the whole episode, not
    only the last slot; its update runs on whole ``ppo_steps`` sequences of worlds
    (``marl.mappo_sequence``).
    ``devices`` splits the worlds (and MADDPG's replay buffer) over that many JAX devices (data
    parallel, learner replicated, gradients averaged: ``marl.sharding``,
    ``marl.maddpg_sharding``); on a CPU they are XLA host devices,
    which ``chainsense train --devices`` asks for before JAX starts.
    ``select_every > 0`` scores the fleet every that many env steps on ``select_episodes``
    validation maps and keeps the best-scoring learner as the run's result (``marl.selection``);
    0 keeps the last learner. ``select_noise`` (a list of evaluation noises) then scores the kept
    fleet on the same maps with each and saves it with the best as its ``eval_noise``; both
    choices are by ``select_metric`` (the energy efficiency, or the data collection ratio, which
    is collected / generated where data keeps arriving).
    """

    algo: Algo = "maddpg"
    critic_input: CriticInput = "joint_obs"
    num_envs: int = 256
    actor_hidden: tuple[int, ...] = (64, 64)
    critic_hidden: tuple[int, ...] = (128, 128)
    actor_lr: float = 1e-4
    critic_lr: float = 1e-3
    gamma: float = 0.995
    tau: float = 0.005
    batch_size: int = 256
    buffer_size: int = 300_000
    updates_per_iter: int = 1
    warmup_steps: int = 10_000
    noise_start: float = 0.5
    noise_end: float = 0.1
    noise_decay_steps: int = 2_500_000
    eval_noise: float = 0.1
    sensor_headings: int = 8
    grad_clip: float = 1.0
    reward_scale: float = 1.0
    shaping: Shaping = "move"
    move_penalty: float = 0.5
    energy_price: float = -1.0
    recharge_reflex: bool = False
    charge_full: float = 0.9
    charge_per_slot_left: float = 0.0
    charge_below: float = 0.0
    action_space: ActionSpace = "move"
    max_distance_power: float = 2.0
    square_weights: bool = False
    backlog_weight: float = 0.0
    jain_weight: float = 0.0
    isolation_weight: float = 0.0
    territory_weight: float = 1.0
    travel_weight: float = 0.0
    target_grid: float = 0.0
    chunk_iters: int = 50
    memory: bool = True
    shared: bool = False
    ppo_steps: int = 16
    ppo_epochs: int = 4
    ppo_minibatches: int = 4
    ppo_lr: float = 3e-4
    ppo_anneal_steps: int = 0
    clip_eps: float = 0.2
    ent_coef: float = 0.001
    vf_coef: float = 0.5
    gae_lambda: float = 0.95
    imitate: Imitate = "none"
    demo_episodes: int = 16
    dagger_rounds: int = 2
    demo_time_limit_s: float = 0.1
    bc_epochs: int = 30
    bc_lr: float = 1e-3
    bc_log_std: float = -1.0
    recurrent: bool = False
    gru_hidden: int = 64
    devices: int = 1
    select_every: int = 0
    select_episodes: int = 128
    select_noise: tuple[float, ...] = ()
    select_metric: SelectMetric = "energy_efficiency"

    def __post_init__(self) -> None:
        positive_ints = (
            "num_envs",
            "batch_size",
            "buffer_size",
            "updates_per_iter",
            "noise_decay_steps",
            "chunk_iters",
            "ppo_steps",
            "ppo_epochs",
            "ppo_minibatches",
            "devices",
        )
        for name in positive_ints:
            if getattr(self, name) <= 0:
                raise ConfigError(name, f"must be positive, got {getattr(self, name)}")
        for name in ("actor_hidden", "critic_hidden"):
            widths = getattr(self, name)
            if not widths or any(w <= 0 for w in widths):
                raise ConfigError(name, f"must be a non-empty list of positive widths: {widths}")
        for name in ("actor_lr", "critic_lr", "grad_clip", "reward_scale", "ppo_lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(name, f"must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.gamma < 1.0:
            raise ConfigError("gamma", f"must be in [0, 1), got {self.gamma}")
        self._check_ppo()
        self._check_imitation()
        self._check_devices()
        if not 0 <= self.select_every <= 10**12:
            raise ConfigError(
                "select_every", f"must be in [0, 1e12] env steps (0: off), got {self.select_every}"
            )
        if len(self.select_noise) > 8 or not all(0.0 <= n <= 2.0 for n in self.select_noise):
            raise ConfigError(
                "select_noise",
                f"must be at most 8 evaluation noises, each in [0, 2], got {self.select_noise}",
            )
        if not 1 <= self.select_episodes <= 1024:
            raise ConfigError(
                "select_episodes", f"must be in [1, 1024], got {self.select_episodes}"
            )
        if not 0.0 < self.tau <= 1.0:
            raise ConfigError("tau", f"must be in (0, 1], got {self.tau}")
        if not 0 <= self.sensor_headings <= 64:
            raise ConfigError(
                "sensor_headings", f"must be in [0, 64] (0: no sensor), got {self.sensor_headings}"
            )
        if not 0.0 <= self.move_penalty <= 10.0:
            raise ConfigError("move_penalty", f"must be in [0, 10], got {self.move_penalty}")
        self._check_energy_price()
        if self.recharge_reflex and self.algo != "mappo":
            raise ConfigError("recharge_reflex", f"needs algo = mappo, not {self.algo}")
        self._check_recharge_rule()
        self._check_action_space()
        if self.warmup_steps < 0:
            raise ConfigError("warmup_steps", f"must be >= 0, got {self.warmup_steps}")
        for name in ("noise_start", "noise_end", "eval_noise"):
            if not 0.0 <= getattr(self, name) <= 2.0:
                raise ConfigError(name, f"must be in [0, 2], got {getattr(self, name)}")
        if self.buffer_size < self.num_envs:
            raise ConfigError(
                "buffer_size", f"must hold at least one step of all worlds ({self.num_envs})"
            )

    def _check_number(self, name: str, low: float, high: float) -> None:
        """ConfigError naming ``name`` unless it is a number (not a bool) in [low, high]."""
        check_number(name, getattr(self, name), low, high)

    @property
    def recharge_rule(self) -> RechargeRule:
        """The recharge rule of the reflex and of the targets decoding (``marl.recharge``)."""
        return RechargeRule(**{n: getattr(self, f"charge_{n}") for n in CONFIG_CONSTANTS})

    @property
    def score_terms(self) -> ScoreTerms:
        """The fleet-wide terms of the targets decoding's score (``marl.score_terms``)."""
        return ScoreTerms(
            self.backlog_weight,
            self.jain_weight,
            self.isolation_weight,
            self.territory_weight,
            self.target_grid,
            self.travel_weight,
        )

    @property
    def recharge_setting(self) -> str | None:
        """The first ``charge_*`` setting that departs from greedy's recharge rule (None when
        none does): the field an error names where no recharge rule applies."""
        greedy = RechargeRule()
        for name in CONFIG_CONSTANTS:
            if getattr(self, f"charge_{name}") != getattr(greedy, name):
                return f"charge_{name}"
        return None

    def _check_recharge_rule(self) -> None:
        for name in CONFIG_CONSTANTS:
            self._check_number(f"charge_{name}", *RULE_BOUNDS[name])
        uses_rule = self.recharge_reflex or self.action_space == "targets"
        if self.recharge_setting and not uses_rule:
            raise ConfigError(
                self.recharge_setting,
                'sets the recharge rule: needs recharge_reflex or action_space = "targets"',
            )

    def _check_action_space(self) -> None:
        self._check_number("max_distance_power", 1.0, MAX_DISTANCE_POWER)
        for term, (low, high) in TERM_BOUNDS.items():
            self._check_number(f"{term}_weight", low, high)
        if problem := spacing_problem(self.target_grid):
            raise ConfigError("target_grid", problem)
        if self.action_space == "move":
            if self.target_grid:
                raise ConfigError("target_grid", 'needs action_space = "targets"')
            for term in TERM_BOUNDS:
                if getattr(self.score_terms, term) != getattr(GREEDY_TERMS, term):
                    raise ConfigError(
                        f"{term}_weight", 'weighs greedy\'s targets: needs action_space = "targets"'
                    )
            return
        if self.algo != "mappo":
            raise ConfigError("action_space", f'"targets" needs algo = mappo, not {self.algo}')
        clash = {
            "recharge_reflex": self.recharge_reflex,  # greedy's recharge rule is in the decoding
            "imitate": self.imitate != "none",  # the planner's labels are moves, not weights
        }
        for name, on in clash.items():
            if on:
                raise ConfigError(name, 'cannot be combined with action_space = "targets"')

    def _check_energy_price(self) -> None:
        if not (self.energy_price == -1.0 or 0.0 <= self.energy_price <= 1000.0):
            raise ConfigError(
                "energy_price",
                f"must be -1 (follow the fleet's efficiency) or in [0, 1000], got "
                f"{self.energy_price}",
            )
        if self.shaping == "efficiency" and self.energy_price < 0 and self.algo != "mappo":
            raise ConfigError(
                "energy_price",
                "only MAPPO can follow the fleet's efficiency (a replay buffer keeps rewards "
                f"priced long ago): set energy_price >= 0 for {self.algo}",
            )

    def _check_ppo(self) -> None:
        if not 0.0 < self.clip_eps < 1.0:
            raise ConfigError("clip_eps", f"must be in (0, 1), got {self.clip_eps}")
        self._check_number("gae_lambda", 0.0, 1.0)
        for name in ("ent_coef", "vf_coef"):
            self._check_number(name, 0.0, 10.0)
        anneal = self.ppo_anneal_steps
        if isinstance(anneal, bool) or not isinstance(anneal, int) or not 0 <= anneal <= 10**12:
            raise ConfigError(
                "ppo_anneal_steps",
                f"must be an integer in [0, 1e12] env steps (0: off), got {anneal!r}",
            )
        if self.algo == "mappo" and (self.num_envs * self.ppo_steps) % self.ppo_minibatches:
            raise ConfigError(
                "ppo_minibatches",
                f"must divide num_envs * ppo_steps ({self.num_envs * self.ppo_steps})",
            )
        self._check_recurrent()

    def _check_recurrent(self) -> None:
        self._check_number("gru_hidden", 1, 1024)
        if not self.recurrent:
            return
        if self.algo != "mappo":
            raise ConfigError(
                "recurrent",
                f'only MAPPO has a recurrent actor, not {self.algo}; use algo = "mappo" '
                "or recurrent = false",
            )
        if self.num_envs % self.ppo_minibatches:
            raise ConfigError(
                "ppo_minibatches",
                f"must divide num_envs ({self.num_envs}): a recurrent actor's minibatches "
                "are whole worlds' sequences",
            )

    def _check_imitation(self) -> None:
        if self.imitate != "none" and self.algo != "mappo":
            raise ConfigError("imitate", f"needs algo = 'mappo', got {self.algo!r}")
        if self.imitate != "none" and self.recurrent:
            raise ConfigError(
                "imitate", "clones a feed-forward actor only; use recurrent = false with it"
            )
        bounds = {"demo_episodes": 10_000, "dagger_rounds": 100, "bc_epochs": 10_000}
        for name, most in bounds.items():
            lo = 0 if name == "dagger_rounds" else 1
            if not lo <= getattr(self, name) <= most:
                raise ConfigError(name, f"must be in [{lo}, {most}], got {getattr(self, name)}")
        if not 0.0 < self.demo_time_limit_s <= 60.0:
            raise ConfigError(
                "demo_time_limit_s", f"must be in (0, 60] seconds, got {self.demo_time_limit_s}"
            )
        if not 0.0 < self.bc_lr <= 1.0:
            raise ConfigError("bc_lr", f"must be in (0, 1], got {self.bc_lr}")
        self._check_number("bc_log_std", -5.0, 1.0)

    def _check_devices(self) -> None:
        if self.devices == 1:
            return
        if self.recurrent:
            raise ConfigError(
                "devices", "a recurrent actor trains on one device only; use devices = 1"
            )
        if self.num_envs % self.devices:
            raise ConfigError(
                "devices", f"must divide num_envs ({self.num_envs}), got {self.devices}"
            )
        if self.algo != "mappo":  # each device keeps its share of the batch and the buffer
            for name in ("batch_size", "buffer_size"):
                if getattr(self, name) % self.devices:
                    raise ConfigError(
                        "devices", f"must divide {name} ({getattr(self, name)}), got {self.devices}"
                    )
            return
        per_device = self.num_envs // self.devices * self.ppo_steps
        if per_device % self.ppo_minibatches:
            raise ConfigError(
                "ppo_minibatches",
                f"must divide each device's num_envs / devices * ppo_steps ({per_device})",
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping (lists for tuples) that :func:`from_dict` turns back into this config."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], section: str = "train") -> TrainConfig:
        """Validated config from a table of a TOML/YAML file (unknown keys name the field)."""
        return from_mapping(cls, data, section)


def load_train_config(
    config: str | Path | None, algo: str | None = None, **overrides: Any
) -> TrainConfig:
    """The ``[train]`` section of ``config`` (defaults without one); ``algo`` and the
    ``overrides`` that are not None (command-line flags) replace its values."""
    section = read_section(config, "train")
    if algo is not None:
        section = {**section, "algo": algo}
    section = {**section, **{k: v for k, v in overrides.items() if v is not None}}
    return TrainConfig.from_dict(section)
