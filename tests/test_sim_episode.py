"""Whole episodes: map generation, determinism, batched == unbatched, invariants under any input."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsense.marl.evaluate import rollout
from chainsense.marl.policies import GreedyPolicy, RandomPolicy
from chainsense.sim.maps import WorldMap, generate_map
from chainsense.sim.observe import observe
from chainsense.sim.params import preset
from chainsense.sim.world import batch_reset, batch_step, episode_start, reset, step

SMALL = preset("small")


def _inside(points, boxes):
    x, y = points[:, None, 0], points[:, None, 1]
    return np.any(
        (x >= boxes[:, 0]) & (x <= boxes[:, 2]) & (y >= boxes[:, 1]) & (y <= boxes[:, 3]), 1
    )


def test_generated_maps_keep_pois_out_of_obstacles_and_the_start_free():
    p = preset("paper")
    keys = jax.random.split(jax.random.PRNGKey(7), 64)
    pos, data, boxes, _, _ = jax.jit(jax.vmap(lambda k: generate_map(k, p)))(keys)
    pos, data, boxes = np.asarray(pos), np.asarray(data), np.asarray(boxes)
    for i in range(64):
        assert not np.any(_inside(pos[i], boxes[i]))
        assert not np.any(_inside(np.array([p.start]), boxes[i]))
    assert np.all((pos >= 0) & (pos <= 16)) and np.all((data >= 0) & (data <= 1))
    assert np.all(boxes[..., 2] <= 16) and np.all(boxes[..., 3] <= 16)


def test_fixed_map_seed_gives_the_same_map_for_every_key():
    p = SMALL.replace(map_seed=11)
    a, _ = reset(jax.random.PRNGKey(1), p)
    b, _ = reset(jax.random.PRNGKey(2), p)
    np.testing.assert_array_equal(a.poi_pos, b.poi_pos)
    c, _ = reset(jax.random.PRNGKey(1), SMALL)
    d, _ = reset(jax.random.PRNGKey(2), SMALL)
    assert not np.array_equal(c.poi_pos, d.poi_pos)


def test_an_evaluation_plays_the_map_episode_start_draws_or_the_given_site():
    # One rule for "seed s plays map m" (sim.world.episode_start), shared by the evaluation, the
    # replanned baselines, the demonstrations and bound_dynamic: their tables must line up.
    key = jax.random.PRNGKey(7)
    start, _ = episode_start(key, SMALL)
    played = rollout(GreedyPolicy(), SMALL, key, record=True)
    np.testing.assert_array_equal(played.data_history[0], start.poi_data)
    np.testing.assert_array_equal(played.positions[0], start.mt_pos)
    other, _ = episode_start(jax.random.PRNGKey(8), SMALL)
    assert not np.array_equal(other.poi_pos, start.poi_pos)
    site = WorldMap(
        np.asarray(other.poi_pos), np.asarray(other.poi_init), np.asarray(other.obstacles)
    )
    on_site, _ = episode_start(key, SMALL, site)
    np.testing.assert_array_equal(on_site.poi_pos, other.poi_pos)
    played = rollout(GreedyPolicy(), SMALL, key, record=True, world_map=site)
    np.testing.assert_array_equal(played.data_history[0], other.poi_data)


def _episode(seed, params):
    key = jax.random.PRNGKey(seed)
    s, obs = reset(key, params)
    pol = RandomPolicy()
    traj = [np.asarray(s.mt_pos)]
    rewards = []
    for t in range(params.num_slots):
        ka, ks = jax.random.split(jax.random.fold_in(key, t + 1))
        s, obs, r, _, _ = step(ks, s, pol.act(ka, obs, s, params), params)
        traj.append(np.asarray(s.mt_pos))
        rewards.append(np.asarray(r))
    return np.stack(traj), np.stack(rewards), s


def test_same_seed_same_trajectory_over_a_whole_episode():
    t1, r1, s1 = _episode(5, SMALL)
    t2, r2, s2 = _episode(5, SMALL)
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(s1.poi_data, s2.poi_data)
    t3, _, _ = _episode(6, SMALL)
    assert not np.array_equal(t1, t3)


def test_batched_equals_unbatched():
    keys = jax.random.split(jax.random.PRNGKey(0), 5)
    bs, bobs = batch_reset(keys, SMALL)
    singles = [reset(k, SMALL) for k in keys]
    for t in range(12):
        acts = jax.random.uniform(jax.random.PRNGKey(t), (5, 2, 2)) * jnp.array([7.0, 1.2])
        bs, bobs, br, bd, binfo = batch_step(keys, bs, acts, SMALL)
        for i in range(5):
            s, o, r, d, info = step(keys[i], singles[i][0], acts[i], SMALL)
            singles[i] = (s, o)
            np.testing.assert_allclose(bs.mt_pos[i], s.mt_pos, atol=1e-6)
            np.testing.assert_allclose(bs.poi_data[i], s.poi_data, atol=1e-6)
            np.testing.assert_allclose(bobs[i], o, atol=1e-5)
            np.testing.assert_allclose(br[i], r, atol=1e-5)
            np.testing.assert_allclose(
                binfo.collected_per_poi[i], info.collected_per_poi, atol=1e-6
            )
            assert bool(bd[i]) == bool(d)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**20),
    actions=st.lists(
        st.tuples(
            st.floats(-20, 20) | st.just(float("nan")),
            st.floats(-2, 3) | st.just(float("inf")),
            st.floats(-20, 20),
            st.floats(-2, 3),
        ),
        min_size=1,
        max_size=40,
    ),
)
def test_invariants_hold_under_any_actions(seed, actions):
    s, _ = reset(jax.random.PRNGKey(seed), SMALL)
    boxes = np.asarray(s.obstacles)
    init_total = float(jnp.sum(s.poi_init))
    for a in actions:
        s, obs, r, _, info = step(jax.random.PRNGKey(0), s, jnp.array(a).reshape(2, 2), SMALL)
        pos, energy = np.asarray(s.mt_pos), np.asarray(s.energy)
        assert np.all((pos >= 0) & (pos <= [SMALL.width, SMALL.height]))
        assert not np.any(_inside(pos, boxes) & ~np.asarray(info.collision))
        assert np.all(energy >= 0) and np.all(energy <= SMALL.initial_energy)
        assert np.all(np.asarray(s.poi_data) >= 0)
        assert np.all(np.asarray(info.collected_per_poi) >= 0)
        assert np.all(np.isfinite(np.asarray(obs))) and np.all(np.isfinite(np.asarray(r)))
        taken = init_total - float(jnp.sum(s.poi_data))
        assert abs(taken - float(jnp.sum(s.collected))) < 1e-4


def test_observation_under_nested_vmap_matches_single_worlds():
    keys = jax.random.split(jax.random.PRNGKey(3), 6).reshape(2, 3, 2)
    states, _ = jax.vmap(jax.vmap(lambda k: reset(k, SMALL)))(keys)
    states = states.replace(poi_data=states.poi_data * 0.5)  # make the maps differ from reset
    nested = jax.jit(jax.vmap(jax.vmap(lambda s: observe(s, SMALL))))(states)
    for i in range(2):
        for j in range(3):
            one = observe(jax.tree.map(lambda x, i=i, j=j: x[i, j], states), SMALL)
            np.testing.assert_allclose(nested[i, j], one, atol=1e-5)


_SCAN_P = SMALL.replace(num_slots=30)


@jax.jit
def _scan_rollout(key, actions):
    s, o = reset(key, _SCAN_P)

    def body(carry, a):
        s2, o2, r, _, info = step(key, carry[0], a, _SCAN_P)
        return (s2, o2), (r, info.collected_per_poi, o2)

    return jax.lax.scan(body, (s, o), actions)


def test_scan_rollout_and_step_loop_agree_exactly():
    # Issue 12, defect 12: XLA fused multiply-adds differently in a lax.scan body and in the
    # jitted step, so energies (and from there fairness) drifted apart between the two.
    for seed in range(8):
        rng = np.random.default_rng(seed)
        acts = np.stack(
            [rng.uniform(0, 2 * np.pi, (30, 2)), rng.uniform(0, 1.0, (30, 2))], -1
        ).astype(np.float32)
        key = jax.random.PRNGKey(seed)
        (final, _), (rewards, per_poi, obs) = _scan_rollout(key, jnp.asarray(acts))
        s, _ = reset(key, _SCAN_P)
        for t in range(30):
            s, o, r, _, info = step(key, s, jnp.asarray(acts[t]), _SCAN_P)
            np.testing.assert_array_equal(r, rewards[t])
            np.testing.assert_array_equal(info.collected_per_poi, per_poi[t])
            np.testing.assert_array_equal(o, obs[t])
        for name in ("mt_pos", "energy", "poi_data", "visits", "collected", "energy_spent"):
            np.testing.assert_array_equal(getattr(s, name), getattr(final, name), err_msg=name)
