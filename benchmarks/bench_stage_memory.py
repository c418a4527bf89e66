"""Worker memory per stage: the one worker's RSS sampled every 0.2 s through a run, and its peak
before the tile stage (thumbnail, statistics), in the tile stage and in the pyramid.

Shows what bounds the tile stage's memory: strips of block columns (``pipeline.write.strips``),
so the peak grows with the image's width up to one strip (16 columns when blending) and not
beyond.  Each size runs in its own process:

    python benchmarks/bench_stage_memory.py --sizes 4000x4000,4000x16000,4000x40000 --method passthrough
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from typing import Any

import dask.array as da
import zarr
from common import SCRATCH, record, synthetic_zarr, weights_dir

import urst_dask.api as api_module
from urst_dask import api
from urst_dask.pipeline.cluster import connect
from urst_dask.settings import ClusterOptions
from urst_dask.synthetic import demo_style


def _rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _marking(marks: dict[str, float], name: str, fn: Any) -> Any:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        marks[name] = time.perf_counter()
        return fn(*args, **kwargs)
    return wrapped


def _timeline(samples: list[tuple[float, float]], t0: float, step: float) -> list[list[float]]:
    """The samples as ``[seconds since t0, max RSS MB]`` per ``step``-second bin."""
    bins: dict[int, float] = {}
    for t, m in samples:
        k = int((t - t0) // step)
        bins[k] = max(bins.get(k, 0.0), m)
    return [[round(k * step, 1), round(m, 1)] for k, m in sorted(bins.items())]


def one(height: int, width: int, method: str, memory: str, backend: str | None, stats: str | None,
        timeline: float | None = None) -> dict:
    """One run on the top-left ``height`` x ``width`` of the 40000 x 25000 synthetic image
    (``stats``: a finished output store whose statistics replace the thumbnail pass;
    ``timeline``: also return the RSS in bins of that many seconds, with the stage starts)."""
    content = da.from_zarr(zarr.open_array(str(synthetic_zarr(25000, 40000)), mode="r"))[:height, :width]
    marks: dict[str, float] = {}
    api_module.write_tiles = _marking(marks, "tiles", api_module.write_tiles)  # type: ignore[attr-defined]
    api_module.write_pyramid = _marking(marks, "pyramid", api_module.write_pyramid)  # type: ignore[attr-defined]
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    out = SCRATCH / "out-stage-memory.zarr"
    with connect(ClusterOptions(workers=1, threads_per_worker=1, memory=memory)) as client:
        pid = next(iter(client.run(os.getpid).values()))

        def sample() -> None:
            while not stop.is_set():
                rss = _rss_mb(pid)
                if rss is not None:
                    samples.append((time.perf_counter(), rss))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.perf_counter()
        extra: dict[str, Any] = {} if backend is None else {"backend": backend}
        api.stylize(content, demo_style(768), out, method=method, weights=weights_dir(), client=client,
                    overwrite=True, progress=False, stats=stats, **extra)
        wall = time.perf_counter() - t0
        stop.set()
        sampler.join()
    shutil.rmtree(out, ignore_errors=True)
    t_tiles, t_pyr = marks.get("tiles", 0.0), marks.get("pyramid", float("inf"))

    def peak(lo: float, hi: float) -> float:
        return round(max((m for t, m in samples if lo <= t < hi), default=0.0), 1)

    row = {"height": height, "width": width, "columns": -(-width // 1000), "method": method, "memory": memory,
           "backend": backend or "default", "stats_from": stats,
           "wall_s": round(wall, 1), "peak_rss_mb_before_tiles": peak(0.0, t_tiles),
           "peak_rss_mb_tiles": peak(t_tiles, t_pyr), "peak_rss_mb_pyramid": peak(t_pyr, float("inf"))}
    if timeline:
        row["timeline_step_s"] = timeline
        row["stage_start_s"] = {k: round(v - t0, 1) for k, v in marks.items()}
        row["timeline"] = _timeline(samples, t0, timeline)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="4000x4000,4000x16000,4000x40000", help="HxW,HxW,...")
    ap.add_argument("--method", default="passthrough")
    ap.add_argument("--memory", default="fast", choices=["fast", "compact"])
    ap.add_argument("--backend", default=None, help="window backend (default: the library's)")
    ap.add_argument("--stats", default=None, help="statistics from this finished store instead of a thumbnail pass")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child process: one size, JSON on stdout
    ap.add_argument("--timeline", type=float, default=None, metavar="SECONDS",
                    help="also record the worker's RSS over time, max per bin of this many seconds")
    ap.add_argument("--name", default="stage-memory")
    a = ap.parse_args()
    if a.one:
        h, w = (int(v) for v in a.one.split("x"))
        print(json.dumps(one(h, w, a.method, a.memory, a.backend, a.stats, a.timeline)))
        return
    rows = []
    for size in a.sizes.split(","):
        cmd = [sys.executable, __file__, "--one", size, "--method", a.method, "--memory", a.memory]
        cmd += ["--backend", a.backend] if a.backend else []
        cmd += ["--stats", a.stats] if a.stats else []
        cmd += ["--timeline", str(a.timeline)] if a.timeline else []
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        print({k: v for k, v in row.items() if k != "timeline"}, flush=True)
        rows.append(row)
    record(a.name, {"runs": rows, "workers": 1, "threads_per_worker": 1})


if __name__ == "__main__":
    main()
