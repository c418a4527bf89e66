"""Recipe for people measuring memory against resolution: peak memory per worker, tiled URST
vs whole-image inference, at growing sizes.

    python pipelines/memory_vs_resolution.py --sizes 1000 2000 4000 8000 --whole 1000 2000 \\
        [--method wct16x] [--style style.jpg] [--workers 1] [--scratch /tmp/urst-mem]

Each size gets a fresh local cluster, so each worker's peak (ru_maxrss; and
torch.cuda.max_memory_allocated on GPU workers) belongs to that size alone.  Inputs are
synthetic images written chunk by chunk into Zarr (never whole in memory), with detail at
every scale.  Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import dask
import zarr

import urst_dask
from urst_dask import graph
from urst_dask.cluster import ClusterOptions, connect
from urst_dask.diagnostics import cuda_peak_per_worker, peak_rss_per_worker
from urst_dask.synthetic import demo_style


def synthetic_input(scratch: Path, side: int) -> Path:
    path = scratch / f"input-{side}.zarr"
    if not (path / "zarr.json").exists():
        arr = graph.synthetic_array((side, side), chunk=1000)
        target = zarr.create_array(str(path), shape=arr.shape, chunks=(1000, 1000, 3), dtype="uint8", overwrite=True)
        with dask.config.set(scheduler="threads"):
            arr.store(target, lock=False)
    return path


def measure(side: int, whole: bool, a: argparse.Namespace, style) -> dict:
    src = synthetic_input(a.scratch, side)
    out = a.scratch / f"out-{side}.zarr"
    with connect(ClusterOptions(workers=a.workers, threads_per_worker=1)) as client:
        t = time.perf_counter()
        urst_dask.stylize(src, style, out, method=a.method, whole=whole, client=client, overwrite=True)
        wall = time.perf_counter() - t
        rss, cuda = peak_rss_per_worker(client), cuda_peak_per_worker(client)
    shutil.rmtree(out, ignore_errors=True)
    return {"side": side, "mode": "whole" if whole else "tiled", "wall_s": wall,
            "peak_rss_mb": max(rss.values()), "cuda_mb": max((v for v in cuda.values() if v), default=None)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 2000, 4000])
    ap.add_argument("--whole", type=int, nargs="*", default=[1000, 2000])
    ap.add_argument("--method", default="wct16x")
    ap.add_argument("--style", help="style image (default: a generated pattern)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/urst-mem"))
    a = ap.parse_args(argv)
    a.scratch.mkdir(parents=True, exist_ok=True)
    style = a.style or demo_style(768)
    rows = [measure(s, False, a, style) for s in a.sizes] + [measure(s, True, a, style) for s in a.whole]
    print("| side | mode | wall s | MP/s | peak RSS/worker MiB | CUDA peak MiB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        mp = r["side"] ** 2 / 1e6
        cuda = "-" if r["cuda_mb"] is None else f"{r['cuda_mb']:.0f}"
        print(f"| {r['side']} | {r['mode']} | {r['wall_s']:.1f} | {mp / r['wall_s']:.3f} | {r['peak_rss_mb']:.0f} | {cuda} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
