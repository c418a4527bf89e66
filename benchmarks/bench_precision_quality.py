"""Does a network keep its picture in bf16?  PSNR of bf16 against float32, per method, on real
photographs, eager (autocast) and OpenVINO, with the run's default style size.

For each photograph and window side: the photograph resized to a square window, its own
statistics as the thumbnail's, Starry Night as the style; the float32 eager output is the
reference.  The issue's bar is 35 dB; ``--precision auto`` picks bf16 only for the networks
that hold it (:data:`urst_dask.engine.precision.BF16_HOLDS`).  Timings are not the point here
(see bench_window.py); bf16 only means something on a CPU with native bf16.

Run: flock -x /tmp/urst-cpu.lock python benchmarks/bench_precision_quality.py
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
from common import record, weights_dir

from urst_dask import engine, metrics
from urst_dask.engine import backends, precision
from urst_dask.preprocess import hwc_to_nchw, resize_center_crop, to_unit
from urst_dask.settings import Backend, ComputeOptions, Precision, StyleOptions

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"
BAR_DB = 35.0


def image(path: Path, side: int | None = None) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        return to_unit(np.asarray(im if side is None else im.resize((side, side), Image.BICUBIC)))


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """:func:`urst_dask.metrics.psnr` of two (1, 3, H, W) outputs clamped to [0, 1]."""
    def hwc(t: torch.Tensor) -> np.ndarray:
        return t[0].clamp(0, 1).permute(1, 2, 0).numpy()

    return round(metrics.psnr(hwc(a), hwc(b), peak=1.0), 2)


def measure(method: str, photos: list[str], sides: list[int], style_size: int) -> list[dict]:
    variant = "candy" if method == "johnson" else None
    model = engine.get_model(engine.ModelSpec(method, str(weights_dir()), variant))
    style_img = resize_center_crop(image(SHARED / "style" / "starry_night.jpg"), style_size)
    style = model.prepare_style(style_img if model.info.takes_style_image else None)
    kinds = [Backend.EAGER] + ([Backend.OPENVINO] if backends.openvino_available() else [])
    rows = []
    for name in photos:
        for side in sides:
            side = -(-side // model.info.size_multiple) * model.info.size_multiple
            x = hwc_to_nchw(image(SHARED / "content" / name, side)).contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                _, stats = model.collect_stats(x, style)

            def run(backend: Backend, prec: Precision, x=x, stats=stats) -> torch.Tensor:
                return engine.forward(model, x, style, stats, StyleOptions(alpha=1.0),
                                      ComputeOptions(precision=prec, backend=backend))

            ref = run(Backend.EAGER, Precision.FLOAT32)
            row = {"photo": name, "side": side}
            for kind in kinds:
                row[f"{kind.value}_bf16_db"] = psnr(run(kind, Precision.BFLOAT16), ref)
            rows.append(row)
            print(f"{method:9s} {name:13s} {side:5d} px  " + "  ".join(
                f"{k[:-8]} {v:6.2f} dB" for k, v in row.items() if k.endswith("_bf16_db")), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--methods", default="wct16x,wct,johnson,microast")
    ap.add_argument("--photos", default="cornell.jpg,sailboat.jpg,flowers.jpg")
    ap.add_argument("--sides", default="256,768")
    ap.add_argument("--style-size", type=int, default=1024, help="the run's default")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    results = {}
    for method in a.methods.split(","):
        rows = measure(method, a.photos.split(","), [int(s) for s in a.sides.split(",")], a.style_size)
        worst = min(v for r in rows for k, v in r.items() if k.endswith("_bf16_db"))
        results[method] = {"rows": rows, "worst_db": worst, "holds_35_db": worst >= BAR_DB,
                           "auto_picks_bf16_here": engine.resolve_precision("auto", torch.device("cpu"), method)
                           is Precision.BFLOAT16}
        print(f"{method}: worst {worst:.2f} dB -> {'holds' if worst >= BAR_DB else 'misses'} the {BAR_DB} dB bar")
    record(f"precision-quality{a.tag}", {"load_average_at_end": [round(v, 1) for v in os.getloadavg()],
                                         "native_bf16": precision.cpu_native_bf16(), "style": "starry_night.jpg",
                                         "style_size": a.style_size, "bar_db": BAR_DB, "methods": results})


if __name__ == "__main__":
    main()
