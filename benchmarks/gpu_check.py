"""GPU readiness check, in one go (< 8 minutes on one modern GPU; `gpu_check.sh` runs it).

1. One wct16x window (``--window`` px, padded to the network's size multiple: 1064 -> 1072) per
   backend x precision x batch: seconds per window, first-call seconds (compilation), PSNR
   against eager float32, ``torch.cuda.max_memory_allocated`` (None off CUDA), and whether a
   compiled backend fell back to eager.
2. The whole pipeline (one worker per GPU, each pinned to its GPU; ``backend`` and ``precision``
   ``auto``) on synthetic images of ``--sizes`` (default 4000^2, 16000^2 and 32000^2 = 1.02 GP):
   wall time, MP/s, each worker's ``torch.cuda.max_memory_allocated`` and peak RSS.  Sizes
   above 16000 are skipped once 300 s have gone (the 8-minute budget).

Results: ``benchmarks/results/<--out-name>.json`` (``$URST_BENCH_RESULTS`` moves the folder).
``--device cpu`` is the dry run that proves the script works without a GPU: its figures are
not GPU figures and must be recorded under another name (``gpu_check.sh`` does so).

Run: python benchmarks/gpu_check.py  (see --help)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import shutil
import tempfile
import time
from typing import Any, Iterator

BUDGET_S = 480  # the 8 minutes; gpu_check.sh kills the run at 470 s
LARGE_AFTER_S = 300  # sizes above LARGE_SIDE are skipped once this much time has gone
LARGE_SIDE = 16000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--method", default="wct16x")
    ap.add_argument("--window", type=int, default=1064, help="window side (padded to the network's size multiple)")
    ap.add_argument("--sizes", type=int, nargs="*", default=[4000, 16000, 32000], help="pipeline image sides")
    ap.add_argument("--backends", nargs="+", default=["eager", "inductor"])
    ap.add_argument("--precisions", nargs="+", default=["float32", "bfloat16", "float16"])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per window configuration")
    ap.add_argument("--threads-per-worker", type=int, default=2)
    ap.add_argument("--out-name", default="gpu-check", help="result name (benchmarks/common.record)")
    ap.add_argument("--note", default=None, help="a line recorded with the results (and printed)")
    return ap.parse_args(argv)


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mb(device: Any) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None


def windows(a: argparse.Namespace, device: Any) -> dict[str, dict[str, Any]]:
    """Seconds per window, PSNR and CUDA peak per backend x precision x batch."""
    import numpy as np
    import torch
    from common import weights_dir

    from urst_dask import engine
    from urst_dask.engine import cache
    from urst_dask.preprocess import hwc_to_nchw, resize_center_crop, to_unit
    from urst_dask.settings import Backend, ComputeOptions, DeviceKind, Precision
    from urst_dask.synthetic import demo_style, synthetic_block

    spec = engine.ModelSpec(a.method, str(weights_dir()), None, DeviceKind.parse(a.device, "device"))
    model = engine.get_model(spec)
    style = model.prepare_style(resize_center_crop(to_unit(demo_style(768)), 1024).to(device))
    m = model.info.size_multiple
    pad = -(-a.window // m) * m - a.window
    win = np.pad(to_unit(synthetic_block(0, 0, a.window, a.window)), ((0, pad), (0, pad), (0, 0)), mode="symmetric")
    x1 = hwc_to_nchw(win, device)
    with torch.inference_mode():
        _, stats = model.collect_stats(x1, style)
        ref = engine.forward(model, x1, style, stats, compute=ComputeOptions(device=a.device)).clamp(0, 1)
    _sync(device)
    rows: dict[str, dict[str, Any]] = {}
    for prec in (Precision.parse(p, "precision") for p in a.precisions):
        for backend in (Backend.parse(b, "backend") for b in a.backends):
            for batch in a.batches:
                compute = ComputeOptions(device=a.device, precision=prec, backend=backend, batch=batch)
                x = x1.repeat(batch, 1, 1, 1).contiguous(memory_format=torch.channels_last)
                cache.clear()
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                t = time.perf_counter()
                y = engine.forward(model, x, style, stats, compute=compute)
                _sync(device)
                first = time.perf_counter() - t
                times = []
                for _ in range(a.repeats):
                    t = time.perf_counter()
                    engine.forward(model, x, style, stats, compute=compute)
                    _sync(device)
                    times.append((time.perf_counter() - t) / batch)
                mse = torch.mean((y[:1].clamp(0, 1) - ref) ** 2).item()
                key = f"{backend.value}-{prec.value}-b{batch}"
                rows[key] = {"s_per_window": round(min(times), 4), "first_call_s": round(first, 2),
                             "psnr_vs_eager_float32_db": None if mse == 0 else round(10 * math.log10(1 / mse), 2),
                             "max_memory_allocated_mb": _peak_mb(device),
                             "fell_back": backend is not Backend.EAGER and cache.compile_count("eager") > 0}
                print(key, rows[key], flush=True)
    return rows


@contextlib.contextmanager
def _client(device: str, threads: int) -> Iterator[Any]:
    """A client of a fresh local cluster as the pipeline starts one (its worker environment and
    plugins), but with one worker process per GPU, each pinned to its GPU
    (``CUDA_VISIBLE_DEVICES``, with a ``GPU`` resource; a plain ``LocalCluster`` would run every
    worker on GPU 0), and one worker off CUDA."""
    import dask
    import torch
    from distributed import Nanny, Scheduler, SpecCluster
    from distributed.system import MEMORY_LIMIT

    from urst_dask.pipeline.cluster import NO_PROFILER, _worker_environ, local_client
    from urst_dask.settings import ClusterOptions

    gpus = torch.cuda.device_count() if device == "cuda" else 0
    envs: list[dict[str, str]] = [{"CUDA_VISIBLE_DEVICES": str(i)} for i in range(gpus)] or [{}]
    opts = {"nthreads": threads, "host": "127.0.0.1", "silence_logs": logging.CRITICAL,
            "memory_limit": MEMORY_LIMIT // len(envs)}
    gpu = {"resources": {"GPU": 1}} if gpus else {}  # as README's several-GPU setup: dask worker --resources GPU=1
    workers = {f"w{i}": {"cls": Nanny, "options": {**opts, **gpu, "env": env}} for i, env in enumerate(envs)}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": _worker_environ(), **NO_PROFILER}):
        cluster = SpecCluster(workers=workers, silence_logs=logging.CRITICAL, scheduler={
            "cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard_address": None}})
    with cluster, local_client(cluster, ClusterOptions(workers=len(envs), threads_per_worker=threads)) as c:
        yield c


def pipeline(a: argparse.Namespace, t_start: float) -> dict[str, dict[str, Any]]:
    """Wall time, MP/s and per-worker peaks of the whole pipeline per image size."""
    from common import weights_dir

    import urst_dask
    from urst_dask.diagnostics import cuda_peak_per_worker, peak_rss_per_worker
    from urst_dask.pipeline.synthetic import synthetic_array
    from urst_dask.synthetic import demo_style

    rows: dict[str, dict[str, Any]] = {}
    tmp = tempfile.mkdtemp(prefix="gpu-check-")
    style_img = demo_style(768)
    try:
        for side in a.sizes:
            if time.perf_counter() - t_start > LARGE_AFTER_S and side > LARGE_SIDE:
                rows[str(side)] = {"skipped": f"time budget ({BUDGET_S // 60} minutes) would be exceeded"}
                print(side, rows[str(side)], flush=True)
                continue
            out = os.path.join(tmp, f"s{side}.zarr")
            with _client(a.device, a.threads_per_worker) as c:
                arr = synthetic_array((side, side), seed=0, chunk=1000)
                t = time.perf_counter()
                urst_dask.stylize(arr, style_img, out, client=c, method=a.method, weights=str(weights_dir()),
                                  device=a.device, backend="auto", precision="auto", overwrite=True)
                wall = time.perf_counter() - t
                cuda, rss = cuda_peak_per_worker(c), peak_rss_per_worker(c)
            rows[str(side)] = {"wall_s": round(wall, 2), "mp_per_s": round(side * side / 1e6 / wall, 3),
                               "worker_max_memory_allocated_mb": cuda, "worker_peak_rss_mb": rss}
            print(side, rows[str(side)], flush=True)
            shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    t_start = time.perf_counter()
    import torch
    from common import record

    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: --device cuda, but torch sees no CUDA device; use --device cpu for a dry run")
    device = torch.device("cuda", 0) if a.device == "cuda" else torch.device("cpu")
    if a.note:
        print(a.note, flush=True)
    out: dict[str, Any] = {"device": a.device, "gpu": torch.cuda.get_device_name(0) if a.device == "cuda" else None,
                           "gpus": torch.cuda.device_count() if a.device == "cuda" else 0, "note": a.note,
                           "method": a.method, "window": a.window, "sizes": a.sizes, "windows": windows(a, device)}
    out["pipeline"] = pipeline(a, t_start)
    out["total_s"] = round(time.perf_counter() - t_start, 1)
    print(f"total {out['total_s']} s", flush=True)
    record(a.out_name, out)


if __name__ == "__main__":  # the pipeline starts worker processes, which import this module again
    main()
