"""The compiled training loop's throughput: ``bench_learning.py --throughput``, kept apart from
its training-and-evaluation mode. Env steps and updates per second, updates included and
compilation excluded, over algorithms, device counts and numbers of worlds stepped at once."""

from __future__ import annotations

import dataclasses
import resource
import time
from typing import Any

import jax

from chainsense.errors import ChainsenseError
from chainsense.marl import algos, train
from chainsense.marl.config import TrainConfig
from chainsense.sim.params import WorldParams


def throughput(
    cfg: TrainConfig, params: WorldParams, chunks: int, min_seconds: float = 0.0
) -> dict[str, float]:
    """Env steps/s and updates/s of the compiled loop, updates included, compilation excluded:
    ``chunks`` chunks at least, and more until ``min_seconds`` have passed (a fast device runs
    a chunk in milliseconds, too short to time alone)."""
    carry = algos.init_carry(jax.random.PRNGKey(0), cfg, params)
    chunk = algos.make_chunk(cfg, params)
    per_chunk = algos.steps_per_chunk(cfg)
    fill = 0 if cfg.algo == "mappo" else -(-train.min_fill(cfg) // per_chunk)
    for _ in range(fill + 1):  # compile, and past the replay warm-up so every chunk updates
        carry, _ = chunk(carry)
    jax.block_until_ready(carry)
    u0, t0, c0 = int(carry.learner.updates), time.perf_counter(), time.process_time()
    done = 0
    while done < chunks or time.perf_counter() - t0 < min_seconds:
        carry, _ = chunk(carry)
        done += 1
        if done >= chunks:  # the clock is read only once the work is done
            jax.block_until_ready(carry)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "env_steps_s": done * per_chunk / dt,
        "updates_s": (int(carry.learner.updates) - u0) / dt,
        # CPU seconds of this process: on a shared machine the steady figure, and wall / CPU
        # says how many cores the compiled loop kept busy
        "env_steps_cpu_s": done * per_chunk / cpu,
        "cores_used": cpu / dt,
    }


def run_throughput(
    base: TrainConfig,
    params: WorldParams,
    algo_names: list[str],
    chunks: int,
    device_counts: tuple[int, ...] = (1,),
    world_counts: tuple[int, ...] = (),
    min_seconds: float = 0.0,
) -> dict[str, Any]:
    """Throughput of every algorithm's compiled loop on every device count and every number of
    worlds (keys ``algo``, ``algo/W`` for W worlds of a ``world_counts`` sweep, ``@N`` after
    either for N devices). A sweep keeps the base config's env steps per chunk, so that a
    chunk of many worlds is not hundreds of times longer than one of few."""
    out = {}
    for algo in algo_names:
        for worlds in world_counts or (base.num_envs,):
            iters = max(1, round(base.chunk_iters * base.num_envs / worlds))
            for n in device_counts:
                try:
                    cfg = dataclasses.replace(
                        base, algo=algo, devices=n, num_envs=worlds, chunk_iters=iters
                    )
                except ChainsenseError as err:
                    raise SystemExit(f"--num-envs {worlds}: {err}") from err
                t = throughput(cfg, params, chunks, min_seconds)
                name = algo + (f"/{worlds}" if world_counts else "") + (f"@{n}" if n > 1 else "")
                out[name] = t | {"num_envs": cfg.num_envs, "devices": n}
                print(
                    f"{name}: {t['env_steps_s']:,.0f} env steps/s, {t['updates_s']:,.1f} "
                    f"updates/s (updates included, compilation excluded, {cfg.num_envs} worlds "
                    f"on {n} device(s)); {t['env_steps_cpu_s']:,.0f} env steps per CPU second, "
                    f"{t['cores_used']:.2f} cores",
                    flush=True,
                )
    return out


def peak_mb() -> float:
    """Peak resident memory of this process in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def device_peak_mb() -> float | None:
    """Peak memory the JAX allocator held on the default device in MB, where the device reports
    it (GPUs do; a CPU's memory is the process's peak, and newer JAX reports 0 for it)."""
    device = jax.devices()[0]
    peak = (device.memory_stats() or {}).get("peak_bytes_in_use")
    return None if device.platform == "cpu" or peak is None else peak / 2**20
