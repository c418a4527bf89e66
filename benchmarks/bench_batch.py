"""Stage: several windows per network call (``--batch``) against one.

Runs the real window kernel (:func:`urst_dask.tiling.stylize_windows`: padding, intensity
mapping, the network, crop and quantization) on ``B`` neighbouring 1064-px windows per call
and reports seconds per window and the memory peak for each ``B``: on a GPU
``torch.cuda.max_memory_allocated`` (reset per batch size), on the CPU this process's peak RSS
(monotone, so batch sizes run in increasing order).  Batching helps when one window leaves
the device under-used (GPUs); on a CPU, one window already fills every core.

    python benchmarks/bench_batch.py --method wct16x --batches 1 2 4
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np
import torch
from common import record, weights_dir

from urst_dask.engine import ModelSpec, get_model
from urst_dask.preprocess import hwc_to_nchw, resize_center_crop, to_unit
from urst_dask.settings import ComputeOptions, Precision, StyleOptions
from urst_dask.synthetic import demo_style, synthetic_block
from urst_dask.tiling import WindowJob, finish, stylize_windows

WINDOW = 1064


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="wct16x")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--precision", default="float32", choices=[p.value for p in Precision])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (CPU)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = get_model(ModelSpec(a.method, str(weights_dir())))
    device = model.device
    style_img = resize_center_crop(to_unit(demo_style(768)), 1024).to(device) if model.info.takes_style_image else None
    style = model.prepare_style(style_img)
    most = max(a.batches)
    strip = synthetic_block(0, 0, WINDOW, WINDOW * most)
    windows = [strip[:, i * WINDOW : (i + 1) * WINDOW] for i in range(most)]
    with torch.inference_mode():
        _, stats = model.collect_stats(hwc_to_nchw(to_unit(windows[0]), device), style)
    job = WindowJob(StyleOptions(), ComputeOptions(precision=Precision.parse(a.precision, "precision")), "uint8")
    rows, reference = [], None
    for b in sorted(a.batches):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for rep in range(a.repeats + 1):  # first call warms up (kernel selection)
            t = time.perf_counter()
            out = stylize_windows(windows[:b], model, style, stats, job, batch=b)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if rep:
                times.append((time.perf_counter() - t) / b)
        first = finish(out[0], job, 3).astype(np.int16)  # in the output dtype, as written
        if reference is None:
            reference = first
        diff = int(np.abs(first - reference).max())
        med = statistics.median(times)
        row = {"batch": b, "seconds_per_window": round(med, 3), "mp_per_s": round(1.0 / med, 3),
               "all": [round(t, 3) for t in times], "peak_mb": round(_peak_mb(device), 1),
               "max_diff_vs_batch_1": diff}
        rows.append(row)
        print(f"batch {b:2d}: {med:6.3f} s / window, {1.0 / med:6.3f} MP/s, peak {row['peak_mb']:.0f} MiB, "
              f"max |diff| vs batch 1: {diff}")
    record(f"batch-{a.method}-{device.type}", {"method": a.method, "precision": a.precision, "device": str(device),
                                               "peak_kind": "cuda max_memory_allocated" if device.type == "cuda"
                                               else "process peak RSS (monotone)", "window": WINDOW,
                                               "torch_threads": a.threads, "results": rows})


if __name__ == "__main__":
    main()
