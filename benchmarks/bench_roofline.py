"""How far each speed target is from what this CPU can do at all: a compute roofline.

Counts the floating-point operations of one window of a method's network, and of its
thumbnail statistics pass, with torch's ``FlopCounterMode`` (every convolution and matrix
product; element-wise work is not counted, so these are lower bounds), measures the CPU's
attainable float32 rate (the best of large matrix products through MKL and oneDNN, the best a
convolution can hope for), and divides: the least time a window, a thumbnail pass, an 8-MP photograph and a
gigapixel can take here, whatever the backend.  It then times the window through eager and
OpenVINO (when installed) to say what fraction of that ceiling each reaches.  With
``--precisions float32,bfloat16`` on a CPU that computes bf16 natively (AVX512-BF16 or AMX), the
bf16 ceiling is a bf16 matrix product's rate, and the windows are timed at both precisions.

    flock -x /tmp/urst-cpu.lock python benchmarks/bench_roofline.py --method wct16x
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch
from common import record, weights_dir
from torch.utils.flop_counter import FlopCounterMode

from urst_dask import engine
from urst_dask.engine import backends, cache
from urst_dask.engine.precision import cpu_native_bf16
from urst_dask.models import load_model
from urst_dask.preprocess import hwc_to_nchw, resize_center_crop, to_unit
from urst_dask.settings import Backend, ComputeOptions, Precision
from urst_dask.synthetic import demo_style, synthetic_block


def _best_rate(fn, flop: float, seconds: float) -> float:
    fn()
    best, t_end = math.inf, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return flop / best / 1e9


def matmul_rate(side: int, seconds: float, dtype: torch.dtype = torch.float32) -> float:
    """Best GFLOP/s of ``side``-square ``dtype`` matrix products over about ``seconds``."""
    a, b = torch.randn(side, side).to(dtype), torch.randn(side, side).to(dtype)
    return _best_rate(lambda: torch.mm(a, b), 2 * side**3, seconds)


def conv1x1_rate(channels: int, side: int, seconds: float, dtype: torch.dtype = torch.float32) -> float:
    """Best GFLOP/s of a channels-last 1x1 convolution (a matrix product through oneDNN, which
    torch's float32 ``mm`` does not use: on an AMD CPU its MKL path is the slower of the two)."""
    x = torch.randn(1, channels, side, side).to(dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(channels, channels, 1, 1).to(dtype).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        return _best_rate(lambda: torch.nn.functional.conv2d(x, w), 2 * channels**2 * side**2, seconds)


def attainable(dtype: torch.dtype) -> float:
    """The best ``dtype`` GFLOP/s of the CPU's matrix-product libraries (MKL and oneDNN)."""
    return max(matmul_rate(2048, 4.0, dtype), matmul_rate(4096, 6.0, dtype), conv1x1_rate(1024, 64, 4.0, dtype))


def counted(fn) -> tuple[float, object]:
    """(GFLOP of the matrix products and convolutions ``fn`` runs, its result)."""
    with FlopCounterMode(display=False) as counter:
        out = fn()
    return counter.get_total_flops() / 1e9, out


def best_time(fn, repeats: int) -> float:
    fn()  # compiles (a compiled backend) and warms oneDNN
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def windows_of(h: int, w: int, stride: int) -> int:
    return math.ceil(h / stride) * math.ceil(w / stride)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="wct16x")
    ap.add_argument("--variant", default=None)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--window", type=int, default=1072, help="the padded window side the network runs")
    ap.add_argument("--thumb", default="1024x1820", help="HxW of the thumbnail pass (16:9 at 1024)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--backends", default="eager,openvino")
    ap.add_argument("--precisions", default="float32", help="comma-separated: float32,bfloat16")
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = load_model(a.method, weights_dir(), a.variant).to(memory_format=torch.channels_last)
    style_img = resize_center_crop(to_unit(demo_style(768)), 1024) if model.info.takes_style_image else None
    style = model.prepare_style(style_img)
    x = hwc_to_nchw(to_unit(synthetic_block(0, 0, a.window, a.window))).contiguous(memory_format=torch.channels_last)
    th, tw = (int(v) for v in a.thumb.split("x"))
    thumb = hwc_to_nchw(to_unit(synthetic_block(0, 0, th, tw))).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        thumb_gflop, (_, stats) = counted(lambda: model.collect_stats(thumb, style))
        window_gflop, _ = counted(lambda: engine.forward(model, x, style, stats,
                                                          compute=ComputeOptions(backend=Backend.EAGER)))
    rates = {"float32": attainable(torch.float32)}
    precisions = [Precision.parse(p, "precisions") for p in a.precisions.split(",")]
    if Precision.BFLOAT16 in precisions:
        if cpu_native_bf16():
            rates["bfloat16"] = attainable(torch.bfloat16)
        else:
            print("  bfloat16 skipped: this CPU does not compute bf16 natively (no avx512_bf16 / amx_bf16)")
            precisions.remove(Precision.BFLOAT16)
    rate = rates["float32"]
    floor_window = window_gflop / rate
    floor_thumb = thumb_gflop / rate
    print(f"{a.method}: {window_gflop:.1f} GFLOP per {a.window}-px window, {thumb_gflop:.1f} GFLOP per {a.thumb} "
          f"thumbnail pass; attainable " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in rates.items())
          + f" ({a.threads} threads)")
    print(f"  float32 floor: {floor_window:.2f} s per window, {floor_thumb:.2f} s per thumbnail pass")
    if "bfloat16" in rates:
        print(f"  bfloat16 floor: {window_gflop / rates['bfloat16']:.3f} s per window")
    measured: dict[str, dict] = {}
    for name in a.backends.split(","):
        be = Backend.parse(name, "backend")
        for prec in precisions:
            key = name if prec is Precision.FLOAT32 else f"{name}-{prec.value}"
            if be is Backend.OPENVINO and not backends.openvino_available():
                measured[key] = {"skipped": "openvino not installed"}
                continue
            cache.clear()
            opts = ComputeOptions(backend=be, precision=prec)
            with torch.inference_mode():
                s = best_time(lambda opts=opts: engine.forward(model, x, style, stats, compute=opts), a.repeats)
            floor = window_gflop / rates[prec.value]
            measured[key] = {"seconds_per_window_best": round(s, 3), "gflop_per_s": round(window_gflop / s, 1),
                             "fraction_of_attainable": round(floor / s, 3)}
            print(f"  {key:18s} {s:6.3f} s per window = {window_gflop / s:6.1f} GFLOP/s, "
                  f"{100 * floor / s:.0f} % of attainable {prec.value}")
    thumb_per_px = floor_thumb / (th * tw)  # the pass is convolutions: its cost scales with the pixels
    photo = windows_of(2160, 3840, 1000) * floor_window + 1024 * 1820 * thumb_per_px
    giga = windows_of(25000, 40000, 1000) * floor_window + 1024 * 1638 * thumb_per_px
    floors = {"window_s": round(floor_window, 3), "thumbnail_pass_s": round(floor_thumb, 3),
              "photo_3840x2160_network_s": round(photo, 1), "gigapixel_network_min": round(giga / 60, 1)}
    needed = {"window_0.25_s_gflop_per_s": round(window_gflop / 0.25, 1),
              "photo_8x_of_55_s_network_budget_s": round(55.0 / 8, 2),
              "gigapixel_20_min_gflop_per_s": round(windows_of(25000, 40000, 1000) * window_gflop / 1200, 1)}
    print(f"  network floors: 3840x2160 photograph {photo:.1f} s (8x the original's 55 s is {55 / 8:.1f} s); "
          f"gigapixel {giga / 60:.1f} min (target 20)")
    for k, v in rates.items():
        print(f"  a 0.25-s window needs {window_gflop / 0.25:.0f} GFLOP/s, {window_gflop / 0.25 / v:.2f}x this CPU's {k}")
    record(f"roofline-{a.method}{a.tag}", {
        "method": a.method, "threads": a.threads, "window": a.window, "thumbnail": a.thumb,
        "gflop_per_window": round(window_gflop, 2), "gflop_per_thumbnail_pass": round(thumb_gflop, 2),
        "attainable_float32_gflop_per_s": round(rate, 1),
        "attainable_bfloat16_gflop_per_s": round(rates["bfloat16"], 1) if "bfloat16" in rates else None,
        "bfloat16_window_floor_s": round(window_gflop / rates["bfloat16"], 3) if "bfloat16" in rates else None,
        "floors": floors, "targets_need": needed,
        "measured": measured, "load_average_at_end": [round(v, 1) for v in os.getloadavg()],
        "note": "FLOPs count convolutions and matrix products only (FlopCounterMode), so every floor is a lower bound",
    })


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
