#!/usr/bin/env bash
# GPU readiness check, in one go (< 8 minutes on one modern GPU): runs gpu_check.py (see its docstring):
#   1. one wct16x window (1064 px, padded 1072) per backend (eager, inductor) x precision
#      (float32, bfloat16, float16) x batch (1, 2, 4): seconds per window, PSNR against eager float32,
#      torch.cuda.max_memory_allocated;
#   2. the whole pipeline (1 worker per GPU, backend/precision auto) on synthetic images of 4000^2,
#      16000^2 and 32000^2 (1.02 GP): wall time, MP/s, each worker's torch.cuda.max_memory_allocated.
# Results: benchmarks/results/gpu-check.json (with the machine description).
# On a machine without CUDA it prints one line saying so and exits 0.
# GPU_CHECK_DRY_RUN=1 runs the same script on the CPU at tiny sizes instead (a minute on 2 cores), to
# prove it works without a GPU; recorded as gpu-check-dry-run-cpu.json, never as a GPU figure.
#
# Usage: bash benchmarks/gpu_check.sh      (env: URST_DASK_WEIGHTS, GPU_CHECK_SIZES="4000 16000 32000",
#                                           GPU_CHECK_DRY_RUN=1, URST_BENCH_RESULTS=<results folder>)
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python}
if [ "${GPU_CHECK_DRY_RUN:-0}" = "1" ]; then
  exec timeout 470 "$PY" gpu_check.py --device cpu --window 64 --sizes 256 --backends eager \
    --precisions float32 bfloat16 --batches 1 2 --repeats 2 --threads-per-worker 1 \
    --out-name gpu-check-dry-run-cpu --note "gpu_check: dry run on CPU: figures are not GPU figures"
fi
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu_check: skipped - no CUDA device visible to torch on this machine (nothing measured)"
  exit 0
fi
# shellcheck disable=SC2086  # GPU_CHECK_SIZES is a list of numbers
exec timeout 470 "$PY" gpu_check.py --device cuda --sizes ${GPU_CHECK_SIZES:-4000 16000 32000}
