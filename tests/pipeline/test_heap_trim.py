"""Workers hand the heap's free pages back to the OS while they run (``HeapTrim``), so a long
run's resident memory follows what it uses, not the holes its freed windows left."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from distributed import Client, LocalCluster

from urst_dask.pipeline.cluster import connect
from urst_dask.pipeline.plugins import HeapTrim
from urst_dask.settings import ClusterOptions

glibc_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")

# A heap with 128 MB of freed 64-KB blocks under one live block (so the heap's top cannot
# shrink): resident before the trim, gone after it.
_HOLES = textwrap.dedent("""
    import ctypes, json
    from urst_dask.engine.process import trim_heap

    def rss():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    blocks = [libc.malloc(64 * 1024) for _ in range(2048)]
    for b in blocks:
        ctypes.memset(b, 1, 64 * 1024)
    for b in blocks[:-1]:
        libc.free(ctypes.c_void_p(b))
    before = rss()
    ok = trim_heap()
    print(json.dumps({"ok": ok, "before": before, "after": rss()}))
""")


@glibc_only
def test_trim_heap_returns_the_free_holes_to_the_os():
    import json

    out = subprocess.run([sys.executable, "-c", _HOLES], capture_output=True, text=True, timeout=120, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["ok"] is True
    assert got["before"] - got["after"] > 100, got  # of the 128 MB of holes


def _trims(dask_worker) -> int:
    return dask_worker.plugins[HeapTrim.name].trims


@pytest.mark.parametrize("interval", [0.25, 3600.0])
def test_heap_trim_runs_when_tasks_finish_at_most_once_per_interval(interval):
    """20 tasks of 0.1 s: a trim follows a finished task once ``interval`` has passed since the
    last one, so there are at least one and at most elapsed / interval of them (none with an
    hour)."""
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        c.register_plugin(HeapTrim(interval=interval))
        t0 = time.monotonic()
        c.gather([c.submit(time.sleep, 0.1, pure=False) for _ in range(20)])
        elapsed = time.monotonic() - t0
        trims = list(c.run(_trims).values())
    assert len(trims) == 1, trims
    if interval > elapsed:
        assert trims[0] == 0
    else:
        assert 1 <= trims[0] <= min(20, elapsed / interval + 1), (trims, elapsed)


def test_every_cluster_the_pipeline_starts_trims_its_heap():
    with connect(ClusterOptions(workers=1, processes=False)) as c:
        registered = c.run(lambda dask_worker: HeapTrim.name in dask_worker.plugins)
    assert list(registered.values()) == [True]
