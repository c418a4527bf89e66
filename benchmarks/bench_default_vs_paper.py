"""The default tiling against the paper's geometry, side by side in one run, end to end.

For each photograph (upscaled, bicubic, longer side ``--size``), runs the public API three
times on one embedded cluster: ``--whole`` (the reference), the default plan (``margin auto``,
``crop``) and ``--paper`` (stride 1000, margin 32, crop), alternating the order per image so
machine noise does not favour one.  Records wall time, seam score, PSNR and SSIM against the
whole-image result (``urst_dask.compare``), and writes PNG crops around a tile corner.

    python benchmarks/bench_default_vs_paper.py --method wct16x --images cornell modern

Results: ``results/default-vs-paper-<method>.json``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_seams import BAKED, SCRATCH, save_png, upscaled  # noqa: E402
from common import record, weights_dir  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--method", default="wct16x")
    ap.add_argument("--images", nargs="+", default=["cornell", "modern"])
    ap.add_argument("--style", default="starry_night.jpg")
    ap.add_argument("--size", type=int, default=3000)
    a = ap.parse_args()
    from distributed import Client, LocalCluster

    import urst_dask
    from urst_dask.io import store
    from urst_dask.tiling import TilePlan

    style = BAKED.get(a.method) or str(SHARED / "style" / a.style)
    runs = {"whole": {"whole": True}, "default": {}, "paper": {"plan": TilePlan.paper()}}
    rows = []
    SCRATCH.mkdir(parents=True, exist_ok=True)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        for k, name in enumerate(a.images):
            image = upscaled(name, a.size)
            order = ["whole", "default", "paper"] if k % 2 == 0 else ["whole", "paper", "default"]
            outs = {}
            for label in order:
                out = SCRATCH / f"dvp-{a.method}-{name}-{label}.zarr"
                shutil.rmtree(out, ignore_errors=True)
                t = time.perf_counter()
                urst_dask.stylize(image, style, out, method=a.method, weights=weights_dir(), client=client,
                                  **runs[label])
                seconds = time.perf_counter() - t
                outs[label] = out
                grid = store.read_attrs(out)["tile_grid"]
                row = {"image": name, "run": label, "seconds": round(seconds, 2), "margin": grid["margin"],
                       "blend": grid["blend"]}
                if label != "whole":
                    row.update({k2: (round(v, 4) if isinstance(v, float) else v)
                                for k2, v in urst_dask.compare(out, outs["whole"], stride=1000).items()})
                rows.append(row)
                print(row, flush=True)
            crops = [np.asarray(store.open_output(outs[lbl])[900:1100, 900:1100].compute())
                     for lbl in ("whole", "default", "paper")]
            save_png(SCRATCH / f"dvp-{a.method}-{name}-corner.png",
                     np.concatenate([np.pad(c, ((0, 0), (0, 4), (0, 0)), constant_values=255) for c in crops], axis=1))
    record(f"default-vs-paper-{a.method}", {"method": a.method, "style": style, "size": a.size,
                                            "cluster": "1 worker process x 1 thread", "rows": rows})


if __name__ == "__main__":
    main()
