"""Scenario invariants: charged energy is accounted, buffers stay in [0, capacity] and data is
conserved, and an MT never learns another's collection earlier than ``share_delay`` slots."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chainsense.errors import ConfigError
from chainsense.marl.evaluate import rollout
from chainsense.marl.policies import GreedyPolicy, RandomPolicy
from chainsense.marl.registry import baseline
from chainsense.sim.maps import WorldMap, load_map, make_map, save_map
from chainsense.sim.metrics import episode_metrics
from chainsense.sim.params import preset
from chainsense.sim.world import episode_start, reset, reset_with_map, step

SMALL = preset("small")


def _run(params, policy, seed: int = 0, slots: int | None = None):
    """A Python loop over step: the states after every slot and the infos."""
    key = jax.random.PRNGKey(seed)
    state, obs = episode_start(key, params)
    states, infos = [state], []
    for t in range(slots or params.num_slots):
        k = jax.random.fold_in(key, t + 1)
        ka, ks = jax.random.split(k)
        actions = policy.act(ka, obs, state, params)
        state, obs, _, _, info = step(ks, state, actions, params)
        states.append(state)
        infos.append(info)
    return states, infos


def test_charging_energy_is_accounted_and_never_above_the_battery() -> None:
    p = SMALL.replace(num_stations=2, charge_rate=0.5, charge_radius=1.0, initial_energy=4.0)
    states, infos = _run(p, GreedyPolicy(), slots=50)
    for before, after, info in zip(states, states[1:], infos, strict=False):
        # energy after = before - spent + charged, exactly as the world books it
        np.testing.assert_allclose(
            np.asarray(after.energy),
            np.asarray(before.energy - info.energy_used + info.charged),
            atol=1e-5,
        )
        assert np.all(np.asarray(after.energy) <= p.initial_energy + 1e-6)
        assert np.all(np.asarray(info.charged) >= 0)
    final = states[-1]
    charged = float(jnp.sum(final.charged))
    assert charged > 0  # the greedy went back to a station
    m = episode_metrics(final, p)
    spent = float(jnp.sum(final.energy_spent))
    assert float(m["energy_charged"]) == pytest.approx(charged)
    assert float(m["energy_usage_ratio"]) == pytest.approx(
        spent / (p.num_mts * p.initial_energy), rel=1e-4
    )


def test_an_mt_recharges_only_within_the_radius_of_a_station() -> None:
    p = SMALL.replace(num_stations=1, charge_rate=1.0, charge_radius=0.5)
    state, _ = reset(jax.random.PRNGKey(0), p)
    station = jnp.array([[1.0, 1.0]])
    state = state.replace(
        stations=station,
        mt_pos=jnp.array([[1.2, 1.0], [3.0, 3.0]]),
        energy=jnp.array([2.0, 2.0]),
        obstacles=jnp.full_like(state.obstacles, -2.0),
    )
    state, *_, info = step(jax.random.PRNGKey(1), state, jnp.zeros((2, 2)), p)
    np.testing.assert_allclose(np.asarray(info.charged), [1.0, 0.0])


@pytest.mark.parametrize("policy", [GreedyPolicy(), RandomPolicy()], ids=["greedy", "random"])
def test_buffers_stay_within_capacity_and_data_is_conserved(policy) -> None:
    p = SMALL.replace(data_rate=0.05, buffer_capacity=0.6)
    states, infos = _run(p, policy, slots=40)
    for s in states:
        data = np.asarray(s.poi_data)
        assert np.all(data >= 0) and np.all(data <= p.buffer_capacity + 1e-6)
    final = states[-1]
    collected = sum(np.asarray(i.collected_per_poi).sum(axis=0) for i in infos)
    # generated = collected + remaining + lost, PoI by PoI (the initial data counts as generated)
    np.testing.assert_allclose(
        np.asarray(final.poi_init + final.generated),
        collected + np.asarray(final.poi_data) + np.asarray(final.lost),
        atol=1e-4,
    )
    assert float(jnp.sum(final.generated)) > 0 and float(jnp.sum(final.lost)) > 0
    m = episode_metrics(final, p)
    total = float(jnp.sum(final.poi_init + final.generated))
    assert float(m["data_collection_ratio"]) == pytest.approx(collected.sum() / total, rel=1e-3)
    assert 0 <= float(m["mean_age"]) <= 40


def _far_apart(p, delay: int):
    """Two MTs in opposite corners of a map with no obstacles, seeing 1.5 around them."""
    q = p.replace(observe_radius=1.5, share_delay=delay)
    state, _ = reset(jax.random.PRNGKey(0), q)
    state = state.replace(
        mt_pos=jnp.array([[0.5, 0.5], [7.5, 7.5]]),
        obstacles=jnp.full_like(state.obstacles, -2.0),
    )
    return q, state


@pytest.mark.parametrize("delay", [0, 1, 3, -1])
def test_an_mt_never_learns_another_collection_before_share_delay_slots(delay: int) -> None:
    p, state = _far_apart(SMALL.replace(num_slots=20), delay)
    stay = jnp.zeros((2, 2))
    state, _, _, _, info = step(jax.random.PRNGKey(1), state, stay, p)  # slot 0: MT 0 collects
    taken_by_0 = np.asarray(info.collected_per_poi[0])
    far = np.flatnonzero(taken_by_0 > 0)
    assert far.size  # MT 0 collected, far from MT 1
    belief_1 = [np.asarray(state.belief[1, far])]
    for _ in range(5):
        state, *_ = step(jax.random.PRNGKey(1), state, stay, p)
        belief_1.append(np.asarray(state.belief[1, far]))
    truth_before = np.asarray(state.poi_init[far])
    for slot, seen in enumerate(belief_1):  # belief after slot `slot`
        learned = not np.allclose(seen, truth_before)
        if delay < 0:
            assert not learned
        else:
            assert learned == (slot >= delay), (slot, delay)
    # MT 0 knows its own collection at once
    assert np.allclose(np.asarray(state.belief[0, far]), np.asarray(state.poi_data[far]))


@pytest.mark.parametrize("delay", [0, 1, 3, -1])
def test_where_buffers_refill_an_mt_learns_who_served_a_poi_from_the_records(delay: int) -> None:
    """A refilled buffer looks as full as an unserved one, so ``known_served`` keeps what the
    MT knows from the records: its own at once, another's after ``share_delay`` slots (never
    with -1), whatever the data shows."""
    p, state = _far_apart(SMALL.replace(num_slots=20, data_rate=0.01), delay)
    assert state.known_served.shape == (2, p.num_pois) and not bool(jnp.any(state.known_served))
    stay = jnp.zeros((2, 2))
    state, _, _, _, info = step(jax.random.PRNGKey(1), state, stay, p)  # slot 0: MT 0 collects
    far = np.flatnonzero(np.asarray(info.collected_per_poi[0]) > 0)
    assert far.size
    assert bool(jnp.all(state.known_served[0, far]))  # its own records, at once
    for slot in range(5):  # known to MT 1 after slot `slot`
        assert bool(jnp.all(state.known_served[1, far])) == (0 <= delay <= slot), (slot, delay)
        state, *_ = step(jax.random.PRNGKey(1), state, stay, p)
    static, _ = reset(jax.random.PRNGKey(0), SMALL.replace(observe_radius=1.5))
    assert static.known_served.size == 0  # static worlds: the belief below the initial data tells


def test_partial_observation_shows_each_mt_its_own_belief() -> None:
    p, state = _far_apart(SMALL.replace(num_slots=20), -1)  # nothing shared
    stay = jnp.zeros((2, 2))
    first = 4 + 2 * (p.num_mts - 1)
    coarse = slice(first, first + p.obs_grid**2)
    _, obs0 = reset(jax.random.PRNGKey(0), p)
    np.testing.assert_allclose(obs0[0, coarse], obs0[1, coarse])  # both start from the survey
    for _ in range(3):  # MT 0 drains the PoIs around its corner; MT 1 cannot know
        state, obs, *_ = step(jax.random.PRNGKey(1), state, stay, p)
    corner = 0  # coarse cell (0, 0), where MT 0 stands
    assert float(obs[0, coarse][corner]) < float(obs[1, coarse][corner])


def test_scenario_maps_round_trip_and_reject_bad_stations(tmp_path) -> None:
    p = SMALL.replace(num_stations=2, charge_rate=1.0, data_rate=0.01)
    m = make_map(3, p)
    assert m.stations.shape == (2, 2) and m.poi_rate.shape == (p.num_pois,)
    assert np.all((m.poi_rate >= 0) & (m.poi_rate <= 2 * p.data_rate))
    path = tmp_path / "m.json"
    save_map(m, path)
    back = load_map(path, p)
    np.testing.assert_allclose(back.stations, m.stations)
    np.testing.assert_allclose(back.poi_rate, m.poi_rate)
    bad = WorldMap(
        m.poi_pos, m.poi_data, m.obstacles, np.array([[99.0, 1.0], [1.0, 1.0]]), m.poi_rate
    )
    with pytest.raises(ConfigError) as err:
        reset_with_map(load_map(_saved(bad, tmp_path), p), p)
    assert err.value.field == "map.stations"
    # the paper's draws come first: adding stations and rates never moves PoIs or obstacles
    plain = make_map(3, SMALL)
    np.testing.assert_array_equal(plain.poi_pos, m.poi_pos)
    np.testing.assert_array_equal(plain.obstacles, m.obstacles)


def _saved(world_map: WorldMap, tmp_path):
    path = tmp_path / "bad.json"
    save_map(world_map, path)
    return path


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"charge_rate": 1.0}, "charge_rate"),  # no stations
        ({"num_stations": 65}, "num_stations"),
        ({"data_rate": 2.0}, "data_rate"),  # above the buffer
        ({"observe_radius": -1.0}, "observe_radius"),
        ({"share_delay": 3}, "share_delay"),  # without an observe_radius
        ({"observe_radius": 1.0, "share_delay": -2}, "share_delay"),
        ({"buffer_capacity": 0.0}, "buffer_capacity"),
    ],
)
def test_bad_scenario_settings_name_the_field(change: dict, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        SMALL.replace(**change)
    assert err.value.field == field


@pytest.mark.parametrize("name", ["energy", "charging", "dynamic", "large"])
def test_every_preset_plays_an_episode_with_every_baseline(name: str) -> None:
    p = preset(name).replace(num_slots=20)
    for policy in ("random", "greedy", "greedy-local"):
        r = rollout(baseline(policy), p, jax.random.PRNGKey(0))
        assert 0.0 <= r.metrics["data_collection_ratio"] <= 1.0
        assert np.isfinite(list(r.metrics.values())).all()


def test_energy_preset_binds_collection_below_sixty_percent() -> None:
    p = preset("energy")
    r = rollout(GreedyPolicy(), p, jax.random.PRNGKey(0))
    assert r.metrics["data_collection_ratio"] <= 0.65
    assert r.metrics["energy_usage_ratio"] > 0.99  # the budget, not the data, ran out
