"""Scientist recipe: a gigapixel OME-TIFF scan in, a stylized OME-Zarr and a pyramidal
OME-TIFF out, on a local or remote Dask cluster.  Rerunning resumes an interrupted run.

    python pipelines/scientist_scan.py scan.ome.tif style.jpg out.ome.zarr [--tif out.ome.tif]
        [--method wct16x] [--axes CYX] [--workers 2] [--scheduler tcp://host:8786]

    # no scan at hand? make a deterministic one (any size, written tile by tile):
    python pipelines/scientist_scan.py --make-demo-scan scan.ome.tif --size 12000x8000

* The scan is read lazily through tifffile's Zarr view; its pyramid (if any) feeds the
  thumbnail, so full resolution is read once, by the tile stage.
* The output is OME-Zarr (NGFF): image (c, y, x) + multiscale pyramid + channel metadata,
  physical pixel sizes carried over, provenance in the ``urst_dask`` attributes; napari
  (`napari out.ome.zarr`) and QuPath open it.
* ``--tif`` also writes a pyramidal tiled OME BigTIFF, tile by tile.
"""

from __future__ import annotations

import argparse
import sys
import time

import urst_dask
from urst_dask.pipeline.cluster import connect
from urst_dask.settings import ClusterOptions


def make_demo_scan(path: str, size: str, pixel_size_um: float = 0.25) -> None:
    """A synthetic RGB scan with realistic detail at every scale, as a pyramidal OME-TIFF."""
    from urst_dask.pipeline.export import write_tiff
    from urst_dask.pipeline.synthetic import synthetic_array

    w, h = (int(v) for v in size.lower().split("x"))
    image = synthetic_array((h, w), seed=11, chunk=1024)
    write_tiff(path, image, pixel_size={"y": (pixel_size_um, "micrometer"), "x": (pixel_size_um, "micrometer")})
    print(f"wrote {path} ({w}x{h}, {pixel_size_um} um/px)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scan", nargs="?")
    ap.add_argument("style", nargs="?")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--tif", help="also export a pyramidal OME BigTIFF here")
    ap.add_argument("--method", default="wct16x")
    ap.add_argument("--axes")
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--scheduler")
    ap.add_argument("--make-demo-scan", metavar="PATH")
    ap.add_argument("--size", default="6000x4000")
    a = ap.parse_args(argv)
    if a.make_demo_scan:
        make_demo_scan(a.make_demo_scan, a.size)
        return 0
    if not (a.scan and a.style and a.out):
        ap.error("scan, style and out are required (or --make-demo-scan PATH)")
    t = time.perf_counter()
    with connect(ClusterOptions(scheduler=a.scheduler, workers=a.workers)) as client:
        out = urst_dask.stylize(a.scan, a.style, a.out, method=a.method, axes=a.axes, alpha=a.alpha,
                                client=client, progress=True)
        if a.tif:
            urst_dask.export(out, a.tif, overwrite=True)
    print(f"done in {time.perf_counter() - t:.0f} s: {out}" + (f" and {a.tif}" if a.tif else ""))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except urst_dask.UrstError as exc:  # bad input: one line, as the urst-dask command prints it
        sys.exit(f"scientist_scan: error: {exc}")
