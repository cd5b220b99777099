"""The recharge rule (``marl.recharge``): greedy's rule ignores the clock; the endgame rule charges
only what the slots left can spend, and everything that recharges (greedy, the reflex, the
targets decoding) follows the rule it is given."""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chainsense.errors import ConfigError
from chainsense.marl import session, target_actions
from chainsense.marl.config import TrainConfig
from chainsense.marl.evaluate import evaluate
from chainsense.marl.policies import GreedyPolicy
from chainsense.marl.recharge import (
    EARLY_RULE,
    ENDGAME_RULE,
    GREEDY_RULE,
    RechargeRule,
    recharge_need,
)
from chainsense.marl.registry import baseline
from chainsense.sim import world
from chainsense.sim.params import preset

CHARGING = preset("charging")  # batteries of 25, 0.5 per slot at a station, 300 slots


def _need(energy: float, at_station: bool, t: int, rule: RechargeRule) -> tuple[bool, bool]:
    """(go, stay) of one MT ``energy`` strong, at a station or 4 away from the nearest, at slot
    ``t`` of a `charging` world."""
    state, _ = world.reset(jax.random.PRNGKey(2), CHARGING)
    station = state.stations[0]
    away = station + jnp.array([4.0, 0.0]) if station[0] < 8 else station - jnp.array([4.0, 0.0])
    pos = (station if at_station else away)[None, :]
    go, stay, _ = recharge_need(
        pos, jnp.array([energy]), state.stations, jnp.int32(t), CHARGING, rule
    )
    return bool(go[0]), bool(stay[0])


def test_greedys_rule_ignores_the_clock() -> None:
    for t in (0, 150, 299):
        assert _need(2.0, False, t, GREEDY_RULE) == (True, False)  # low: back to a station
        assert _need(20.0, True, t, GREEDY_RULE) == (False, True)  # charges to 90% of 25
        assert _need(23.0, True, t, GREEDY_RULE) == (False, False)


def test_the_endgame_rule_charges_only_what_the_slots_left_can_spend() -> None:
    # early on, 0.4 per slot left is more than a battery holds: charge to full
    assert _need(23.0, True, 0, ENDGAME_RULE) == (False, True)
    assert _need(24.9, True, 0, ENDGAME_RULE) == (False, True)
    # 40 slots left: 16 units will do, so an MT holding 17 leaves and one holding 15 stays
    assert _need(17.0, True, 260, ENDGAME_RULE) == (False, False)
    assert _need(15.0, True, 260, ENDGAME_RULE) == (False, True)
    # low, but the 3 slots left after the 4-slot trip would not spend even what it holds
    assert _need(2.0, False, 293, ENDGAME_RULE) == (False, False)
    assert _need(2.0, False, 100, ENDGAME_RULE) == (True, False)


def test_the_early_rule_goes_back_below_its_share_of_the_battery_while_the_clock_allows() -> None:
    """Below 40% of the battery (10 of 25) the early rule sends an MT 4 away back, where greedy's
    and the endgame rule keep it working until the way back needs it; late in the episode the
    clock rules: 9 units cover the 20 slots left."""
    for t in (0, 150):
        assert _need(9.0, False, t, EARLY_RULE) == (True, False)
        assert _need(9.0, False, t, ENDGAME_RULE) == (False, False)
        assert _need(11.0, False, t, EARLY_RULE) == (False, False)
    assert _need(9.0, False, 280, EARLY_RULE) == (False, False)
    # at the station it charges as the endgame rule does: to full, at most 0.4 per slot left
    assert _need(20.0, True, 0, EARLY_RULE) == (False, True)
    assert _need(17.0, True, 260, EARLY_RULE) == (False, False)


