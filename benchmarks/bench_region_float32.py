"""A stored output's top-left region against float32 with the store's own statistics.

For a gigapixel run under ``--precision auto`` (bf16 where its probe passed), rerunning the
whole image in float32 takes three times as long.  This runs the top-left ``--side`` +
1000 px of the source in float32 with the store's statistics (so the windows see the same
normalization) and compares the top-left ``--side`` px, away from the region's own border:
PSNR and the largest difference in the output's units, and a 600-px crop of both side by side
across the tile lines at (1000, 1000) as a PNG in the scratch folder.

Run: flock -x /tmp/urst-cpu.lock python benchmarks/bench_region_float32.py \
       /tmp/urst-bench/out-giga-1gp-wct16x-auto-amx-2.zarr /tmp/urst-bench/synthetic-25000x40000-s0.zarr \
       --name giga-1gp-wct16x-auto-amx-vs-float32
"""

from __future__ import annotations

import argparse
import time

import dask.array as da
import numpy as np
import zarr
from common import SCRATCH, record, weights_dir
from PIL import Image

import urst_dask
from urst_dask.io import store
from urst_dask.metrics.quality import psnr
from urst_dask.synthetic import demo_style


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("output", help="the stored run (an urst-dask output store)")
    ap.add_argument("source", help="its source, a Zarr array (H, W, C)")
    ap.add_argument("--side", type=int, default=3000)
    ap.add_argument("--style", default=None, help="the run's painting (default: the synthetic demo style)")
    ap.add_argument("--name", required=True)
    a = ap.parse_args()
    attrs = store.read_attrs(a.output)
    reach = a.side + 1000
    content = da.from_zarr(zarr.open_array(a.source, mode="r"))[:reach, :reach]
    out = SCRATCH / f"{a.name}.zarr"
    t = time.perf_counter()
    urst_dask.stylize(content, a.style or demo_style(768), out, method=attrs["method"], weights=weights_dir(),
                      stats=a.output, backend="openvino", precision="float32", overwrite=True, workers=1)
    wall = time.perf_counter() - t
    ref = store.open_output(a.output)[: a.side, : a.side].compute()
    f32 = store.open_output(out)[: a.side, : a.side].compute()
    Image.fromarray(np.concatenate([ref[700:1300, 700:1300], f32[700:1300, 700:1300]], axis=1)).save(
        SCRATCH / f"{a.name}.png")
    record(a.name, {"output": a.output, "precision_auto": attrs.get("precision_auto"), "side": a.side,
                    "float32_region_wall_s": round(wall, 1), "psnr_db": round(psnr(ref, f32), 2),
                    "max_abs_diff": int(np.abs(ref.astype(int) - f32.astype(int)).max())})


if __name__ == "__main__":
    main()
