"""Data-parallel MAPPO (marl/sharding.py): config refusals, the one-device path unchanged, and
in a subprocess with two XLA host devices (this process's JAX already has one): the joint
gradient step equals the one-device step on the union of the data, a two-device training run
counts every device's env steps and episodes, and its checkpoint acts on one device."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from chainsense.errors import ConfigError
from chainsense.marl import algos, session, sharding
from chainsense.marl.config import TrainConfig
from chainsense.marl.evaluate import evaluate
from chainsense.marl.learned import load_policy
from chainsense.sim.params import preset

SMALL = preset("small")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"devices": 0}, "devices"),
        ({"devices": -2}, "devices"),
        ({"num_envs": 10, "devices": 4}, "devices"),
        ({"algo": "maddpg", "num_envs": 8, "devices": 2, "batch_size": 3}, "batch_size"),
        ({"algo": "iddpg", "num_envs": 8, "devices": 2, "buffer_size": 1001}, "buffer_size"),
        ({"num_envs": 6, "devices": 2, "ppo_steps": 3, "ppo_minibatches": 2}, "ppo_minibatches"),
    ],
)
def test_config_refuses_bad_device_counts(changes: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**{"algo": "mappo", **changes})


def test_more_devices_than_jax_has_names_the_field() -> None:
    cfg = TrainConfig(algo="mappo", num_envs=8, devices=jax.device_count() + 1)
    with pytest.raises(ConfigError, match=r"devices.*XLA_FLAGS"):
        algos.init_carry(jax.random.PRNGKey(0), cfg, SMALL)


def test_request_host_devices_keeps_other_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XLA_FLAGS", f"--xla_cpu_foo=1 {sharding.HOST_DEVICE_FLAG}=4")
    sharding.request_host_devices(2)
    assert os.environ["XLA_FLAGS"] == f"--xla_cpu_foo=1 {sharding.HOST_DEVICE_FLAG}=2"
    sharding.request_host_devices(1)  # one device: nothing to ask for
    assert os.environ["XLA_FLAGS"] == f"--xla_cpu_foo=1 {sharding.HOST_DEVICE_FLAG}=2"


def test_one_device_path_is_the_single_device_loop() -> None:
    """Two chunks with devices = 1 give the figures the loop gave before data parallelism
    (recorded from the code before marl/sharding.py existed; bit-identical on the machine
    that recorded them, a tolerance for other CPUs' float reassociation)."""
    cfg = TrainConfig(
        algo="mappo",
        num_envs=8,
        ppo_steps=4,
        ppo_epochs=2,
        ppo_minibatches=2,
        chunk_iters=3,
        actor_hidden=(16,),
        critic_hidden=(16,),
    )
    carry = algos.init_carry(jax.random.PRNGKey(3), cfg, SMALL)
    chunk = algos.make_chunk(cfg, SMALL)
    for _ in range(2):
        carry, stats = chunk(carry)
    stats = jax.device_get(stats)
    recorded = {
        "actor_loss": -0.0003314083442091942,
        "critic_loss": 0.3261362910270691,
        "q_mean": -0.7617658376693726,
        "return": 4.058416366577148,
        "episodes": 1.0,
    }
    for k, v in recorded.items():
        np.testing.assert_allclose(stats[k], v, rtol=1e-4, err_msg=k)
    sums = [
        float(np.abs(np.asarray(x)).sum()) for x in jax.tree_util.tree_leaves(carry.learner.actor)
    ]
    np.testing.assert_allclose(sums[1], 102.27571105957031, rtol=1e-5)
    np.testing.assert_allclose(sums[5], 16.005474090576172, rtol=1e-5)


_TWO_DEVICES = r"""
import dataclasses, json, sys
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import PartitionSpec as P
from chainsense.marl import mappo_update, session, sharding
from chainsense.marl import mappo_networks as mnet
from chainsense.marl.config import TrainConfig
from chainsense.sim.params import preset

assert jax.device_count() == 2, jax.devices()
out = {}

# the joint gradient step against one device on the union of the data; the two halves have
# advantages of different means, so normalising each half alone would give another step
cfg = TrainConfig(algo="mappo", ppo_epochs=2, ppo_minibatches=1, actor_hidden=(16,),
                  critic_hidden=(16,), ent_coef=0.01)
m, d, n = 3, 7, 64
learner = mappo_update.init(jax.random.PRNGKey(0), cfg, m, d)
k = jax.random.split(jax.random.PRNGKey(1), 5)
obs = jax.random.normal(k[0], (n, m, d))
mean, log_std = mnet.policy(cfg, learner.actor, obs)
z = mean + jax.random.normal(k[1], mean.shape)
adv = jax.random.normal(k[2], (n, m)) + 5.0 * (jnp.arange(n) >= n // 2)[:, None]
batch = mappo_update.Batch(obs, z, mnet.log_prob(z, mean, log_std),
                           jax.random.normal(k[3], (n, m)), adv, jax.random.normal(k[4], (n, m)))
one, one_logs = mappo_update.update(cfg, learner, batch, jax.random.PRNGKey(7))
mesh = sharding.mesh(dataclasses.replace(cfg, devices=2, num_envs=2))

def joint(b):
    return mappo_update.update(cfg, learner, b, jax.random.PRNGKey(7), sharding.AXIS)

sharded = jax.jit(jax.shard_map(joint, mesh=mesh, in_specs=P(sharding.AXIS), out_specs=P(),
                                check_vma=False))
two, two_logs = sharded(batch)
halves = adv.reshape(2, n // 2, m)
local_adv = ((halves - halves.mean((1, 2), keepdims=True))
             / halves.std((1, 2), keepdims=True)).reshape(n, m)
local, _ = sharded(batch._replace(advantage=local_adv))

def gap(a, b):
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in
               zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True))

out["joint_gap"] = gap((one.actor, one.critic), (two.actor, two.critic))
out["local_gap"] = gap((one.actor, one.critic), (local.actor, local.critic))
out["step_size"] = gap((one.actor, one.critic), (learner.actor, learner.critic))
out["log_gap"] = max(abs(float(one_logs[k]) - float(two_logs[k])) for k in one_logs)

# a two-device training run on the small world (energy to spare: episodes end on time only)
params = preset("small").replace(initial_energy=1000.0)
tcfg = TrainConfig(algo="mappo", num_envs=8, ppo_steps=10, ppo_epochs=2, ppo_minibatches=2,
                   chunk_iters=5, actor_hidden=(16,), critic_hidden=(16,), devices=2)
res = session.run(tcfg, params, seed=1, steps=2400, out_dir=sys.argv[1])
out["env_steps"] = res.env_steps
out["updates"] = res.updates
out["episodes"] = res.episodes
out["num_slots"] = params.num_slots
out["replicated"] = all(
    all(np.array_equal(np.asarray(s.data), np.asarray(x.addressable_shards[0].data))
        for s in x.addressable_shards)
    for x in jax.tree_util.tree_leaves(res.learner))
out["devices_held"] = len(jax.tree_util.tree_leaves(res.learner)[0].addressable_shards)
out["finite"] = all(np.isfinite(r["critic_loss"]) for r in res.rows)

# MADDPG: the joint step against one device on the union, and a short two-device run
from chainsense.marl import maddpg, train
from chainsense.sim.params import state_dim
small = preset("small")
mcfg = TrainConfig(algo="maddpg", actor_hidden=(16,), critic_hidden=(16,))
example = train._example_transition(mcfg, small)
leaves, tree = jax.tree_util.tree_flatten(example)
keys = jax.random.split(jax.random.PRNGKey(3), len(leaves))
mbatch = jax.tree_util.tree_unflatten(
    tree, [jax.random.normal(k, (n, *x.shape)) for k, x in zip(keys, leaves)])
mlearner = maddpg.init(jax.random.PRNGKey(4), mcfg, small.num_mts,
                       example.obs.shape[-1], state_dim(small))
mone, mone_logs = maddpg.update(mcfg, mlearner, mbatch)
mtwo, mtwo_logs = jax.jit(jax.shard_map(
    lambda b: maddpg.update(mcfg, mlearner, b, sharding.AXIS), mesh=mesh,
    in_specs=P(sharding.AXIS), out_specs=P(), check_vma=False))(mbatch)
out["maddpg_gap"] = gap((mone.actor, mone.critic), (mtwo.actor, mtwo.critic))
out["maddpg_step"] = gap((mone.actor, mone.critic), (mlearner.actor, mlearner.critic))
out["maddpg_log_gap"] = max(abs(float(mone_logs[k]) - float(mtwo_logs[k])) for k in mone_logs)
dcfg = TrainConfig(algo="maddpg", num_envs=8, batch_size=32, buffer_size=1000,
                   warmup_steps=100, chunk_iters=25, actor_hidden=(16,), critic_hidden=(16,),
                   devices=2)
dres = session.run(dcfg, params, seed=1, steps=800)
out["maddpg_run"] = [dres.env_steps, dres.updates, dres.episodes]
# the two-device carry is built in place, split, and holds what one device would build
from chainsense.marl import maddpg_sharding
split = maddpg_sharding.init_carry(jax.random.PRNGKey(5), dcfg, params)
whole = train.init_carry(jax.random.PRNGKey(5), dcfg, params)
out["maddpg_init_gap"] = max(
    float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
    for a, b in zip(jax.tree_util.tree_leaves(split), jax.tree_util.tree_leaves(whole), strict=True)
    if np.size(a))
out["maddpg_buffer_shard_rows"] = [
    s.data.shape[0] for s in jax.tree_util.tree_leaves(split.buf.data)[0].addressable_shards]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out_dir = tmp_path_factory.mktemp("two_devices")
    # the test run's own XLA flags (scripts/test.sh's optimisation level) and two devices
    flags = sharding.with_host_devices(os.environ.get("XLA_FLAGS", ""), 2)
    env = {**os.environ, "XLA_FLAGS": flags}
    res = subprocess.run(
        [sys.executable, "-c", _TWO_DEVICES, str(out_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1]), out_dir


def test_joint_step_equals_one_device_step_on_the_union(two_devices: tuple[dict, Path]) -> None:
    report, _ = two_devices
    assert report["step_size"] > 1e-4  # the update moved the nets ...
    assert report["joint_gap"] < 1e-5  # ... and both devices moved them as one device does
    assert report["log_gap"] < 1e-5
    # normalising each device's advantages alone is another algorithm, and the test sees it
    assert report["local_gap"] > 100 * max(report["joint_gap"], 1e-7)


def test_two_device_run_counts_every_device(two_devices: tuple[dict, Path]) -> None:
    report, _ = two_devices
    iterations = 2400 // (8 * 10)
    assert report["env_steps"] == 2400
    assert report["updates"] == iterations * 2 * 2
    # 8 worlds x 300 slots each: at least 6 finished episodes per world, 48 in all (one
    # device's statistics alone would be about half)
    assert report["episodes"] >= report["env_steps"] // report["num_slots"]
    assert report["episodes"] <= report["env_steps"] // report["num_slots"] + 8
    assert report["replicated"] and report["devices_held"] == 2
    assert report["finite"]


def test_two_device_checkpoint_acts_on_one_device(two_devices: tuple[dict, Path]) -> None:
    _, out_dir = two_devices
    policy, params = load_policy("mappo", out_dir / "fleet.msgpack")
    assert policy.cfg.devices == 2 and jax.device_count() == 1
    table = evaluate(policy, params, range(2), "mappo")
    assert np.isfinite(table.mean["energy_efficiency"])


def test_two_device_checkpoint_resumes_on_one_device(two_devices: tuple[dict, Path]) -> None:
    report, out_dir = two_devices
    cfg = TrainConfig(
        algo="mappo",
        num_envs=8,
        ppo_steps=10,
        ppo_epochs=2,
        ppo_minibatches=2,
        chunk_iters=5,
        actor_hidden=(16,),
        critic_hidden=(16,),
    )
    params = SMALL.replace(initial_energy=1000.0)
    res = session.run(cfg, params, seed=1, steps=400, resume=out_dir / "fleet.msgpack")
    assert res.env_steps == report["env_steps"] + 400
    assert res.updates == report["updates"] + 4 * 5


def test_maddpg_joint_step_and_two_device_run(two_devices: tuple[dict, Path]) -> None:
    report, _ = two_devices
    assert report["maddpg_step"] > 1e-5
    assert report["maddpg_gap"] < 1e-5 and report["maddpg_log_gap"] < 1e-4
    # 100 iterations of 8 worlds; the buffers (4 + 4 per iteration) reach the warm-up of 100 at
    # iteration 13, as one buffer of 8 per iteration would; 8 worlds x 2 episodes of 50 slots
    assert report["maddpg_run"] == [800, 88, 16]
    # built in place: each device holds half the buffer, the same values as one device builds
    assert report["maddpg_buffer_shard_rows"] == [500, 500]
    assert report["maddpg_init_gap"] < 1e-5
