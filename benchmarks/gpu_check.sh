#!/usr/bin/env bash
# GPU readiness check, in one go (< 8 minutes on one modern GPU):
#   1. one wct16x window (1064 px, padded 1072) per backend (eager, inductor) x precision
#      (float32, bfloat16, float16) x batch (1, 2, 4): seconds per window, PSNR against eager float32,
#      torch.cuda.max_memory_allocated;
#   2. the whole pipeline (1 worker per GPU, the default backend/precision picked by auto) on synthetic
#      images of 4000^2, 16000^2 and 32000^2 (1.02 GP): wall time, MP/s, the worker's
#      torch.cuda.max_memory_allocated.
# Results: benchmarks/results/gpu-check.json (with the machine description).
# On a machine without CUDA it prints one line saying so and exits 0.
#
# Usage: bash benchmarks/gpu_check.sh            (env: URST_DASK_WEIGHTS, GPU_CHECK_SIZES="4000 16000 32000")
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python}
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu_check: skipped - no CUDA device visible to torch on this machine (nothing measured)"
  exit 0
fi
export GPU_CHECK_SIZES=${GPU_CHECK_SIZES:-"4000 16000 32000"}
exec timeout 470 "$PY" - <<'EOF'
import os, time, tempfile, shutil
import numpy as np
import torch
from common import record
from urst_dask import engine
from urst_dask.engine import cache
from urst_dask.preprocess import hwc_to_nchw, resize_center_crop, to_unit
from urst_dask.settings import Backend, Precision
from urst_dask.synthetic import demo_style, synthetic_block

t_start = time.perf_counter()
dev = torch.device("cuda")
out = {"gpu": torch.cuda.get_device_name(0), "windows": {}, "pipeline": {}}
model = engine.get_model(engine.ModelSpec("wct16x", str(os.environ.get("URST_DASK_WEIGHTS", "")) or
                                          str(__import__("common").weights_dir()), None, "cuda"))
style = model.prepare_style(resize_center_crop(to_unit(demo_style(768)), 1024).to(dev))
win = np.pad(to_unit(synthetic_block(0, 0, 1064, 1064)), ((0, 8), (0, 8), (0, 0)), mode="symmetric")
x1 = hwc_to_nchw(win, dev).contiguous(memory_format=torch.channels_last)
with torch.inference_mode():
    _, stats = model.collect_stats(x1, style)
ref = None
for prec in (Precision.FLOAT32, Precision.BFLOAT16, Precision.FLOAT16):
    for backend in (Backend.EAGER, Backend.INDUCTOR):
        for batch in (1, 2, 4):
            x = x1.repeat(batch, 1, 1, 1).contiguous(memory_format=torch.channels_last)
            cache.clear()
            torch.cuda.reset_peak_memory_stats()
            t = time.perf_counter()
            y = engine.forward(model, x, style, stats, precision=prec, backend=backend)
            torch.cuda.synchronize()
            first = time.perf_counter() - t
            times = []
            for _ in range(5):
                t = time.perf_counter()
                engine.forward(model, x, style, stats, precision=prec, backend=backend)
                torch.cuda.synchronize()
                times.append((time.perf_counter() - t) / batch)
            if ref is None:
                ref = y[:1].clamp(0, 1)
            mse = torch.mean((y[:1].clamp(0, 1) - ref) ** 2).item()
            key = f"{backend.value}-{prec.value}-b{batch}"
            out["windows"][key] = {"s_per_window": round(min(times), 4), "first_call_s": round(first, 2),
                                   "psnr_vs_eager_float32_db": None if mse == 0 else round(10 * np.log10(1 / mse), 2),
                                   "max_memory_allocated_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
                                   "fell_back": cache.compile_count("eager") > 0 and backend is not Backend.EAGER}
            print(key, out["windows"][key], flush=True)

import urst_dask
from urst_dask.pipeline.synthetic import synthetic_array

def worker_peak():
    import torch
    return torch.cuda.max_memory_allocated() / 2**20

tmp = tempfile.mkdtemp(prefix="gpu-check-")
style_img = demo_style(768)
for side in (int(s) for s in os.environ["GPU_CHECK_SIZES"].split()):
    if time.perf_counter() - t_start > 300 and side > 16000:
        out["pipeline"][str(side)] = {"skipped": "time budget (8 minutes) would be exceeded"}
        continue
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=torch.cuda.device_count(), threads_per_worker=2, dashboard_address=None) as cl, Client(cl) as c:
        arr = synthetic_array((side, side), seed=0, chunk=1000)
        t = time.perf_counter()
        urst_dask.stylize(arr, style_img, os.path.join(tmp, f"s{side}.zarr"), client=c, device="cuda",
                          backend="auto", precision="auto", overwrite=True)
        wall = time.perf_counter() - t
        peaks = c.run(worker_peak)
    out["pipeline"][str(side)] = {"wall_s": round(wall, 1), "mp_per_s": round(side * side / 1e6 / wall, 2),
                                  "worker_max_memory_allocated_mb": {k: round(v, 1) for k, v in peaks.items()}}
    print(side, out["pipeline"][str(side)], flush=True)
    shutil.rmtree(os.path.join(tmp, f"s{side}.zarr"), ignore_errors=True)
shutil.rmtree(tmp, ignore_errors=True)
out["total_s"] = round(time.perf_counter() - t_start, 1)
record("gpu-check", out)
EOF
