"""Scaling on one machine: 1 worker x 2 threads against 2 workers x 1 thread.

The same input goes through the whole pipeline (real network) on a fresh local cluster per
configuration:

* ``1w x 1t, torch 1``: one window at a time on one core: the baseline of parallel efficiency;
* ``1w x 2t``: two windows at a time in one worker process (one model, shared by two threads);
* ``2w x 1t``: two worker processes, one window each (one model per process);
* ``1w x 1t, torch 2``: one window at a time, both cores inside each convolution (for reference).

The two-slot configurations give each window one torch thread (the ``TorchThreads`` plugin:
``cores // (workers x threads)``).  For each configuration: the wall time of the ``stylize`` call
(thumbnail stage included), the tile stage (from the first task after the statistics to the end
of the last task, from the task stream), throughput in megapixels per second for both, the
compute time of each window (median, min, max; the first window of a process also builds
oneDNN's kernels) and

    speedup = baseline tile stage / tile stage,   efficiency = speedup / cores used
    (cores used = concurrent windows x torch threads per window).

The default image is 3000 x 4000 = 12 windows, an even count, so neither two-slot configuration
idles a slot in its last round (9 windows on 2 slots could reach at most 90 %).

On a shared machine each run also records the CPU time that other processes took meanwhile
(``/proc/stat`` busy time minus this benchmark's processes); a configuration whose run shared
more than 5 % of the machine is run again (``--retries``), and the least disturbed run is kept.
``--wait-quiet S`` first waits up to S seconds for an idle machine.

Run: python benchmarks/bench_scaling.py [--height 3000] [--width 4000] [--method wct16x]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from pathlib import Path

from common import SCRATCH, record, synthetic_zarr, weights_dir

# label, workers, threads per worker, torch threads per task (None: the plugin's share)
CONFIGS = (
    ("1w x 1t, torch 1", 1, 1, 1),
    ("1w x 2t", 1, 2, None),
    ("2w x 1t", 2, 1, None),
    ("1w x 1t, torch 2", 1, 1, None),
)
BASELINE = CONFIGS[0][0]


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


CONTENDED = 0.05  # share of the machine's CPU taken by other processes that spoils a run
TICK = os.sysconf("SC_CLK_TCK")


def _system_busy_s() -> float:
    """CPU seconds the whole machine has been busy (all cores) since boot."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(v) - v[3] - v[4]) / TICK  # minus idle and iowait


