"""How much of the eager thumbnail pass is page faults, and what glibc's mmap threshold changes.

Every activation of the wct16x thumbnail pass at full thumbnail size (1824 x 1024 x 16 float32:
120 MB) is larger than glibc's largest dynamic mmap threshold (32 MB), so each one is a fresh
``mmap``, faulted in page by page, and unmapped when freed.  This runs the pass (the pipeline's
``collect_stats``, eager float32, 2 torch threads) four times in a fresh process per mode,
modes alternated:

* ``default``: glibc as the pipeline's workers run it (dynamic threshold);
* ``heap``: ``mallopt(M_MMAP_THRESHOLD, 1 GiB)`` and ``M_TRIM_THRESHOLD`` 1 GiB, so freed
  activations stay in the heap and are reused;
* ``thp``: PyTorch's ``THP_MEM_ALLOC_ENABLE=1``: its CPU allocator aligns blocks of 2 MiB or more
  to 2 MiB and asks for transparent huge pages (``madvise``), so a fresh activation faults in
  2-MiB pages instead of 4-KiB ones (where the kernel's THP mode is ``madvise`` or ``always``).

``--thread`` runs the passes on a second thread, as a Dask worker's task thread does: glibc
gives such a thread its own arena, whose heaps are at most 64 MB, so ``heap`` cannot keep the
activations there.

Recorded per pass: wall time, user and system CPU time, minor page faults, RSS after it; per
process: peak RSS.  Nothing in the pipeline uses ``heap`` (yet): this measures the lead.

``--window 1136`` times an eager window (the default backend) with the thumbnail's statistics instead.

Run: flock -x /tmp/urst-cpu.lock python benchmarks/bench_thumbnail_allocator.py --tag=-amx
"""

from __future__ import annotations

import argparse
import ctypes
import json
import resource
import subprocess
import sys
import time

from common import record, weights_dir

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


MODES = ("default", "heap", "thp")


def one_process(mode: str, weights: str, passes: int, window: int = 0, thread: bool = False) -> dict:
    if thread:
        import threading

        box: dict = {}
        t = threading.Thread(target=lambda: box.update(one_process(mode, weights, passes, window)))
        t.start()
        t.join()
        return {**box, "thread": True}
    if mode == "thp":
        import os

        os.environ["THP_MEM_ALLOC_ENABLE"] = "1"  # read by torch's CPU allocator at its first allocation
    if mode == "heap":
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
    import numpy as np
    import torch

    from urst_dask import preprocess as pp
    from urst_dask.engine.models import ModelSpec, get_model

    torch.set_num_threads(2)
    model = get_model(ModelSpec("wct16x", weights))
    rng = np.random.default_rng(0)
    x = pp.hwc_to_nchw(rng.random((1024, 1824, 3), dtype=np.float32), model.device)
    style = model.prepare_style(pp.resize_center_crop(rng.random((512, 512, 3), dtype=np.float32), 256))
    rows = []
    with torch.inference_mode():
        if window:  # an eager window (the default backend) with this thumbnail's statistics
            from urst_dask.engine import forward

            stats = model.collect_stats(x, style, 1.0)[1]
            x = pp.hwc_to_nchw(rng.random((window, window, 3), dtype=np.float32), model.device)
        for _ in range(passes):
            r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            if window:
                forward(model, x, style, stats)
            else:
                model.collect_stats(x, style, 1.0)
            r1, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - t0
            with open("/proc/self/statm") as f:
                rss = int(f.read().split()[1]) * resource.getpagesize() / 2**20
            with open("/proc/self/smaps_rollup") as f:
                anon_huge = next((int(ln.split()[1]) for ln in f if ln.startswith("AnonHugePages")), 0)
            rows.append({"anon_huge_mb_after": round(anon_huge / 1024), "wall_s": round(wall, 2), "user_s": round(r1.ru_utime - r0.ru_utime, 2),
                         "system_s": round(r1.ru_stime - r0.ru_stime, 2), "minor_faults": r1.ru_minflt - r0.ru_minflt,
                         "rss_after_mb": round(rss)})
    return {"mode": mode, "passes": rows, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--passes", type=int, default=4)
    ap.add_argument("--tag", default="")
    ap.add_argument("--window", type=int, default=0, help="time an eager window of this side instead of the thumbnail pass")
    ap.add_argument("--thread", action="store_true", help="run the passes on a second thread (as a Dask worker does)")
    ap.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {MODES}")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(one_process(a.child, str(weights_dir()), a.passes, a.window, a.thread)))
        return
    runs = []
    for _ in range(a.rounds):
        for mode in a.modes.split(","):
            out = subprocess.run([sys.executable, __file__, "--child", mode, "--passes", str(a.passes), "--window", str(a.window),
                                  *(["--thread"] if a.thread else [])],
                                 capture_output=True, text=True, check=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
            first = runs[-1]["passes"][0]
            print(f"{mode:8s} first pass {first['wall_s']} s (system {first['system_s']} s, {first['minor_faults']} "
                  f"faults); later {[p['wall_s'] for p in runs[-1]['passes'][1:]]} s; peak {runs[-1]['peak_rss_mb']} MB",
                  flush=True)
    what = f"window-{a.window}" if a.window else "thumbnail"
    record(f"{what}-allocator-wct16x{'-thread' if a.thread else ''}{a.tag}", {
        "command": " ".join(["python", "benchmarks/bench_thumbnail_allocator.py", *sys.argv[1:]]),
        "code": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
        "conditions": "modes alternated, one fresh process each; a 1024 x 1824 random thumbnail (with --window: its "
                      "statistics, and a random window of that side), wct16x, eager float32"
                      + ("; passes on a second thread" if a.thread else ""),
        "thp": open("/sys/kernel/mm/transparent_hugepage/enabled").read().strip(),
        "runs": runs})


if __name__ == "__main__":
    main()
