"""Training on the real small world: improvement, seed determinism, checkpoints, resume."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chainsense.errors import ChainsenseError, ConfigError
from chainsense.marl import checkpoint, features, maddpg, session
from chainsense.marl.config import TrainConfig
from chainsense.marl.evaluate import evaluate
from chainsense.marl.learned import LearnedPolicy, load_policy
from chainsense.sim import world
from chainsense.sim.params import obs_dim, preset, state_dim

SMALL = preset("small")
FAST = TrainConfig(
    num_envs=64,
    buffer_size=50_000,
    warmup_steps=2_000,
    noise_decay_steps=60_000,
    chunk_iters=25,
)
EVAL_SEEDS = range(100, 110)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> session.TrainResult:
    out = tmp_path_factory.mktemp("fleet")
    return session.run(FAST, SMALL, seed=0, steps=80_000, out_dir=out)


def test_short_training_improves_over_initial_policy(trained) -> None:
    od = features.learner_obs_dim(FAST, SMALL)
    initial = maddpg.init(jax.random.PRNGKey(0), FAST, 2, od, state_dim(SMALL))
    # the session derives its learner key from PRNGKey(seed) by a split; any fresh actor will do
    before = evaluate(LearnedPolicy(initial.actor, FAST), SMALL, EVAL_SEEDS, "initial")
    after = evaluate(LearnedPolicy(trained.learner.actor, FAST), SMALL, EVAL_SEEDS, "trained")
    assert trained.updates > 500 and trained.episodes > 100
    assert after.mean["data_collection_ratio"] > before.mean["data_collection_ratio"] + 0.15
    assert after.mean["energy_efficiency"] > 1.3 * before.mean["energy_efficiency"]
    # the logged training curve also went up: late episodes collect more than the first ones
    rows = [r for r in trained.rows if r["episodes"] > 0]
    first, last = rows[0]["data_collection_ratio"], rows[-1]["data_collection_ratio"]
    assert last > first


def test_outputs_written(trained) -> None:
    files = trained.files
    for key in ("checkpoint", "log", "curves"):
        assert files[key].is_file() and files[key].stat().st_size > 0
    assert any(files["tensorboard"].glob("events.out.tfevents.*"))
    header = files["log"].read_text().splitlines()[0].split(",")
    assert header[:4] == ["env_steps", "updates", "seconds", "episodes"]
    assert len(files["log"].read_text().splitlines()) == len(trained.rows) + 1


def test_checkpoint_round_trip_gives_identical_actions(trained) -> None:
    policy, params = load_policy("maddpg", trained.files["checkpoint"], SMALL)
    assert params == SMALL
    original = LearnedPolicy(trained.learner.actor, FAST)
    state, _ = world.reset(jax.random.PRNGKey(4), SMALL)
    obs = jax.random.normal(jax.random.PRNGKey(5), (2, obs_dim(SMALL)))
    key = jax.random.PRNGKey(9)
    np.testing.assert_array_equal(
        np.asarray(policy.act(key, obs, state, SMALL)),
        np.asarray(original.act(key, obs, state, SMALL)),
    )
    a = evaluate(policy, SMALL, range(3)).per_episode
    b = evaluate(original, SMALL, range(3)).per_episode
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    ck = checkpoint.load(trained.files["checkpoint"])
    assert ck.cfg == FAST and int(ck.progress["env_steps"]) == trained.env_steps
    for x, y in zip(
        jax.tree_util.tree_leaves(ck.learner),
        jax.tree_util.tree_leaves(trained.learner),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_resume_continues_counters(trained, tmp_path) -> None:
    res = session.run(
        FAST, SMALL, seed=0, steps=3_200, out_dir=tmp_path, resume=trained.files["checkpoint"]
    )
    assert res.env_steps == trained.env_steps + 3_200
    # 50 iterations; updates restart once the empty buffer holds warmup_steps transitions again
    refill = -(-FAST.warmup_steps // FAST.num_envs)
    assert res.updates == trained.updates + 50 - refill + 1
    with pytest.raises(ConfigError, match="resume"):
        session.run(TrainConfig(num_envs=32), SMALL, steps=100, resume=trained.files["checkpoint"])


def test_seed_determinism() -> None:
    cfg = TrainConfig(num_envs=16, buffer_size=5_000, warmup_steps=200, chunk_iters=20)
    runs = [session.run(cfg, SMALL, seed=s, steps=1_280) for s in (3, 3, 4)]
    leaves = [jax.tree_util.tree_leaves(r.learner) for r in runs]
    for x, y in zip(leaves[0], leaves[1], strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    returns = [np.array([r["return"] for r in run.rows]) for run in runs[:2]]
    assert np.isfinite(returns[0]).any()  # episodes finished, so the logs hold real returns
    np.testing.assert_array_equal(returns[0], returns[1])  # (a chunk without one logs NaN)
    differ = [
        not np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(leaves[0], leaves[2], strict=True)
    ]
    assert any(differ)


def test_hostile_checkpoints_and_arguments(trained, tmp_path: Path) -> None:
    junk = tmp_path / "junk.msgpack"
    junk.write_bytes(b"\x00\x01 not msgpack at all")
    with pytest.raises(ChainsenseError, match="checkpoint"):
        checkpoint.load(junk)
    with pytest.raises(ChainsenseError, match="not found"):
        checkpoint.load(tmp_path / "missing.msgpack")
    with pytest.raises(ChainsenseError, match="maddpg fleet, not iddpg"):
        load_policy("iddpg", trained.files["checkpoint"])
    with pytest.raises(ConfigError, match="num_mts"):
        load_policy("maddpg", trained.files["checkpoint"], SMALL.replace(num_mts=3))
    with pytest.raises(ConfigError, match="policy"):
        load_policy("ppo", trained.files["checkpoint"])
    with pytest.raises(ConfigError, match="steps"):
        session.run(FAST, SMALL)
    with pytest.raises(ConfigError, match="minutes"):
        session.run(FAST, SMALL, minutes=-1.0)
    # a truncated checkpoint is refused, not half-loaded
    cut = tmp_path / "cut.msgpack"
    cut.write_bytes(trained.files["checkpoint"].read_bytes()[:200])
    with pytest.raises(ChainsenseError):
        checkpoint.load(cut)
    assert jnp.isfinite(jnp.asarray(trained.rows[-1]["critic_loss"]))
