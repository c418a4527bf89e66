"""Stage: the out-of-core thumbnail reduction alone (no network), at growing resolutions.

Run: python benchmarks/bench_thumbnail.py --sizes 4000 8000
"""

from __future__ import annotations

import argparse
import time

import dask
import dask.array as da
import zarr
from common import record, synthetic_zarr

from urst_dask.pipeline.conditioning import thumbnail


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[2000, 4000, 8000])
    a = ap.parse_args()
    rows = []
    for side in a.sizes:
        arr = da.from_zarr(zarr.open_array(str(synthetic_zarr(side, side)), mode="r"))
        t = time.perf_counter()
        thumb = dask.compute(thumbnail(arr, 1024), scheduler="threads")[0]
        wall = time.perf_counter() - t
        rows.append({"side": side, "thumb_shape": list(thumb.shape), "wall_s": round(wall, 2),
                     "mp_per_s": round(side * side / 1e6 / wall, 2)})
        print(f"{side}^2 -> {thumb.shape}: {wall:.2f} s ({side * side / 1e6 / wall:.1f} MP/s)")
    record("thumbnail", {"scheduler": "threads", "rows": rows})


if __name__ == "__main__":
    main()