def _process_cpu_s(pid: int) -> float:
    """user + system CPU seconds of one process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def wait_quiet(max_wait: float, window: float = 10.0) -> float:
    """Wait (at most ``max_wait`` s) for a ``window`` in which other processes use < 5 % of the
    machine; return the share seen in the last window."""
    deadline = time.monotonic() + max_wait
    while True:
        sys0, own0 = _system_busy_s(), _process_cpu_s(os.getpid())
        time.sleep(window)
        share = ((_system_busy_s() - sys0) - (_process_cpu_s(os.getpid()) - own0)) / (window * _cores())
        if share < CONTENDED or time.monotonic() > deadline:
            return share
        print(f"waiting for a quiet machine: other processes use {share:.0%} of it", flush=True)


def _compute_spans(rec: dict) -> list[tuple[float, float]]:
    return [(s["start"], s["stop"]) for s in rec["startstops"] if s["action"] == "compute"]


def run_config(label: str, workers: int, threads: int, torch_threads: int | None, src, style, method: str,
               megapixels: float, n_windows: int) -> dict:
    from distributed import get_task_stream
    from distributed.utils import key_split

    from urst_dask import api
    from urst_dask.engine import load_count
    from urst_dask.pipeline.cluster import connect
    from urst_dask.settings import ClusterOptions

    out = SCRATCH / f"scaling-{workers}w{threads}t.zarr"
    shutil.rmtree(out, ignore_errors=True)
    opts = ClusterOptions(workers=workers, threads_per_worker=threads, torch_threads=torch_threads)
    with connect(opts) as client:
        # measured inside tasks (the executor threads), where the windows run
        tthreads = sorted(set(client.gather([client.submit(_torch_threads, pure=False)
                                             for _ in range(2 * workers * threads)])))
        pids = sorted({os.getpid(), *client.run(os.getpid).values(), *client.run(os.getpid, nanny=True).values()})
        own0, sys0 = sum(map(_process_cpu_s, pids)), _system_busy_s()
        with get_task_stream(client=client) as ts:
            t0 = time.perf_counter()
            api.stylize(str(src), style, out, method=method, weights=weights_dir(), client=client, overwrite=True)
            wall = time.perf_counter() - t0
        own_s, sys_s = sum(map(_process_cpu_s, pids)) - own0, _system_busy_s() - sys0
        loads = sorted(client.run(load_count).values())
    other_share = max(0.0, sys_s - own_s) / (wall * _cores())
    # The tile stage: every task that started after the statistics were computed.  The window
    # tasks are fused with their overlap, trim and write steps under names the optimizer picks,
    # so they are found by duration: the n longest tasks of the stage (seconds, against
    # milliseconds for the data-movement tasks).
    stats_stop = max(stop for r in ts.data if key_split(r["key"]) == "collect_stats" for _, stop in _compute_spans(r))
    tile_stage = [span for r in ts.data for span in _compute_spans(r) if span[0] >= stats_stop]
    tile_s = max(stop for _, stop in tile_stage) - min(start for start, _ in tile_stage)
    per_window = sorted(stop - start for start, stop in tile_stage)[-n_windows:]
    row = {
        "config": label, "workers": workers, "threads_per_worker": threads, "torch_threads_per_task": tthreads,
        "concurrent_windows": workers * threads, "windows": n_windows, "model_loads_per_worker": loads,
        "wall_s": round(wall, 2), "wall_mp_per_s": round(megapixels / wall, 4),
        "tile_stage_s": round(tile_s, 2), "tile_mp_per_s": round(megapixels / tile_s, 4),
        "window_compute_s": {"median": round(statistics.median(per_window), 2), "min": round(per_window[0], 2),
                             "max": round(per_window[-1], 2)},
        "cpu_s": round(own_s, 1), "other_processes_share": round(other_share, 3),
    }
    print(f"{label:18s} wall {wall:6.1f} s ({row['wall_mp_per_s']:.3f} MP/s), tile stage {tile_s:6.1f} s "
          f"({row['tile_mp_per_s']:.3f} MP/s), window median {row['window_compute_s']['median']} s, "
          f"torch threads {tthreads}, loads {loads}, other processes {other_share:.0%}", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--width", type=int, default=4000)
    ap.add_argument("--method", default="wct16x")
    ap.add_argument("--name", default=None)
    ap.add_argument("--retries", type=int, default=2, help="reruns of a configuration disturbed by other processes")
    ap.add_argument("--wait-quiet", type=float, default=0.0, help="first wait up to this many seconds for an idle machine")
    a = ap.parse_args()
    from urst_dask.synthetic import demo_style

    src = synthetic_zarr(a.height, a.width)
    style = demo_style(768)
    from urst_dask.tiling import TilePlan

    mp = a.height * a.width / 1e6
    grid = TilePlan().resolve(16)  # wct16x's size multiple
    n_windows = len(grid.axis_chunks(a.height)) * len(grid.axis_chunks(a.width))
    rows = []
    for label, w, t, tt in CONFIGS:
        if a.wait_quiet:
            wait_quiet(a.wait_quiet)
        tries = [run_config(label, w, t, tt, src, style, a.method, mp, n_windows)]
        while tries[-1]["other_processes_share"] > CONTENDED and len(tries) <= a.retries:
            if a.wait_quiet:
                wait_quiet(a.wait_quiet)
            tries.append(run_config(label, w, t, tt, src, style, a.method, mp, n_windows))
        best = min(tries, key=lambda r: r["other_processes_share"])
        best["runs"] = len(tries)
        rows.append(best)
    base = next(r for r in rows if r["config"] == BASELINE)
    for r in rows:
        speedup = base["tile_stage_s"] / r["tile_stage_s"]
        r["cores_used"] = r["concurrent_windows"] * max(r["torch_threads_per_task"])
        r["speedup_vs_baseline"] = round(speedup, 3)
        r["parallel_efficiency"] = round(speedup / r["cores_used"], 3)
        r["window_slowdown_vs_baseline"] = round(r["window_compute_s"]["median"] / base["window_compute_s"]["median"], 3)
    print("\nconfig              tile MP/s  speedup  efficiency  window slowdown")
    for r in rows:
        print(f"{r['config']:18s} {r['tile_mp_per_s']:10.3f} {r['speedup_vs_baseline']:8.2f} "
              f"{r['parallel_efficiency']:11.0%} {r['window_slowdown_vs_baseline']:16.2f}")
    record(a.name or f"scaling-{a.method}", {
        "method": a.method, "height": a.height, "width": a.width, "megapixels": mp, "baseline": BASELINE,
        "note": "tile stage = start of the first task after the statistics to the end of the last task (task stream); wall includes the "
                "thumbnail stage (one task: it does not parallelize); efficiency = speedup over the "
                "one-core baseline / cores used (concurrent windows x torch threads); window_slowdown = median window compute time "
                "relative to the baseline's (contention for memory bandwidth and caches); "
                "other_processes_share = CPU taken by other processes during the run / (wall x cores)",
        "rows": rows,
    })


if __name__ == "__main__":
    main()
