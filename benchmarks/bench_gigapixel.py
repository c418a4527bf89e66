"""Stage: a gigapixel image through the full pipeline on one machine, memory flat.

Each configuration runs in its own process so that every peak RSS (this client process and
each worker process, ``ru_maxrss``) belongs to that run alone:

    python benchmarks/bench_gigapixel.py --height 4000 --width 4000 --method passthrough --name giga-16mp-io
    python benchmarks/bench_gigapixel.py --height 25000 --width 40000 --method passthrough --name giga-1gp-io
    python benchmarks/bench_gigapixel.py --height 25000 --width 40000 --region 4000 --method wct16x --name giga-region
    (add --memory compact and a new --name for the workers' compact allocator mode)
    python benchmarks/bench_gigapixel.py --height 25000 --width 40000 --method wct16x --workers 1 --backend auto --name giga-1gp-wct16x
    (the real network over the whole gigapixel: 38 min on a 2-core AMD EPYC with OpenVINO;
    results/giga-1gp-wct16x-ov-*.json)

``passthrough`` runs every stage of the pipeline (thumbnail, statistics, window reads,
padding, TIN, Zarr writes) with no convolutions: the I/O-and-tiling pass.  ``--region N``
runs the real network on the top-left N x N region of the image (a slice of the same lazy
input): the per-window figures of a gigapixel run in a minute instead of half an hour.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

import dask.array as da
import zarr
from common import SCRATCH, record, synthetic_zarr, weights_dir

from urst_dask import api
from urst_dask.diagnostics import _peak_rss_mb, peak_rss_per_worker
from urst_dask.io import store
from urst_dask.pipeline.cluster import connect
from urst_dask.settings import ClusterOptions
from urst_dask.synthetic import demo_style


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--height", type=int, default=25000)
    ap.add_argument("--width", type=int, default=40000)
    ap.add_argument("--region", type=int, default=None, help="run on the top-left N x N region only")
    ap.add_argument("--method", default="passthrough")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="threads per worker (tasks at once)")
    ap.add_argument("--backend", default=None, help="window backend (default: the library's default)")
    ap.add_argument("--precision", default=None, help="window precision (default: the library's default)")
    ap.add_argument("--style", default=None, help="a painting (default: the synthetic demo style)")
    ap.add_argument("--memory", default="fast", choices=["fast", "compact"], help="worker allocator mode")
    ap.add_argument("--keep", action="store_true", help="keep the output store (to look at it)")
    ap.add_argument("--name", required=True)
    a = ap.parse_args()
    huge_pages = os.environ.get("THP_MEM_ALLOC_ENABLE", "unset: 1 in the workers")  # before the cluster: its start sets it here too
    t = time.perf_counter()
    src = synthetic_zarr(a.height, a.width)
    gen_s = time.perf_counter() - t
    content = da.from_zarr(zarr.open_array(str(src), mode="r"))
    if a.region:
        content = content[: a.region, : a.region]
    out = SCRATCH / f"out-{a.name}.zarr"
    shutil.rmtree(out, ignore_errors=True)
    extra = {k: v for k, v in (("backend", a.backend), ("precision", a.precision)) if v is not None}
    with connect(ClusterOptions(workers=a.workers, threads_per_worker=a.threads, memory=a.memory)) as client:
        t = time.perf_counter()
        api.stylize(content, a.style or demo_style(768), out, method=a.method, weights=weights_dir(), client=client,
                    overwrite=True, progress=True, **extra)
        wall = time.perf_counter() - t
        workers = peak_rss_per_worker(client)
    h, w = content.shape[:2]
    mp = h * w / 1e6
    row = {"height": h, "width": w, "megapixels": round(mp, 1), "method": a.method, "workers": a.workers,
           "threads_per_worker": a.threads, "backend": a.backend or "default", "memory": a.memory,
           "precision": a.precision or "default", "style": a.style or "demo_style(768)",
           "huge_pages": huge_pages, "precision_auto": store.read_attrs(out).get("precision_auto"),
           "region_of": [a.height, a.width] if a.region else None, "wall_s": round(wall, 1),
           "mp_per_s": round(mp / wall, 3), "peak_rss_mb_client": round(_peak_rss_mb(), 1),
           "peak_rss_mb_per_worker": workers, "input_generation_s": round(gen_s, 1)}
    print(row)
    if not a.keep:
        shutil.rmtree(out, ignore_errors=True)
    record(a.name, row)


if __name__ == "__main__":
    main()
