"""Stage: one 1064-px window through the network (the per-window cost that tiling multiplies).

Measures seconds per window (and megapixels per second of kept output, 1000 x 1000 per
window) for float32 in NCHW and channels_last memory formats and for bf16 autocast, the PSNR
of bf16 against float32, and this process's peak RSS.  One method per process, so the peak
RSS is that method's.  Networks without weights here (adain, linearwct, msgnet) run with
random weights (same architecture, same cost).

Run: python benchmarks/bench_window.py --method wct16x   (johnson: --variant mosaic)
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import resource

from common import record, weights_dir
from urst_dask.models import METHODS, load_model

RANDOM = {"adain": ("urst_dask.models.adain", "AdaIN"), "linearwct": ("urst_dask.models.linearwct", "LinearWct"),
          "msgnet": ("urst_dask.models.msgnet", "MsgNet")}


def build_model(method: str, variant: str | None):
    if method in RANDOM:
        import importlib

        mod, cls = RANDOM[method]
        return getattr(importlib.import_module(mod), cls)().freeze(), "random"
    return load_model(method, weights_dir(), variant), "pretrained"
from urst_dask.synthetic import demo_style, synthetic_block
from urst_dask.preprocess import hwc_to_nchw, resize_center_crop, to_unit


def timeit(fn, repeats: int) -> list[float]:
    fn()  # warm-up (oneDNN primitive creation)
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="wct16x", choices=sorted(METHODS))
    ap.add_argument("--variant", default=None, help="johnson style name (default candy), wct top level")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model, weights_kind = build_model(a.method, a.variant)
    style_img = resize_center_crop(to_unit(demo_style(768)), 1024) if model.info.takes_style_image else None
    style = model.prepare_style(style_img)
    window = to_unit(synthetic_block(0, 0, 1064, 1064))
    pad = (-1064) % model.info.size_multiple
    window = np.pad(window, ((0, pad), (0, pad), (0, 0)), mode="symmetric")
    with torch.inference_mode():
        _, stats = model.collect_stats(hwc_to_nchw(window), style)
    results = {}
    outputs = {}
    for name, fmt, dtype in (("float32-nchw", torch.contiguous_format, None),
                             ("float32-channels_last", torch.channels_last, None),
                             ("bfloat16-channels_last", torch.channels_last, torch.bfloat16)):
        m = model.to(memory_format=fmt)
        x = hwc_to_nchw(window).contiguous(memory_format=fmt)

        def run():
            with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
                outputs[name] = m(x, style, stats).float().clamp(0, 1)

        times = timeit(run, a.repeats)
        med = statistics.median(times)
        results[name] = {"seconds_per_window": round(med, 3), "mp_per_s": round(1.0 / med, 4),
                         "all": [round(t, 3) for t in times]}
        print(f"{name:24s} {med:6.2f} s / 1064 window  ({1.0 / med:.3f} MP/s of kept output)")
    ref = outputs["float32-channels_last"]
    mse = torch.mean((outputs["bfloat16-channels_last"] - ref) ** 2).item()
    # None: identical outputs (saturated) or non-finite ones (random weights can overflow)
    psnr = round(10 * np.log10(1.0 / mse), 2) if np.isfinite(mse) and mse > 0 else None
    results["bfloat16-channels_last"]["psnr_vs_float32_db"] = psnr
    print(f"bf16 vs float32 PSNR {psnr} dB" + (" (random weights: not meaningful)" if weights_kind == "random" else ""))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")
    record(f"window-{a.method}", {"method": a.method, "variant": a.variant, "weights": weights_kind,
                                  "peak_rss_mb": round(peak, 1), "torch_threads": a.threads, "window": 1064,
                                  "padded_to": window.shape[0], "results": results,
                                  "reference_original_s_per_window": 8.6 if a.method == "wct16x" else None})


if __name__ == "__main__":
    main()