def test_greedy_on_the_endgame_rule_ends_with_less_unused_charge() -> None:
    seeds = range(10000, 10004)
    plain = evaluate(GreedyPolicy(), CHARGING, seeds)
    endgame = evaluate(baseline("greedy-endgame"), CHARGING, seeds)
    left = {name: _energy_left(table.per_episode) for name, table in [("g", plain), ("e", endgame)]}
    assert left["e"] < 0.6 * left["g"]  # greedy keeps ~13 of 25 per MT, the endgame rule far less
    assert endgame.mean["data_collection_ratio"] >= plain.mean["data_collection_ratio"] - 0.01


def _energy_left(per_episode: dict[str, np.ndarray]) -> float:
    """Mean energy per MT left at the end of an episode: initial + charged - spent."""
    used = per_episode["energy_usage_ratio"] * CHARGING.initial_energy  # per MT, recharge in
    charged = per_episode["energy_charged"] / CHARGING.num_mts
    return float(np.mean(CHARGING.initial_energy + charged - used))


def test_the_targets_decoding_follows_the_fleets_rule() -> None:
    state, _ = world.reset(jax.random.PRNGKey(2), CHARGING)
    station = state.stations[0]
    state = state.replace(
        mt_pos=jnp.stack([station, station]),
        energy=jnp.array([17.0, 17.0], jnp.float32),
        t=jnp.int32(260),
    )
    disk = jnp.zeros((2, 2))
    greedy_cfg = TrainConfig(algo="mappo", action_space="targets")
    endgame_cfg = dataclasses.replace(greedy_cfg, charge_full=1.0, charge_per_slot_left=0.4)
    stays = target_actions.decode(state, disk, CHARGING, greedy_cfg)
    leaves = target_actions.decode(state, disk, CHARGING, endgame_cfg)
    np.testing.assert_array_equal(np.asarray(stays[:, 1]), [0.0, 0.0])  # greedy: tops up to 22.5
    assert float(jnp.max(leaves[:, 1])) > 0.0  # endgame: 17 covers 40 slots, off to collect


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"full": 0.0}, "full"),
        ({"full": 1.5}, "full"),
        ({"reserve": 0.5}, "reserve"),
        ({"per_slot_left": -0.1}, "per_slot_left"),
        ({"per_slot_left": float("nan")}, "per_slot_left"),
        ({"per_slot_left": True}, "per_slot_left"),
        ({"below": -0.1}, "below"),
        ({"below": 1.5}, "below"),
        ({"below": float("nan")}, "below"),
        ({"below": "0.4"}, "below"),
    ],
)
def test_a_bad_rule_names_its_field(settings: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        RechargeRule(**settings)


def test_a_rule_set_where_nothing_recharges_by_it_is_refused() -> None:
    with pytest.raises(ConfigError, match="charge_per_slot_left"):
        TrainConfig(algo="mappo", charge_per_slot_left=0.4)  # steering, no reflex: unused
    with pytest.raises(ConfigError, match="charge_full"):
        TrainConfig(algo="mappo", charge_full=2.0, recharge_reflex=True)
    with pytest.raises(ConfigError, match="charge_below"):
        TrainConfig(algo="mappo", charge_below=0.4)
    with pytest.raises(ConfigError, match="charge_below"):
        TrainConfig(algo="mappo", action_space="targets", charge_below=1.2)
    reflex = TrainConfig(algo="mappo", recharge_reflex=True, charge_per_slot_left=0.4)
    assert reflex.recharge_rule == RechargeRule(per_slot_left=0.4)
    early = TrainConfig(
        algo="mappo", action_space="targets", charge_full=1.0, charge_per_slot_left=0.4,
        charge_below=0.4,
    )  # fmt: skip
    assert early.recharge_rule == EARLY_RULE


def test_a_rule_on_a_world_without_stations_is_refused_before_any_work(tmp_path: Path) -> None:
    cfg = TrainConfig(algo="mappo", action_space="targets", charge_per_slot_left=0.4)
    with pytest.raises(ConfigError, match="charge_per_slot_left"):
        session.run(cfg, preset("small"), seed=0, steps=1_000, out_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
