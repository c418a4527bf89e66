"""Stage: one 1064-px window through the network, per execution backend and precision.

For each backend (eager, inductor, openvino) x precision (float32, bfloat16) asked for, the
network is baked and compiled exactly as a worker does it (:func:`urst_dask.engine.forward`,
statistics from the window itself as the thumbnail), then timed: seconds per window (best
and median of ``--repeats``), the compilation time, and the PSNR against eager float32.
One method per process, so the peak RSS is that method's.  Networks without weights here
(adain, linearwct, msgnet) run with random weights (same architecture, same cost).

bf16 on a CPU without native bf16 (no AMX / AVX512-BF16) is emulated by torch (about 20x
slower) and ignored by OpenVINO (it runs float32); such combinations are skipped and recorded
as skipped unless ``--force-bf16``.

Run: flock -x /tmp/urst-cpu.lock python benchmarks/bench_window.py --method wct16x
     (johnson: --variant candy; --backends eager,openvino --precisions float32)
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import numpy as np
import torch
from common import record, weights_dir

from urst_dask import engine
from urst_dask.engine import backends, cache, precision
from urst_dask.models import METHODS, load_model
from urst_dask.preprocess import hwc_to_nchw, resize_center_crop, to_unit
from urst_dask.settings import Backend, ComputeOptions, Precision
from urst_dask.synthetic import demo_style, synthetic_block

RANDOM = {"adain": ("urst_dask.models.adain", "AdaIN"), "linearwct": ("urst_dask.models.linearwct", "LinearWct"),
          "msgnet": ("urst_dask.models.msgnet", "MsgNet")}


def build_model(method: str, variant: str | None):
    if method in RANDOM:
        import importlib

        mod, cls = RANDOM[method]
        return getattr(importlib.import_module(mod), cls)().freeze(), "random"
    return load_model(method, weights_dir(), variant), "pretrained"


def window_image(side: int, photo: str | None) -> np.ndarray:
    """A ``side`` x ``side`` float window: a photograph upscaled (bicubic) or the synthetic image."""
    if photo:
        from PIL import Image

        with Image.open(photo) as im:
            im = im.convert("RGB")
            scale = side / min(im.size)
            im = im.resize((max(side, round(im.width * scale)), max(side, round(im.height * scale))), Image.BICUBIC)
            return to_unit(np.asarray(im)[:side, :side])
    return to_unit(synthetic_block(0, 0, side, side))


def psnr(a: torch.Tensor, b: torch.Tensor) -> float | None:
    mse = torch.mean((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).item()
    return None if not np.isfinite(mse) else (float("inf") if mse == 0 else round(10 * np.log10(1.0 / mse), 2))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="wct16x", choices=sorted(METHODS))
    ap.add_argument("--variant", default=None, help="johnson style name (default candy), wct top level")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--window", type=int, default=1064)
    ap.add_argument("--backends", default="eager,inductor,openvino")
    ap.add_argument("--precisions", default="float32,bfloat16")
    ap.add_argument("--photo", default=None, help="a photograph as the window (default: the synthetic image)")
    ap.add_argument("--force-bf16", action="store_true", help="time bf16 even where it is emulated")
    ap.add_argument("--tag", default="", help="suffix of the results file name")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model, weights_kind = build_model(a.method, a.variant)
    model = model.to(memory_format=torch.channels_last)
    style_img = resize_center_crop(to_unit(demo_style(768)), 1024) if model.info.takes_style_image else None
    style = model.prepare_style(style_img)
    window = window_image(a.window, a.photo)
    pad = (-a.window) % model.info.size_multiple
    window = np.pad(window, ((0, pad), (0, pad), (0, 0)), mode="symmetric")
    x = hwc_to_nchw(window).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        _, stats = model.collect_stats(x, style)
    native_bf16 = precision.cpu_native_bf16()
    results: dict[str, dict] = {}
    ref = None
    for prec_name in a.precisions.split(","):
        prec = Precision.parse(prec_name, "precision")
        for b_name in a.backends.split(","):
            be = Backend.parse(b_name, "backend")
            name = f"{be.value}-{prec.value}"
            if prec is Precision.BFLOAT16 and not native_bf16 and not a.force_bf16:
                results[name] = {"skipped": "no native bf16 on this CPU (torch emulates it ~20x slower; "
                                            "OpenVINO ignores the hint and runs float32)"}
                print(f"{name:22s} skipped (no native bf16)")
                continue
            if be is Backend.OPENVINO and not backends.openvino_available():
                results[name] = {"skipped": "openvino not installed"}
                continue
            cache.clear()

            def run(prec=prec, be=be):
                return engine.forward(model, x, style, stats, compute=ComputeOptions(precision=prec, backend=be))

            t0 = time.perf_counter()
            y = run()  # compiles (compiled backends) and warms oneDNN
            first = time.perf_counter() - t0
            times = []
            for _ in range(a.repeats):
                t = time.perf_counter()
                run()
                times.append(time.perf_counter() - t)
            if be is Backend.EAGER and prec is Precision.FLOAT32:
                ref = y
            best, med = min(times), statistics.median(times)
            entry = {"seconds_per_window_best": round(best, 3), "seconds_per_window_median": round(med, 3),
                     "first_call_s": round(first, 2), "compile_s": round(sum(cache.COMPILE_SECONDS), 2),
                     "fell_back_to_eager": cache.compile_count("eager") > 0 and be is not Backend.EAGER,
                     "all": [round(t, 3) for t in times]}
            if ref is not None:
                entry["psnr_vs_eager_float32_db"] = psnr(y, ref)
                entry["max_abs_err_vs_eager_float32"] = float((y.clamp(0, 1) - ref.clamp(0, 1)).abs().max())
            results[name] = entry
            print(f"{name:22s} best {best:6.3f} s  median {med:6.3f} s / {a.window}-px window   "
                  f"compile {entry['compile_s']:5.1f} s   PSNR {entry.get('psnr_vs_eager_float32_db')} dB", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")
    record(f"window-{a.method}{a.tag}", {"load_average_at_end": [round(v, 1) for v in os.getloadavg()],
        "method": a.method, "variant": a.variant, "weights": weights_kind, "peak_rss_mb": round(peak, 1),
        "torch_threads": a.threads, "window": a.window, "padded_to": int(window.shape[0]),
        "content": a.photo or "synthetic", "native_bf16": native_bf16,
        "auto_backend": engine.auto_backend(a.method, torch.device("cpu"), Precision.FLOAT32).value,
        "results": results, "target_wct16x_s_per_window": 0.25 if a.method == "wct16x" else None,
        "reference_original_s_per_window": 8.6 if a.method == "wct16x" else None})


if __name__ == "__main__":
    main()
