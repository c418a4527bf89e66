"""Seams against margin and blend, per network, on real photographs.

For each network and photograph (upscaled, bicubic, so its longer side is ``--size``), the
thumbnail statistics and style code are computed once; then, for each margin, one window
pass is assembled three ways (crop / linear / gaussian: the blends share the window tasks,
so the time per margin is one pass) and compared with whole-image inference (``--whole``)
by seam score (1.0 = invisible), PSNR and SSIM.  Also recorded: the unaligned tiling of
earlier versions (windows at k*stride - margin, off the pooling grid) and the seam score of
the whole-image result at the same lines (the floor: what "no seam" measures).

    python benchmarks/bench_seams.py --methods wct16x johnson microast wct --images cornell modern

Results: ``results/seams-<image>.json``; PNGs of each output under ``$URST_BENCH_SCRATCH``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SCRATCH, record, weights_dir  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"
BAKED = {"johnson": "candy"}  # networks with a baked-in style: the style used


def upscaled(name: str, size: int) -> np.ndarray:
    from PIL import Image

    im = Image.open(SHARED / "content" / f"{name}.jpg").convert("RGB")
    s = size / max(im.size)
    return np.asarray(im.resize((round(im.width * s), round(im.height * s)), Image.BICUBIC))


def style_image(name: str, method: str) -> np.ndarray | None:
    from urst_dask.io.images import read_style

    return None if method in BAKED else read_style(SHARED / "style" / name, "style")


def save_png(path: Path, arr: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(arr).save(path)


def run_method(method: str, image: np.ndarray, style: np.ndarray | None, margins: list, stride: int, tag: str) -> dict:
    from urst_dask import metrics
    from urst_dask.engine import ModelSpec, get_model
    from urst_dask.pipeline.conditioning import conditioning
    from urst_dask.pipeline.tiles import tile_graph
    from urst_dask.settings import ComputeOptions, Precision, StyleOptions
    from urst_dask.tiling import Blend, TilePlan, WindowJob

    spec = ModelSpec(method, str(weights_dir()), variant=BAKED.get(method))
    info = get_model(spec).info
    arr = da.from_array(image, chunks=(1000, 1000, 3))
    job = WindowJob(StyleOptions(preserve_color=False), ComputeOptions(precision=Precision.FLOAT32), "uint8")
    with dask.config.set(scheduler="threads", num_workers=1):
        style_code, stats, _ = dask.compute(conditioning(arr, style, spec, StyleOptions(thumb_size=1024, style_size=1024)))[0]
        t = time.perf_counter()
        whole = tile_graph(arr, spec, style_code, stats, TilePlan(), WindowJob(job.style, ComputeOptions(whole=True), "uint8")).compute()
        t_whole = time.perf_counter() - t
        save_png(SCRATCH / f"seams-{tag}-{method}-whole.png", whole)
        rows = [{"config": "whole", "seconds": round(t_whole, 2),
                 "seam": round(metrics.seam_score(whole, stride), 4)}]

        def measure(label: str, out: np.ndarray, seconds: float, **extra) -> None:
            rows.append({"config": label, **extra, "seconds": round(seconds, 2),
                         "seam": round(metrics.seam_score(out, stride), 4),
                         "psnr_vs_whole": round(metrics.psnr(out, whole), 2),
                         "ssim_vs_whole": round(metrics.ssim(out, whole), 4)})
            print(f"  {method:9s} {label:28s} seam {rows[-1]['seam']:.3f}  PSNR {rows[-1]['psnr_vs_whole']:.2f} dB  "
                  f"SSIM {rows[-1]['ssim_vs_whole']:.4f}  {seconds:.1f} s", flush=True)

        t = time.perf_counter()
        old = tile_graph(arr, spec, style_code, stats, TilePlan(stride=stride, margin=32, blend="crop",
                                                                         align=False), job).compute()
        measure("unaligned m32 crop (v0.1)", old, time.perf_counter() - t, margin=32, blend="crop", align=False)
        save_png(SCRATCH / f"seams-{tag}-{method}-unaligned.png", old)
        for margin in margins:
            grid = TilePlan(stride=stride, margin=margin).resolve(info.size_multiple, info.seam_margin,
                                                                  info.receptive_field)
            outs = [tile_graph(arr, spec, style_code, stats,
                                        TilePlan(stride=stride, margin=grid.margin, blend=b), job) for b in Blend]
            t = time.perf_counter()
            results = dask.compute(*outs)  # one window pass, three assemblies
            seconds = time.perf_counter() - t
            for b, out in zip(Blend, results):
                measure(f"m{margin} {b.value}", out, seconds, margin=grid.margin, margin_given=margin, blend=b.value,
                        align=True)
                save_png(SCRATCH / f"seams-{tag}-{method}-m{grid.margin}-{b.value}.png", out)
    return {"size_multiple": info.size_multiple, "receptive_field": info.receptive_field, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", nargs="+", default=["wct16x", "microast", "johnson", "wct"])
    ap.add_argument("--images", nargs="+", default=["cornell"])
    ap.add_argument("--style", default="starry_night.jpg")
    ap.add_argument("--size", type=int, default=3000, help="longer side after upscaling")
    ap.add_argument("--stride", type=int, default=1000)
    ap.add_argument("--margins", nargs="+", default=["32", "64", "96", "128"])
    ap.add_argument("--name", default="seams")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(len(__import__("os").sched_getaffinity(0)))
    SCRATCH.mkdir(parents=True, exist_ok=True)
    margins = [m if m == "auto" else int(m) for m in a.margins]
    for name in a.images:
        image = upscaled(name, a.size)
        print(f"{name}: {image.shape[1]}x{image.shape[0]}", flush=True)
        doc = {"image": f"{name}.jpg upscaled (bicubic) to {image.shape[1]}x{image.shape[0]}", "style": a.style,
               "baked_styles": BAKED, "stride": a.stride, "scheduler": "threads, 1 task at a time",
               "seam_definition": "mean |neighbour difference| across k*stride lines / same on lines +-16, 32, 48 px",
               "methods": {}}
        for method in a.methods:
            doc["methods"][method] = run_method(method, image, style_image(a.style, method), margins, a.stride,
                                                f"{a.name}-{name}")
            record(f"{a.name}-{name}", doc)  # after every method: a partial run still records


if __name__ == "__main__":
    main()
