"""Ray's overhead on a sweep: the same small grid run sequentially and on a local Ray.

Both modes run ``chainsense sweep`` in a fresh process (so each pays its own JAX start-up and
compilation; the Ray mode also starts and stops Ray), with new output directories. Prints the
wall time of each, the sum and mean of the runs' own wall times, the CPU-seconds of the whole
driver process (Ray's workers are not its waited-for children, so the runs' own CPU-seconds
are summed as well), the load average around each, and the ratio
Ray / sequential of the sweep wall time (the target: at most 1.10 on 2 cores).

    .venv/bin/python benchmarks/bench_sweep_overhead.py                # 4 trainings + 2 baselines
    .venv/bin/python benchmarks/bench_sweep_overhead.py --steps 40000  # longer runs
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEC = """
[sweep]
name = "overhead"
scenarios = ["small"]
policies = ["maddpg", "greedy"]
seeds = 2
episodes = 10
[sweep.grid]
num_mts = [1, 2]
[sweep.budget]
steps = {steps}
[train]
num_envs = 64
warmup_steps = 1000
chunk_iters = 20
buffer_size = 20000
"""


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_mode(spec: Path, out: Path, sequential: bool) -> dict[str, float]:
    """One sweep in a fresh process; its wall time, CPU-seconds and the runs' own times."""
    cmd = [sys.executable, "-m", "chainsense", "sweep", str(spec), "--out", str(out)]
    if sequential:
        cmd.append("--sequential")
    load0 = os.getloadavg()[0]
    cpu0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    runs = [json.loads(p.read_text()) for p in (out / "runs").rglob("result.json")]
    per_run = [r["wall_seconds"] for r in runs]
    return {
        "wall": wall,
        "cpu": cpu,
        "runs": len(runs),
        "run_sum": sum(per_run),
        "run_mean": sum(per_run) / len(per_run),
        "run_cpu": sum(r["cpu_seconds"] for r in runs),
        "load": (load0 + os.getloadavg()[0]) / 2,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=20_000, help="env steps per training run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.toml"
        spec.write_text(SPEC.format(steps=args.steps), encoding="utf-8")
        seq = run_mode(spec, Path(tmp) / "sequential", sequential=True)
        ray_ = run_mode(spec, Path(tmp) / "ray", sequential=False)
    print(
        f"{'mode':<12}{'wall s':>9}{'driver CPU s':>14}{'runs CPU s':>12}{'runs':>6}"
        f"{'sum of runs s':>15}{'mean run s':>12}{'load':>7}"
    )
    for name, m in (("sequential", seq), ("local Ray", ray_)):
        print(
            f"{name:<12}{m['wall']:>9.1f}{m['cpu']:>14.1f}{m['run_cpu']:>12.1f}{m['runs']:>6}"
            f"{m['run_sum']:>15.1f}{m['run_mean']:>12.1f}{m['load']:>7.2f}"
        )
    print(f"Ray / sequential wall time: {ray_['wall'] / seq['wall']:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
