"""Thumbnail statistics against full-image statistics as the thumbnail grows (the paper's
Figure 7), on a real photograph.

The full image's statistics are recorded by running the whole image through the network
(the same recording pass as the thumbnail's); each thumbnail size is an exact area
reduction of the same image.  The distance per normalization point is
:func:`urst_dask.metrics.stats_distance` (relative L2 over the point's fields).

    python benchmarks/bench_stats_distance.py --methods wct16x microast --image cornell --size 4096

Results: ``results/stats-distance-<image>.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import dask
import dask.array as da
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_seams import style_image, upscaled  # noqa: E402
from common import record, weights_dir  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", nargs="+", default=["wct16x", "microast"])
    ap.add_argument("--image", default="cornell")
    ap.add_argument("--style", default="starry_night.jpg")
    ap.add_argument("--size", type=int, default=4096, help="longer side of the upscaled photograph")
    ap.add_argument("--thumbs", nargs="+", type=int, default=[64, 128, 256, 512, 1024, 2048])
    a = ap.parse_args()
    from urst_dask import metrics
    from urst_dask.engine import ModelSpec, get_model
    from urst_dask.pipeline.conditioning import conditioning
    from urst_dask.settings import StyleOptions

    image = upscaled(a.image, a.size)
    arr = da.from_array(image, chunks=(1000, 1000, 3))
    doc = {"image": f"{a.image}.jpg upscaled (bicubic) to {image.shape[1]}x{image.shape[0]}", "style": a.style,
           "distance": "||thumb - full|| / ||full|| per point, over all its fields", "methods": {}}
    for method in a.methods:
        spec = ModelSpec(method, str(weights_dir()))
        get_model(spec)
        with dask.config.set(scheduler="threads", num_workers=1):
            full = dask.compute(conditioning(arr, style_image(a.style, method), spec,
                                             StyleOptions(thumb_size=min(image.shape[:2]))))[0]
            rows = {}
            for t in a.thumbs:
                thumb = dask.compute(conditioning(arr, style_image(a.style, method), spec,
                                                  StyleOptions(thumb_size=t)))[0]
                d = metrics.stats_distance(thumb[1], full[1])
                rows[t] = {k: round(v, 5) for k, v in d.items()}
                print(f"{method:9s} thumb {t:5d}: " + "  ".join(f"{k} {v:.4f}" for k, v in d.items()), flush=True)
        doc["methods"][method] = {"points": list(full[1].points()), "by_thumb_size": rows,
                                  "mean_by_thumb_size": {t: round(float(np.mean(list(r.values()))), 5)
                                                         for t, r in rows.items()}}
        record(f"stats-distance-{a.image}", doc)


if __name__ == "__main__":
    main()
