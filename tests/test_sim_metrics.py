"""Jain's index on hand-computed cases and the episode metrics with their 0/0 conventions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chainsense.sim.metrics import METRIC_NAMES, episode_metrics, jain_fairness
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
    assert set(m) == set(METRIC_NAMES)
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


def test_metrics_vmap_over_a_batch():
    p = preset("small")
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    states, _ = jax.vmap(lambda k: reset(k, p))(keys)
    m = jax.vmap(lambda s: episode_metrics(s, p))(states)
    assert m["fairness"].shape == (3,)
