"""A candidate, not in the pipeline: a cascaded WCT with its coarse levels in float32 and its fine
levels in bf16, as two OpenVINO graphs run one after the other.

wct16x loses its picture in bf16 (25-29 dB against float32 with Starry Night,
results/precision-quality.json), and the error comes from levels 5 and 4.  Those levels hold
about two thirds of the multiply-adds, so keeping them in float32 keeps bf16's speed-up on the
remaining third only.  On a CPU with AMX, where OpenVINO's bf16 is 4-5x its float32, that may
still be worth having.  This measures it per photograph and painting: one window (the
photograph resized to ``--side``, statistics from its 1024-px thumbnail, the painting at the
run's default style size 1024), seconds per window (best of ``--repeats``) and PSNR against
OpenVINO float32, for all-float32, all-bf16 and each split.

Run: flock -x /tmp/urst-cpu.lock python benchmarks/bench_mixed_precision.py --tag=-amx
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from typing import Callable

import torch
from bench_precision_quality import SHARED, image, psnr
from common import record, weights_dir

from urst_dask import engine
from urst_dask.engine import backends, precision
from urst_dask.engine.baked import FoldedCascade
from urst_dask.preprocess import hwc_to_nchw, resize_center_crop
from urst_dask.settings import Backend, Precision

Runner = Callable[[torch.Tensor], torch.Tensor]


def levels_only(net: FoldedCascade, levels: tuple[str, ...]) -> FoldedCascade:
    """The same baked cascade restricted to ``levels`` (its buffers shared, not copied)."""
    part = copy.copy(net)
    part.levels = levels
    return part


def split_runner(net: FoldedCascade, x: torch.Tensor, coarse: tuple[str, ...]) -> Runner:
    """``coarse`` levels in float32, the rest in bf16: two compiled graphs, chained."""
    fine = tuple(k for k in net.levels if k not in coarse)
    first = backends.BUILDERS[Backend.OPENVINO](levels_only(net, coarse), x, Precision.FLOAT32)
    second = backends.BUILDERS[Backend.OPENVINO](levels_only(net, fine), x, Precision.BFLOAT16)
    return lambda v: second(first(v))


def best_of(run: Runner, x: torch.Tensor, repeats: int) -> tuple[torch.Tensor, float]:
    times, y = [], x
    for _ in range(repeats):
        t = time.perf_counter()
        y = run(x)
        times.append(time.perf_counter() - t)
    return y, round(min(times), 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="wct16x", choices=["wct16x", "wct"])
    ap.add_argument("--photos", default="cornell.jpg,sailboat.jpg,flowers.jpg")
    ap.add_argument("--styles", default="starry_night.jpg", help="paintings in ../shared/images/style")
    ap.add_argument("--side", type=int, default=1072, help="window side (1064 px padded to a multiple of 16)")
    ap.add_argument("--splits", default="5,4;5", help="float32 level sets, ';'-separated")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if not backends.openvino_available():
        raise SystemExit("bench_mixed_precision: needs OpenVINO (pip install 'urst-dask[openvino]')")
    model = engine.get_model(engine.ModelSpec(a.method, str(weights_dir()), None))
    splits = [tuple(s.split(",")) for s in a.splits.split(";")]
    rows = []
    for style_name, name in [(s, p) for s in a.styles.split(",") for p in a.photos.split(",")]:
        style = model.prepare_style(resize_center_crop(image(SHARED / "style" / style_name), 1024))
        thumb = hwc_to_nchw(image(SHARED / "content" / name, 1024)).contiguous(memory_format=torch.channels_last)
        x = hwc_to_nchw(image(SHARED / "content" / name, a.side)).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            _, stats = model.collect_stats(thumb, style)
        net = FoldedCascade(model, style, stats, 1.0).eval()
        ref, t32 = best_of(backends.BUILDERS[Backend.OPENVINO](net, x, Precision.FLOAT32), x, a.repeats)
        y16, t16 = best_of(backends.BUILDERS[Backend.OPENVINO](net, x, Precision.BFLOAT16), x, a.repeats)
        row = {"style": style_name, "photo": name, "side": a.side, "float32_s": t32, "bf16_s": t16, "bf16_db": psnr(y16, ref)}
        for coarse in splits:
            y, t = best_of(split_runner(net, x, coarse), x, a.repeats)
            row[f"float32_levels_{'_'.join(coarse)}"] = {"s": t, "db": psnr(y, ref)}
        rows.append(row)
        print(row, flush=True)
    record(f"mixed-precision-{a.method}{a.tag}", {
        "load_average_at_end": [round(v, 1) for v in os.getloadavg()], "native_bf16": precision.cpu_native_bf16(),
        "styles": a.styles.split(","), "style_size": 1024, "bar_db": 35.0, "rows": rows,
        "worst_db": {"bf16": min(r["bf16_db"] for r in rows),
                     **{k: min(r[k]["db"] for r in rows) for k in rows[0] if k.startswith("float32_levels")}}})


if __name__ == "__main__":
    main()
