"""The thumbnail statistics pass alone: peak memory and time against the thumbnail's shape.

The thumbnail keeps the paper's shorter side (1024 px), so its pixel count follows the image's
aspect ratio, not its resolution: 1024x1024 for a square image, 1638x1024 for the 40000x25000
gigapixel, 4096x1024 for a 4:1 scan.  Each shape runs in its own process, which does what a
worker does before the tile stage: load the network, encode the style, and collect the
statistics of a real photograph resized to that thumbnail (``pipeline.conditioning``).  The
peak RSS is the process's ``ru_maxrss``; the baseline is its RSS just before the pass.

    python benchmarks/bench_stats_memory.py --thumbs 1024x1024,1024x1638,1024x4096 --tiled off
    python benchmarks/bench_stats_memory.py --tiled on --quality

``--tiled on|off`` forces the tile-by-tile pass (``urst_dask.tiling.thumbstats``) or the whole
one (default ``auto``: the library's threshold).  ``--quality`` also stylizes each thumbnail
(one process, not measured for memory) with the whole pass's statistics and with the tiled
pass's, and records the PSNR between the two pictures.

Results: ``results/stats-memory-<method><tag>.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import record, weights_dir  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _force(tiled: str) -> None:
    from urst_dask.pipeline import conditioning

    if tiled != "auto":
        conditioning.THUMB_TILE_PIXELS = 0 if tiled == "on" else 10**15


def _inputs(h: int, w: int, method: str, style: str):
    import numpy as np
    import torch
    from PIL import Image

    from urst_dask.engine import ModelSpec, get_model
    from urst_dask.io.images import read_style
    from urst_dask.pipeline.conditioning import _prepare_style
    from urst_dask.preprocess import to_unit

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    spec = ModelSpec(method, str(weights_dir()))
    info = get_model(spec).info
    code = _prepare_style(spec, read_style(SHARED / "style" / style, "style") if info.takes_style_image else None, 256)
    with Image.open(SHARED / "content" / "cornell.jpg") as im:
        thumb = to_unit(np.asarray(im.convert("RGB").resize((w, h), Image.BICUBIC)))
    return spec, code, thumb


def quality(h: int, w: int, method: str, style: str) -> dict:
    """The thumbnail stylized with the whole pass's statistics and with the tiled pass's."""
    import torch

    from urst_dask.engine import get_model
    from urst_dask.pipeline import conditioning
    from urst_dask.preprocess import hwc_to_nchw

    spec, code, thumb = _inputs(h, w, method, style)
    stats = {}
    for mode in ("off", "on"):
        _force(mode)
        t = time.perf_counter()
        stats[mode] = conditioning._collect_stats(spec, thumb, code, 1.0)
        print(f"  {w}x{h} tiled={mode}: {time.perf_counter() - t:.2f} s", flush=True)
    model = get_model(spec)
    x = hwc_to_nchw(thumb)
    with torch.inference_mode():
        a, b = (model(x, code, stats[m]).clamp(0, 1) for m in ("off", "on"))
    mse = torch.mean((a - b) ** 2).item()
    psnr = float("inf") if mse == 0 else 10 * math.log10(1 / mse)
    return {"thumbnail": f"{w}x{h}", "psnr_tiled_vs_whole_stats_db": round(psnr, 2),
            "max_abs_255": round(255 * (a - b).abs().max().item(), 1)}


def one(h: int, w: int, method: str, style: str, tiled: str) -> dict:
    """In this process: one statistics pass over an ``h`` x ``w`` thumbnail."""
    from urst_dask.pipeline.conditioning import _collect_stats

    _force(tiled)
    spec, code, thumb = _inputs(h, w, method, style)
    base = _rss_mb()
    t = time.perf_counter()
    stats = _collect_stats(spec, thumb, code, 1.0)
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"thumbnail": f"{w}x{h}", "megapixels": round(h * w / 1e6, 2), "seconds": round(seconds, 2),
            "rss_mb_before": round(base, 1), "peak_rss_mb": round(peak, 1), "peak_minus_before_mb": round(peak - base, 1),
            "stats_token": stats.token()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--thumbs", default="1024x1024,1024x1638,1024x4096", help="HxW,HxW,...")
    ap.add_argument("--method", default="wct16x")
    ap.add_argument("--style", default="starry_night.jpg")
    ap.add_argument("--tiled", default="auto", choices=["auto", "on", "off"])
    ap.add_argument("--quality", action="store_true")
    ap.add_argument("--tag", default="")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child process: one shape, JSON on stdout
    a = ap.parse_args()
    if a.one:
        h, w = (int(v) for v in a.one.split("x"))
        print(json.dumps(one(h, w, a.method, a.style, a.tiled)))
        return
    rows, quality_rows = [], []
    for shape in a.thumbs.split(","):
        out = subprocess.run([sys.executable, __file__, "--one", shape, "--method", a.method, "--style", a.style,
                              "--tiled", a.tiled], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    if a.quality:
        for shape in a.thumbs.split(","):
            h, w = (int(v) for v in shape.split("x"))
            quality_rows.append(quality(h, w, a.method, a.style))
            print(quality_rows[-1], flush=True)
    record(f"stats-memory-{a.method}{a.tag}", {"method": a.method, "style": a.style, "content": "cornell.jpg resized",
                                               "tiled": a.tiled, "runs": rows, "quality": quality_rows})


if __name__ == "__main__":
    main()
