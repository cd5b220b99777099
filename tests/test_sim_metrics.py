"""Jain's index on hand-computed cases and the episode metrics with their 0/0 conventions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chainsense.sim.metrics import ALL_METRICS, episode_metrics, jain_fairness
from chainsense.sim.params import preset
from chainsense.sim.world import reset


@pytest.mark.parametrize(
    ("visits", "expected"),
    [
        ([1, 1, 1, 1], 1.0),
        ([4, 0, 0, 0], 0.25),
        ([1, 2, 3], 36 / (3 * 14)),
        ([2, 2, 0, 0], 0.5),
        ([5], 1.0),
        ([0, 0, 0], 0.0),  # convention: nothing served is not fair
    ],
)
def test_jain_hand_computed(visits, expected):
    assert float(jain_fairness(jnp.array(visits))) == pytest.approx(expected, rel=1e-6)


def test_jain_is_batched_over_leading_axes():
    v = jnp.array([[1, 1], [1, 0], [0, 0]])
    np.testing.assert_allclose(jain_fairness(v), [1.0, 0.5, 0.0])


def test_metrics_of_untouched_world_are_zero_not_nan():
    p = preset("small")
    s, _ = reset(jax.random.PRNGKey(3), p)
    m = episode_metrics(s, p)
    assert set(m) == set(ALL_METRICS)
    for name in ("data_collection_ratio", "energy_usage_ratio", "fairness", "energy_efficiency"):
        assert float(m[name]) == 0.0


def test_metrics_hand_computed():
    p = preset("small")
    s, _ = reset(jax.random.PRNGKey(3), p)
    k = p.num_pois
    init = jnp.full((k,), 0.5)
    data = init.at[:8].set(0.0)  # 8 of 32 PoIs drained: ratio 0.25
    visits = jnp.zeros((k,), jnp.int32).at[:8].set(5)
    s = s.replace(
        poi_init=init,
        poi_data=data,
        visits=visits,
        energy=jnp.array([5.0, 7.0]),
        collisions=jnp.array([2, 1]),
    )
    m = episode_metrics(s, p)
    assert float(m["data_collection_ratio"]) == pytest.approx(0.25)
    assert float(m["energy_usage_ratio"]) == pytest.approx((5.0 + 3.0) / 20.0)
    assert float(m["fairness"]) == pytest.approx(0.25)
    assert float(m["energy_efficiency"]) == pytest.approx(0.25 * 0.25 / 0.4)
    assert float(m["collisions"]) == 3.0
    assert float(m["data_collected"]) == pytest.approx(4.0)


def test_metrics_vmap_over_a_batch_equal_the_metrics_of_each_world():
    p = preset("small")
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    states, _ = jax.vmap(lambda k: reset(k, p))(keys)
    # worlds that differ: each with its own drained PoIs, visits and energy
    drained = jnp.arange(p.num_pois)[None, :] < jnp.array([[4], [16], [0]])
    states = states.replace(
        poi_data=jnp.where(drained, 0.0, states.poi_data),
        visits=jnp.where(drained, 3, 0).astype(jnp.int32),
        energy=states.energy * jnp.array([[0.5], [0.25], [1.0]]),
    )
    batched = jax.vmap(lambda s: episode_metrics(s, p))(states)
    for i in range(3):
        one = episode_metrics(jax.tree_util.tree_map(lambda x, i=i: x[i], states), p)
        for name in ALL_METRICS:
            assert float(batched[name][i]) == pytest.approx(float(one[name]), rel=1e-6), name
    assert float(batched["data_collection_ratio"][2]) == 0.0 < float(batched["fairness"][1])


def test_recharged_energy_spent_counts_as_energy_used():
    p = preset("small").replace(num_stations=1, charge_rate=1.0)
    s, _ = reset(jax.random.PRNGKey(3), p)
    s = s.replace(energy=jnp.array([10.0, 4.0]), charged=jnp.array([2.0, 0.0]))
    m = episode_metrics(s, p)
    # spent = initial - left + charged = (0 + 6) + 2 = 8 of the fleet's initial 2 * 10 = 20
    assert float(m["energy_usage_ratio"]) == pytest.approx(8.0 / 20.0)
    assert float(m["energy_charged"]) == pytest.approx(2.0)
    # charging without spending is no gain: a fleet that topped up the same 2 units and ends
    # with them in its batteries used exactly what one that never charged used
    topped = s.replace(energy=jnp.array([12.0, 4.0]))
    plain = s.replace(energy=jnp.array([10.0, 4.0]), charged=jnp.zeros(2))
    used = episode_metrics(topped, p)["energy_usage_ratio"]
    assert float(used) == pytest.approx(float(episode_metrics(plain, p)["energy_usage_ratio"]))


def test_collection_ratio_of_data_that_keeps_arriving_is_collected_over_generated():
    p = preset("small").replace(data_rate=0.01, buffer_capacity=1.0)
    s, _ = reset(jax.random.PRNGKey(3), p)
    init = jnp.full((p.num_pois,), 0.5)
    s = s.replace(
        poi_init=init,
        poi_data=jnp.full((p.num_pois,), 0.25),
        generated=jnp.full((p.num_pois,), 0.5),
        lost=jnp.full((p.num_pois,), 0.25),
        age_sum=jnp.float32(0.5 * p.num_pois * 10.0),
    )
    m = episode_metrics(s, p)
    # there were 0.5 + 0.5 per PoI; 0.25 was lost and 0.25 is left: 0.5 collected
    assert float(m["data_collection_ratio"]) == pytest.approx(0.5)
    assert float(m["data_lost"]) == pytest.approx(0.25 * p.num_pois)
    assert float(m["mean_age"]) == pytest.approx(10.0)
