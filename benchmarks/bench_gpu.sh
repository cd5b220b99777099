#!/usr/bin/env bash
# The GPU measurement of issue 14: the compiled training loops' throughput on one GPU against the
# number of worlds stepped at once, and the same machine's CPU at the default 256 worlds, in one
# run. Needs JAX with a GPU backend (pip install -e ".[cuda]"). Every report lands in $1;
# PYTHON names the interpreter (the project's venv, say), python3 by default.
#
#     PYTHON=.venv/bin/python bash benchmarks/bench_gpu.sh runs/gpu
set -uo pipefail
out=${1:?usage: bench_gpu.sh OUT_DIR}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
py=${PYTHON:-python3}
"$py" -c 'import jax, jaxlib; print("jax", jax.__version__, "jaxlib", jaxlib.__version__, jax.devices("gpu"))' \
  | tee -a "$out/gpu.txt" || exit 1
bench=("$py" benchmarks/bench_learning.py --throughput --chunks 2 --min-seconds 3)
# the order puts the headline figures first: whatever a time limit cuts off comes last
"${bench[@]}" --device gpu --preset paper --algos mappo --num-envs 256,4096,32768 \
  --json "$out/gpu_mappo_paper.json"
"${bench[@]}" --device gpu --preset paper --algos maddpg --num-envs 256,4096 \
  --json "$out/gpu_maddpg_paper.json"
"${bench[@]}" --device gpu --preset large --algos mappo --num-envs 32768 \
  --json "$out/gpu_mappo_large.json"
"${bench[@]}" --device cpu --preset paper --algos mappo,maddpg \
  --json "$out/cpu_paper.json"
