"""``marl.poi_clusters``: the cell-list neighbourhood sums equal the dense K x K ones on any map,
dense clusters (the fallback) and batched worlds included."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsense.marl.poi_clusters import RUN_CAP, cell_sums, cluster_sums, dense_sums
from chainsense.sim import world
from chainsense.sim.params import preset

SMALL = preset("small")


def _check(params, pos: np.ndarray, values: np.ndarray, reach: float | None = None) -> None:
    """Both sums against the dense one, within ``reach`` (the sensing range unless given)."""
    pos, values = jnp.asarray(pos, jnp.float32), jnp.asarray(values, jnp.float32)
    want = dense_sums(pos, values, params.sensing_range if reach is None else reach)
    for sums in (cell_sums, cluster_sums):
        got = jax.jit(lambda p, v, sums=sums: sums(p, v, params, reach))(pos, values)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.integers(1, 96),
    st.floats(0.05, 3.0),
    st.sampled_from([(8.0, 8.0), (8.0, 3.0), (0.5, 12.0)]),
    st.booleans(),
    st.sampled_from([None, 0.3, 2.1]),
)
def test_cell_list_sums_are_the_dense_sums(
    seed: int, k: int, reach: float, size: tuple[float, float], heap: bool, other: float | None
) -> None:
    """Within the sensing range, or within another ``reach`` (the isolation count's) that the
    cells are then sized for."""
    params = dataclasses.replace(
        SMALL, width=size[0], height=size[1], sensing_range=reach, num_pois=k, num_obstacles=0
    )
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0.0, 1.0, (k, 2)) * np.array(size)
    if heap:  # many PoIs in one cell: more than a row's run holds, the dense fallback
        pos[: k // 2] = pos[0] + rng.uniform(0.0, 0.01, (k // 2, 2))
    pos[rng.random(k) < 0.1] = np.array(size)  # on the far edges: the last cell, not past it
    _check(params, pos, rng.uniform(0.0, 2.0, (k, 3)), other)


def test_a_heap_beyond_the_run_cap_falls_back_exactly() -> None:
    k = RUN_CAP * 3
    pos = np.full((k, 2), 4.0) + np.linspace(0.0, 0.05, k)[:, None]
    _check(dataclasses.replace(SMALL, num_pois=k), pos, np.arange(k, dtype=float)[:, None])


def test_batched_worlds_match_world_by_world() -> None:
    params = preset("large")
    keys = jax.random.split(jax.random.PRNGKey(4), 3)
    states = jax.vmap(lambda key: world.reset(key, params)[0])(keys)
    values = jnp.stack([states.poi_data, states.poi_init], axis=-1)
    batched = jax.jit(jax.vmap(lambda p, v: cell_sums(p, v, params)))(states.poi_pos, values)
    for i in range(3):
        want = dense_sums(states.poi_pos[i], values[i], params.sensing_range)
        np.testing.assert_allclose(batched[i], want, rtol=1e-5, atol=1e-5)


def test_one_crowded_world_sends_its_whole_batch_to_the_exact_fallback() -> None:
    k = RUN_CAP * 3
    params = dataclasses.replace(SMALL, num_pois=k)
    rng = np.random.default_rng(0)
    spread = rng.uniform(0.0, 8.0, (k, 2))
    heap = np.full((k, 2), 4.0) + rng.uniform(0.0, 0.05, (k, 2))
    pos = jnp.asarray(np.stack([spread, heap]), jnp.float32)
    values = jnp.asarray(rng.uniform(0.0, 1.0, (2, k, 2)), jnp.float32)
    batched = jax.jit(jax.vmap(lambda p, v: cell_sums(p, v, params)))(pos, values)
    for i in range(2):
        want = dense_sums(pos[i], values[i], params.sensing_range)
        np.testing.assert_allclose(batched[i], want, rtol=1e-5, atol=1e-5)


def test_a_batch_does_not_reserve_the_dense_matrix_for_every_world() -> None:
    """The fallback's K x K matrix is built one world at a time: a compiled batch of 64 worlds of
    1,024 PoIs reserves less than half of the 256 MB that all of them at once would take
    (before, the never-run branch held it all: 1 GB in `large`'s training loop)."""
    params = preset("large")
    worlds, k = 64, params.num_pois
    pos = jnp.zeros((worlds, k, 2), jnp.float32)
    values = jnp.zeros((worlds, k, 2), jnp.float32)
    fn = jax.jit(jax.vmap(lambda p, v: cell_sums(p, v, params)))
    memory = fn.lower(pos, values).compile().memory_analysis()
    all_at_once = worlds * k * k * 4
    assert memory is not None and memory.temp_size_in_bytes < all_at_once / 2
