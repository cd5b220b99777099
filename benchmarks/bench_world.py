"""World throughput: B batched worlds (jit + vmap + scan) vs the same worlds through PettingZoo.

Prints, per observation kind, world-steps per second of
  * the batched world inside one jitted ``lax.scan`` (how training and evaluation use it), the
    batch split across ``--devices`` XLA host devices (one per core),
  * the same, cache-blocked: each device runs its worlds in blocks of ``--block`` worlds, each
    block scanned through all slots while its state stays in cache (``lax.map(batch_size=)``),
  * one ``batch_step`` call per slot from Python (adds dispatch and materialises every output),
  * stepping worlds one at a time through ``CrowdsensingParallelEnv`` (measured on
    ``--pz-steps`` steps round-robin over ``--pz-envs`` of the same worlds),
and the ratio batched / PettingZoo, plus CPU use (process CPU seconds / wall seconds, to read the
figures on a shared machine) and peak resident memory.

    .venv/bin/python benchmarks/bench_world.py                 # B=4096, paper preset, 2 devices
    .venv/bin/python benchmarks/bench_world.py --batch 1024 --observation paper
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--batch", type=int, default=4096, help="worlds stepped together (B)")
    ap.add_argument("--steps", type=int, default=50, help="slots per timed scan")
    ap.add_argument("--repeats", type=int, default=5, help="timed repetitions (best and median)")
    ap.add_argument("--devices", type=int, default=2, help="XLA host devices (cores) to split B")
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--observation", choices=["both", "rich", "paper"], default="both")
    ap.add_argument("--block", type=int, default=64, help="worlds per cache block")
    ap.add_argument("--pz-steps", type=int, default=400, help="PettingZoo steps timed")
    ap.add_argument("--pz-envs", type=int, default=16, help="distinct worlds stepped by PettingZoo")
    a = ap.parse_args()
    if a.batch < 1 or a.steps < 1 or a.repeats < 1 or a.devices < 1 or a.batch % a.devices:
        ap.error("batch, steps, repeats, devices must be >= 1 and devices must divide batch")
    return a


ARGS = _args()
BLOCK = ARGS.block
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={ARGS.devices}"
)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as PS  # noqa: E402, N817

from chainsense.sim import world  # noqa: E402
from chainsense.sim.params import WorldParams, preset  # noqa: E402
from chainsense.sim.pettingzoo import CrowdsensingParallelEnv  # noqa: E402


def _timed(fn, repeats: int) -> list[tuple[float, float]]:
    """(wall seconds, process CPU seconds) per repetition."""
    out = []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn())
        out.append((time.perf_counter() - w0, time.process_time() - c0))
    return out


def bench_batched(params: WorldParams, b: int, steps: int, repeats: int, devices: int) -> dict:
    mesh = Mesh(np.array(jax.devices()[:devices]), ("b",))
    shard = NamedSharding(mesh, PS("b"))
    keys = jax.random.split(jax.random.PRNGKey(0), b)
    states, _ = world.batch_reset(keys, params)
    states = jax.device_put(states, shard)
    u = jax.random.uniform(jax.random.PRNGKey(1), (b, 8, params.num_mts, 2))
    table = jax.device_put(u * jnp.array([2 * np.pi, params.max_move]), shard)
    key = jax.random.PRNGKey(2)

    def scan_run(s: world.WorldState, acts: jax.Array) -> tuple[world.WorldState, jax.Array]:
        def body(carry, t):
            st, acc = carry
            a = jax.lax.dynamic_index_in_dim(acts, t % 8, axis=1, keepdims=False)
            st, obs, r, _, _ = jax.vmap(lambda x, y: world.step(key, x, y, params))(st, a)
            return (st, acc + r.sum(axis=1) + obs.sum(axis=(1, 2))), None

        (s, acc), _ = jax.lax.scan(body, (s, jnp.zeros((b,))), jnp.arange(steps))
        return s, acc

    run = jax.jit(scan_run)
    jax.block_until_ready(run(states, table))  # compile
    scan_t = _timed(lambda: run(states, table), repeats)

    def one_world(args: tuple[world.WorldState, jax.Array]) -> jax.Array:
        s, acts = args

        def body(carry, t):
            st, acc = carry
            a = jax.lax.dynamic_index_in_dim(acts, t % 8, axis=0, keepdims=False)
            st, obs, r, _, _ = world.step(key, st, a, params)
            return (st, acc + r.sum() + obs.sum()), None

        (_, acc), _ = jax.lax.scan(body, (s, jnp.float32(0)), jnp.arange(steps))
        return acc

    # Cache-blocked: each device runs its worlds in blocks of `block` (vmapped), every block
    # scanned through all slots while its state stays in cache (lax.map with batch_size).
    block = min(BLOCK, b // devices)
    blocked = jax.jit(
        jax.shard_map(
            lambda s, a: jax.lax.map(one_world, (s, a), batch_size=block),
            mesh=mesh,
            in_specs=(PS("b"), PS("b")),
            out_specs=PS("b"),
            check_vma=False,
        )
    )
    jax.block_until_ready(blocked(states, table))  # compile
    blocked_t = _timed(lambda: blocked(states, table), repeats)

    a0 = table[:, 0]
    one = jax.block_until_ready(world.batch_step(keys, states, a0, params))

    def calls() -> object:
        s = states
        for _ in range(10):
            s = world.batch_step(keys, s, a0, params)[0]
        return s

    del one
    call_t = _timed(calls, max(2, repeats // 2))
    return {
        "scan": [(b * steps / w, c / w) for w, c in scan_t],
        "blocked": [(b * steps / w, c / w) for w, c in blocked_t],
        "call": [(b * 10 / w, c / w) for w, c in call_t],
    }


def bench_pettingzoo(params: WorldParams, n_envs: int, n_steps: int) -> tuple[float, float]:
    envs = [CrowdsensingParallelEnv(params, seed=i) for i in range(n_envs)]
    for e in envs:
        e.reset()
    rng = np.random.default_rng(0)
    hi = np.array([2 * np.pi, params.max_move], np.float32)
    actions = rng.uniform(0, 1, (n_steps, params.num_mts, 2)).astype(np.float32) * hi
    envs[0].step({a: actions[0, i] for i, a in enumerate(envs[0].agents)})  # compile
    w0, c0 = time.perf_counter(), time.process_time()
    for t in range(n_steps):
        e = envs[t % n_envs]
        if not e.agents:
            e.reset()
        e.step({a: actions[t, i] for i, a in enumerate(e.agents)})
    w = time.perf_counter() - w0
    return n_steps / w, (time.process_time() - c0) / w


def main() -> None:
    base = preset(ARGS.preset)
    kinds = ["rich", "paper"] if ARGS.observation == "both" else [ARGS.observation]
    print(
        f"bench_world: preset={ARGS.preset} B={ARGS.batch} steps/scan={ARGS.steps} "
        f"devices={ARGS.devices} cores={os.cpu_count()} jax={jax.__version__} "
        f"backend={jax.default_backend()} load_avg={os.getloadavg()[0]:.2f}"
    )
    for kind in kinds:
        params = base.replace(observation=kind)
        res = bench_batched(params, ARGS.batch, ARGS.steps, ARGS.repeats, ARGS.devices)
        pz_rate, pz_cpu = bench_pettingzoo(params, ARGS.pz_envs, ARGS.pz_steps)
        scan_rates = [r for r, _ in res["scan"]]
        best = max(res["scan"])
        med = statistics.median(scan_rates)
        call_best = max(res["call"])
        blk = max(res["blocked"])
        print(f"\n[observation={kind}]")
        print(
            f"  batched scan : best {best[0]:>12,.0f} world-steps/s (cpu use {best[1]:.2f}, "
            f"{best[0] / max(best[1], 1e-9):,.0f} per CPU-second), median {med:,.0f}"
        )
        print(
            f"  blocked scan : best {blk[0]:>12,.0f} world-steps/s (cpu use {blk[1]:.2f}, "
            f"{blk[0] / max(blk[1], 1e-9):,.0f} per CPU-second; blocks of {BLOCK} worlds)"
        )
        print(
            f"  batch_step   : best {call_best[0]:>12,.0f} world-steps/s (one Python call per "
            f"slot, all outputs materialised; cpu use {call_best[1]:.2f})"
        )
        print(
            f"  pettingzoo   :      {pz_rate:>12,.1f} world-steps/s (one world at a time; "
            f"cpu use {pz_cpu:.2f})"
        )
        top = max(best, blk)
        per_cpu = top[0] / max(top[1], 1e-9)
        pz_per_cpu = pz_rate / max(pz_cpu, 1e-9)
        print(
            f"  ratio        : best batched / pettingzoo = {top[0] / pz_rate:,.0f}x wall, "
            f"{per_cpu / pz_per_cpu:,.0f}x per CPU-second"
        )
        target = "met" if top[0] >= 1_000_000 else "NOT met"
        ratio_ok = "met" if top[0] / pz_rate >= 100 else "NOT met"
        print(f"  target 1,000,000 world-steps/s: {target}; target 100x (wall): {ratio_ok}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"\npeak resident memory: {peak / 1024:,.0f} MiB (ru_maxrss)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
