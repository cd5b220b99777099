"""Planner-guided MAPPO: DAgger rounds of behaviour cloning, then PPO starts from the clone.

PPO from scratch finds none of the 16-21% of efficiency the OR-Tools planner has over greedy.
:func:`pretrain` gives it the planner's behaviour to start from (demonstration-augmented policy
gradient, Rajeswaran et al. 2018), with DAgger (Ross et al. 2011) against the compounding errors
of plain cloning:

1. round 0: ``demo_episodes`` episodes played by the planner itself, every slot labelled with its
   action (``marl.demonstrations``);
2. fit: the actor's mean by least squares on the labels in z (``bc_epochs`` epochs of Adam, one
   jitted call), its state-independent log std set to ``bc_log_std`` so PPO explores around the
   clone, not around noise; the critic by least squares on the discounted training returns of
   the episodes played, so PPO's first advantages do not come from a random critic;
3. rounds 1..``dagger_rounds``: ``demo_episodes`` more episodes driven by the current clone,
   labelled by the planner on the states the clone visits; refit on everything so far.

The maps are drawn from a key stream of the training seed that neither PPO's worlds nor the
held-out evaluation seeds use. The report counts what the demonstrations cost (env steps, plans,
CPU seconds, the planner's included) so budgets can be compared honestly.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from chainsense.marl import demonstrations, features, mappo_update
from chainsense.marl import mappo_networks as mnet
from chainsense.marl.config import TrainConfig
from chainsense.marl.planner import PlannerPolicy
from chainsense.sim.maps import WorldMap
from chainsense.sim.params import WorldParams

#: samples per gradient step of the cloning fit
BATCH = 256
#: the demonstration maps' key stream: fold_in(PRNGKey(seed), _DEMO_STREAM)
_DEMO_STREAM = 0x0DA6


def bc_loss(cfg: TrainConfig, actor: Any, obs: jax.Array, z: jax.Array) -> jax.Array:
    """Mean squared distance in z between the actor's mean and the labels."""
    mean, _ = mnet.policy(cfg, actor, obs)
    return jnp.mean(jnp.sum((mean - z) ** 2, axis=-1))


def value_loss(cfg: TrainConfig, critic: Any, obs: jax.Array, ret: jax.Array) -> jax.Array:
    """Mean squared error of the centralised V against the returns."""
    return jnp.mean((mnet.value(cfg, critic, obs) - ret) ** 2)


@partial(jax.jit, static_argnames=("cfg", "epochs"))
def fit(
    cfg: TrainConfig,
    nets: tuple[Any, Any],
    data: demonstrations.Dataset,
    key: jax.Array,
    epochs: int,
) -> tuple[tuple[Any, Any], dict[str, jax.Array]]:
    """``epochs`` passes of Adam (``bc_lr``) over shuffled minibatches; losses per epoch."""
    tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip), optax.adam(cfg.bc_lr))
    n = data.obs.shape[0]
    size = min(BATCH, n)
    count = n // size

    def step(state: tuple, idx: jax.Array) -> tuple[tuple, jax.Array]:
        nets, opt = state

        def total(p: tuple[Any, Any]) -> tuple[jax.Array, jax.Array]:
            a = bc_loss(cfg, p[0], data.obs[idx], data.z[idx])
            v = value_loss(cfg, p[1], data.obs[idx], data.ret[idx])
            return a + v, jnp.stack([a, v])

        grads, parts = jax.grad(total, has_aux=True)(nets)
        upd, opt = tx.update(grads, opt, nets)
        return (optax.apply_updates(nets, upd), opt), parts

    def epoch(state: tuple, k: jax.Array) -> tuple[tuple, jax.Array]:
        perm = jax.random.permutation(k, n)[: size * count].reshape(count, size)
        state, parts = jax.lax.scan(step, state, perm)
        return state, jnp.mean(parts, axis=0)

    (nets, _), parts = jax.lax.scan(epoch, (nets, tx.init(nets)), jax.random.split(key, epochs))
    return nets, {"bc_loss": parts[:, 0], "value_loss": parts[:, 1]}


def with_log_std(actor: Any, log_std: float) -> Any:
    """The actor with its state-independent log std set to ``log_std`` in both coordinates."""
    params = dict(actor["params"])
    params["log_std"] = jnp.full_like(params["log_std"], log_std)
    return {**actor, "params": params}


def _merge(a: demonstrations.Dataset | None, b: demonstrations.Dataset) -> demonstrations.Dataset:
    if a is None:
        return b
    return demonstrations.Dataset(*(np.concatenate(pair) for pair in zip(a, b, strict=True)))


def pretrain(
    cfg: TrainConfig,
    params: WorldParams,
    seed: int,
    world_map: WorldMap | None = None,
    on_round: Any = None,
) -> tuple[mappo_update.Learner, dict[str, Any]]:
    """A MAPPO learner cloned from the planner (see the module docstring) with a fresh PPO
    optimiser, and the report of every round (cost, losses, the episodes' metrics).
    ``on_round(round_report)`` is called after each round (progress output)."""
    t0, c0 = time.perf_counter(), time.process_time()
    planner = PlannerPolicy(time_limit_s=cfg.demo_time_limit_s)
    root = jax.random.PRNGKey(seed)
    k_init, k_fit = jax.random.split(jax.random.fold_in(root, _DEMO_STREAM + 1))
    od = features.learner_obs_dim(cfg, params)
    actor, critic = mnet.init(k_init, cfg, params.num_mts, od)
    data: demonstrations.Dataset | None = None
    rounds: list[dict[str, Any]] = []
    demo_root = jax.random.fold_in(root, _DEMO_STREAM)
    for r in range(cfg.dagger_rounds + 1):
        keys = [
            jax.random.fold_in(demo_root, r * cfg.demo_episodes + e)
            for e in range(cfg.demo_episodes)
        ]
        beta = 1.0 if r == 0 else 0.0
        new, info = demonstrations.collect(planner, actor, beta, keys, cfg, params, world_map)
        data = _merge(data, new)
        c1 = time.process_time()
        (actor, critic), losses = fit(
            cfg,
            (actor, critic),
            jax.tree_util.tree_map(jnp.asarray, data),
            jax.random.fold_in(k_fit, r),
            cfg.bc_epochs,
        )
        actor = with_log_std(actor, cfg.bc_log_std)
        info |= {
            "round": float(r),
            "beta": beta,
            "samples": float(len(data.obs)),
            "fit_cpu_s": time.process_time() - c1,
            "bc_loss": float(losses["bc_loss"][-1]),
            "value_loss": float(losses["value_loss"][-1]),
        }
        rounds.append(info)
        if on_round is not None:
            on_round(info)
    learner = mappo_update.Learner(
        actor=actor,
        critic=critic,
        opt=mappo_update.optimiser(cfg).init((actor, critic)),
        updates=jnp.zeros((), jnp.int32),
    )
    report = {
        "rounds": rounds,
        "env_steps": sum(x["env_steps"] for x in rounds),
        "plans": sum(x["plans"] for x in rounds),
        "cpu_s": time.process_time() - c0,
        "wall_s": time.perf_counter() - t0,
    }
    return learner, report
