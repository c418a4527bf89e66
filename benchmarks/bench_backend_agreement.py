"""Do the backends give the same picture?  Eager against compiled backends, band by band, on a
real photograph, with whole-image inference as the common reference.

One process, one thumbnail pass: the style code and statistics are computed once, then the
tile stage runs once per backend (Dask's threaded scheduler, one task at a time, so the
compiled-network cache is this process's).  For each backend the output is compared with the
first backend's (eager by default) and with the whole image stylized as one window:

* ``interior``: everything but the last ``--band`` rows and columns;
* ``bottom`` / ``right``: the last ``--band`` rows / columns (windows that end at the image's
  border);
* ``first_seam``: the ``--band`` rows above the first horizontal tile line, where the first
  row's windows end (they have no context above them, so they are the short ones).

    python benchmarks/bench_backend_agreement.py --backends eager openvino --whole

Results: ``results/backend-agreement-<method>-<image><tag>.json``; PNGs of the bottom-right
corner of each output under ``$URST_BENCH_SCRATCH``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SCRATCH, record, weights_dir  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"


def photograph(path: Path | None, name: str, size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """The content: ``path`` as it is, or ``name`` from ../shared scaled to cover ``size`` (W, H)
    (bicubic) and centre-cropped to it."""
    from PIL import Image

    if path is not None:
        return np.asarray(Image.open(path).convert("RGB")), str(path)
    im = Image.open(SHARED / "content" / name).convert("RGB")
    s = max(size[0] / im.width, size[1] / im.height)
    im = im.resize((round(im.width * s), round(im.height * s)), Image.BICUBIC)
    x, y = (im.width - size[0]) // 2, (im.height - size[1]) // 2
    return np.asarray(im.crop((x, y, x + size[0], y + size[1]))), f"{name} scaled and centre-cropped to {size}"


def bands(out: np.ndarray, ref: np.ndarray, band: int, stride: int) -> dict:
    from urst_dask import metrics

    h, w = out.shape[:2]
    parts = {"whole": (slice(None), slice(None)), "interior": (slice(0, h - band), slice(0, w - band)),
             "bottom": (slice(h - band, h), slice(None)), "right": (slice(None), slice(w - band, w))}
    if h > stride + band:
        parts["first_seam"] = (slice(stride - band, stride), slice(None))
    got = {k: round(metrics.psnr(out[s], ref[s]), 2) for k, s in parts.items()}
    diff = np.abs(out.astype(np.int16) - ref.astype(np.int16))
    got["max_abs"] = int(diff.max())
    got["pixels_off_by_more_than_8"] = int((diff.max(axis=2) > 8).sum())
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--content", type=Path, default=None, help="a photograph used as it is (default: --image scaled)")
    ap.add_argument("--image", default="cornell.jpg", help="a photograph in ../shared/images/content")
    ap.add_argument("--size", default="3840x2160", help="W x H the --image is scaled and cropped to")
    ap.add_argument("--style", default="starry_night.jpg")
    ap.add_argument("--method", default="wct16x")
    ap.add_argument("--backends", nargs="+", default=["eager", "openvino"], help="the first is the reference")
    ap.add_argument("--margin", default="auto")
    ap.add_argument("--band", type=int, default=128)
    ap.add_argument("--whole", action="store_true", help="also compare with whole-image inference (memory!)")
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)  # a backend falling back to eager says so
    import torch

    from urst_dask.engine import ModelSpec, get_model
    from urst_dask.io.images import read_style
    from urst_dask.pipeline.conditioning import conditioning
    from urst_dask.pipeline.tiles import tile_graph
    from urst_dask.settings import ComputeOptions, Precision, StyleOptions
    from urst_dask.tiling import TilePlan, WindowJob

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    SCRATCH.mkdir(parents=True, exist_ok=True)
    w, h = (int(v) for v in a.size.split("x"))
    image, described = photograph(a.content, a.image, (w, h))
    spec = ModelSpec(a.method, str(weights_dir()))
    info = get_model(spec).info
    style = read_style(SHARED / "style" / a.style, "style") if info.takes_style_image else None
    arr = da.from_array(image, chunks=(1000, 1000, 3))
    plan = TilePlan(margin=a.margin if a.margin == "auto" else int(a.margin))
    grid = plan.resolve(info.size_multiple, info.seam_margin, info.receptive_field)
    doc: dict = {"image": described, "shape": list(image.shape), "style": a.style, "method": a.method,
                 "stride": grid.stride, "margin": grid.margin, "band": a.band,
                 "scheduler": "threads, 1 task at a time, one process", "torch_threads": torch.get_num_threads(),
                 "runs": []}
    name = f"backend-agreement-{a.method}-{Path(a.image).stem}{a.tag}"
    with dask.config.set(scheduler="threads", num_workers=1):
        code, stats, _ = dask.compute(conditioning(arr, style, spec, StyleOptions()))[0]
        whole = None
        if a.whole:
            t = time.perf_counter()
            whole = tile_graph(arr, spec, code, stats, plan,
                               WindowJob(StyleOptions(), ComputeOptions(whole=True, precision=Precision.FLOAT32),
                                         "uint8")).compute()
            doc["whole_seconds"] = round(time.perf_counter() - t, 2)
        ref = None
        for backend in a.backends:
            job = WindowJob(StyleOptions(), ComputeOptions(backend=backend, precision=Precision.FLOAT32), "uint8")
            t = time.perf_counter()
            out = tile_graph(arr, spec, code, stats, plan, job).compute()
            run: dict = {"backend": backend, "seconds": round(time.perf_counter() - t, 2)}
            ref = out if ref is None else ref
            run[f"vs_{a.backends[0]}"] = bands(out, ref, a.band, grid.stride)
            if whole is not None:
                run["vs_whole"] = bands(out, whole, a.band, grid.stride)
            doc["runs"].append(run)
            print(run, flush=True)
            from PIL import Image

            Image.fromarray(out[-300:, -400:]).save(SCRATCH / f"{name}-{backend}-corner.png")
            record(name, doc)  # after every backend: a partial run still records


if __name__ == "__main__":
    main()
