"""Eager reflection-padded convolutions: PyTorch's reflection pad (a full copy of each map)
against the border route of :func:`urst_dask.models.layers.reflect_conv` (a zero-padded
convolution whose border is recomputed from thin strips), side by side in one process,
alternated round by round.

Timed: the thumbnail statistics pass (eager in every run, whatever the window backend) on a
real photograph resized to ``--thumb``, and one eager window per method.  The outputs of the
two routes are compared (max abs difference).  Threads: ``--threads`` (2, as a worker).

Run: flock -x /tmp/urst-cpu.lock python benchmarks/bench_reflect_conv.py --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from common import record, weights_dir

from urst_dask import engine
from urst_dask.models import layers, load_model
from urst_dask.preprocess import hwc_to_nchw, resize_center_crop, to_unit
from urst_dask.settings import Backend, ComputeOptions, Precision

EAGER = ComputeOptions(backend=Backend.EAGER, precision=Precision.FLOAT32)
SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"


@contextlib.contextmanager
def route(name: str):
    """``pad``: force PyTorch's reflection pad; ``border``: the shipped behaviour."""
    original = layers._border_fix_applies
    if name == "pad":
        layers._border_fix_applies = lambda *a: False  # type: ignore[assignment]
    try:
        yield
    finally:
        layers._border_fix_applies = original  # type: ignore[assignment]


def photo(h: int, w: int) -> np.ndarray:
    from PIL import Image

    with Image.open(SHARED / "content" / "cornell.jpg") as im:
        return np.asarray(im.convert("RGB").resize((w, h), Image.BICUBIC), dtype=np.float32) / 255


def style_tensor() -> torch.Tensor:
    from PIL import Image

    with Image.open(SHARED / "style" / "starry_night.jpg") as im:
        return resize_center_crop(to_unit(np.asarray(im.convert("RGB"))), 512)


def cases(thumb: tuple[int, int], window: int, methods: list[str]) -> dict:
    """name -> (function of no arguments returning the output tensor)."""
    out = {}
    for method in methods:
        model = load_model(method, weights_dir(), "candy" if method == "johnson" else None)
        model = model.to(memory_format=torch.channels_last)
        style = model.prepare_style(style_tensor() if model.info.takes_style_image else None)
        m = model.info.size_multiple
        if method == "wct16x":
            t = hwc_to_nchw(photo(*(-(-s // m) * m for s in thumb)))

            def thumb_pass(model=model, t=t, style=style):
                return model.collect_stats(t, style)[0]

            out[f"{method} thumbnail statistics pass {tuple(t.shape[-2:])}"] = thumb_pass
        side = -(-window // m) * m
        x = hwc_to_nchw(photo(side, side))
        with torch.inference_mode():
            _, stats = model.collect_stats(x, style)

        def window_pass(model=model, x=x, style=style, stats=stats):  # as a worker runs it, baked
            return engine.forward(model, x, style, stats, compute=EAGER)

        out[f"{method} eager window {side}"] = window_pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--thumb", default="1024x1824", help="thumbnail H x W (the 16:9 photograph's)")
    ap.add_argument("--window", type=int, default=1064)
    ap.add_argument("--methods", default="wct16x,johnson,microast")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    thumb = tuple(int(v) for v in a.thumb.split("x"))
    fns = cases(thumb, a.window, a.methods.split(","))
    times: dict[str, dict[str, list[float]]] = {n: {"pad": [], "border": []} for n in fns}
    diff: dict[str, float] = {}
    with torch.inference_mode():
        for name, fn in fns.items():  # warm-up and agreement
            outs = {}
            for r in ("pad", "border"):
                with route(r):
                    outs[r] = fn()
            diff[name] = float((outs["pad"] - outs["border"]).abs().max())
        for i in range(a.rounds):
            for name, fn in fns.items():
                for r in (("pad", "border") if i % 2 == 0 else ("border", "pad")):
                    with route(r):
                        t0 = time.perf_counter()
                        fn()
                        times[name][r].append(time.perf_counter() - t0)
    rows = {}
    for name in fns:
        pad, border = (statistics.median(times[name][r]) for r in ("pad", "border"))
        rows[name] = {"pad_s": [round(t, 3) for t in times[name]["pad"]],
                      "border_s": [round(t, 3) for t in times[name]["border"]],
                      "median_pad_s": round(pad, 3), "median_border_s": round(border, 3),
                      "saved_pct": round(100 * (1 - border / pad), 1), "max_abs_diff": diff[name]}
        print(f"{name:48s} pad {pad:6.3f} s  border {border:6.3f} s  ({rows[name]['saved_pct']:+.1f} % saved)  "
              f"max |diff| {diff[name]:.2g}", flush=True)
    record(f"reflect-conv{a.tag}", {"load_average_at_end": [round(v, 1) for v in os.getloadavg()],
                                    "threads": a.threads, "rounds": a.rounds, "cases": rows})


if __name__ == "__main__":
    main()
