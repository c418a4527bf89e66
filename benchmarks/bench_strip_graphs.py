"""Orchestration: the graph work of the tile stage's strips, per strip and in all, without
running a task: each strip as blocks of the whole lazy graph (before) against the write graph
expanded once and culled per strip on the client (:mod:`urst_dask.pipeline.culling`).

For each strip it builds what ``Client.compute`` sends and what the scheduler expands
(``collections_to_expr(...).optimize().__dask_graph__()``), the work the workers wait for
between strips.  The network is ``passthrough`` on a lazy zero image: the graph is the same
whatever the network.

Run: python benchmarks/bench_strip_graphs.py --sides 800 1600 3200 --stride 32
"""

from __future__ import annotations

import argparse
import time

import dask.array as da
import numpy as np
from common import record
from dask.base import collections_to_expr

from urst_dask.io import chunkio
from urst_dask.pipeline.array import stylize_array
from urst_dask.pipeline.culling import StripGraphs
from urst_dask.pipeline.write import missing_blocks, strips, write_blocks
from urst_dask.synthetic import demo_style


def _sent(items: list) -> int:
    """Keys of the graph the scheduler expands for ``items`` (optimized, as Client.compute does)."""
    return len(collections_to_expr(items, True).optimize().__dask_graph__())


def measure(side: int, stride: int, max_strips: int) -> dict:
    image = da.zeros((side, side, 3), dtype=np.uint8, chunks=(4096, 4096, 3))
    stylized = stylize_array(image, demo_style(64, seed=1), method="passthrough", stride=stride, margin=stride // 4)
    plan = strips(missing_blocks(stylized, stride, set()), stylized.numblocks[0], 2)
    sample = plan[:max_strips]
    t = time.perf_counter()
    keys_before = sum(_sent(write_blocks(stylized, "/nowhere", s)) for s in sample)
    before = (time.perf_counter() - t) / len(sample)
    t = time.perf_counter()
    graphs = StripGraphs(write_blocks(stylized, "/nowhere")[0])
    once = time.perf_counter() - t
    t = time.perf_counter()
    keys_after = sum(_sent(graphs.strip(s)) for s in sample)
    after = (time.perf_counter() - t) / len(sample)
    row = {"side": side, "stride": stride, "windows": stylized.numblocks[0] * stylized.numblocks[1],
           "strips": len(plan), "strips_timed": len(sample),
           "before_s_per_strip": round(before, 3), "before_all_s": round(before * len(plan), 1),
           "before_keys_per_strip": keys_before // len(sample),
           "after_expand_once_s": round(once, 2), "after_s_per_strip": round(after, 3),
           "after_all_s": round(once + after * len(plan), 1), "after_keys_per_strip": keys_after // len(sample)}
    print(row, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sides", type=int, nargs="+", default=[800, 1600, 3200])
    ap.add_argument("--stride", type=int, default=32)
    ap.add_argument("--max-strips", type=int, default=5, help="strips timed per size (the rest extrapolated)")
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    chunkio.image_token = lambda path: "bench"  # graphs only: no store is opened
    rows = [measure(side, a.stride, a.max_strips) for side in a.sides]
    record(f"strip-graphs{a.tag}", {"method": "passthrough (graph only, no task run)", "rows": rows})


if __name__ == "__main__":
    main()
