"""Stage: the whole pipeline (thumbnail + tiles + Zarr writes) at growing resolutions.

For each size: wall time of each stage, megapixels per second, seconds per 1064 window, and
the peak RSS of every worker process (a fresh local cluster per size, so each peak belongs to
that size).  Inputs are synthetic Zarr arrays generated beforehand (not timed).

Run: python benchmarks/bench_pipeline.py --sizes 1000 2000 4000 8000 [--whole 1000 2000 4000]
"""

from __future__ import annotations

import argparse
import shutil
import time

from common import SCRATCH, record, synthetic_zarr, weights_dir

from urst_dask.diagnostics import cuda_peak_per_worker, peak_rss_per_worker


def run_one(side: int, whole: bool, method: str, workers: int, threads: int, style, blend: str = "crop") -> dict:
    import dask.array as da
    from distributed import Client

    from urst_dask import api
    from urst_dask.pipeline.cluster import connect
    from urst_dask.settings import ClusterOptions

    src = synthetic_zarr(side, side)
    out = SCRATCH / f"out-{side}{'-whole' if whole else ''}-{blend}.zarr"
    shutil.rmtree(out, ignore_errors=True)
    opts = ClusterOptions(workers=workers, threads_per_worker=threads)
    with connect(opts) as client:
        assert isinstance(client, Client)
        base = peak_rss_per_worker(client)
        t0 = time.perf_counter()
        api.stylize(str(src), style, out, method=method, weights=weights_dir(), whole=whole, client=client,
                    overwrite=True, blend=blend)
        wall = time.perf_counter() - t0
        peaks = peak_rss_per_worker(client)
        cuda = cuda_peak_per_worker(client)
    n_windows = 1 if whole else len(da.core.normalize_chunks((1000, 1000), (side, side))[0]) ** 2
    mp = side * side / 1e6
    row = {
        "side": side, "megapixels": mp, "whole": whole, "blend": None if whole else blend, "wall_s": round(wall, 2), "mp_per_s": round(mp / wall, 4),
        "windows": n_windows, "s_per_window": round(wall / n_windows, 2) if not whole else None,
        "peak_rss_mb_per_worker": peaks,
        "worker_rss_after_start_mb": base,
        "cuda_max_allocated_mb_per_worker": cuda,
    }
    print(f"{side:6d}^2 {'whole' if whole else 'tiled ' + blend}: {wall:7.1f} s, {mp / wall:6.3f} MP/s, "
          f"{row['s_per_window']} s/window, peak RSS/worker {list(row['peak_rss_mb_per_worker'].values())} MB")
    shutil.rmtree(out, ignore_errors=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 2000, 4000, 8000])
    ap.add_argument("--whole", type=int, nargs="*", default=[1000, 2000, 4000])
    ap.add_argument("--method", default="wct16x")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads-per-worker", type=int, default=1)
    ap.add_argument("--blends", nargs="+", default=["crop"], help="tiled runs once per blend (crop, linear, gaussian)")
    ap.add_argument("--name", default=None)
    a = ap.parse_args()
    from urst_dask.synthetic import demo_style

    style = demo_style(768)
    rows = [run_one(s, False, a.method, a.workers, a.threads_per_worker, style, b) for s in a.sizes for b in a.blends]
    rows += [run_one(s, True, a.method, a.workers, a.threads_per_worker, style) for s in a.whole]
    name = a.name or f"pipeline-{a.method}-{a.workers}w{a.threads_per_worker}t"
    record(name, {"method": a.method, "workers": a.workers, "threads_per_worker": a.threads_per_worker,
                  "note": "wall includes the thumbnail stage, style preparation and Zarr writes; "
                          "peak RSS is ru_maxrss of each worker process over the run",
                  "rows": rows})


if __name__ == "__main__":
    main()
