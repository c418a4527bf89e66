"""The worker plugins a run registers: torch's thread pool sized to the worker's share of the
CPUs (:class:`TorchThreads`), the heap trimmed as tasks finish (:class:`HeapTrim`), glibc's mmap
threshold fixed for ``memory="compact"`` (:class:`CompactMemory`), and the embedded cluster's
worker processes ending without teardown (:class:`QuickExit`).  Connecting and registering them
is :mod:`urst_dask.pipeline.cluster`'s.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from distributed.comm import get_address_host
from distributed.diagnostics.plugin import WorkerPlugin

from ..engine.process import (
    COMPACT_MMAP_THRESHOLD,
    RELEASED_MMAP_THRESHOLD,
    exit_without_teardown_at_exit,
    freeze_gc,
    set_mmap_threshold,
    set_torch_threads,
    torch_threads_for,
    trim_heap,
)


class TorchThreads(WorkerPlugin):
    """Sets torch's thread count once per worker process.

    ``n``: threads per task; by default the worker's share of its machine's CPUs, counting the
    threads of every worker on the same host (``host_threads``, known when the plugin is
    registered; a worker on a host not listed there counts its own threads only).  Several
    ``dask worker`` processes on one node therefore do not each take every core.
    """

    name = "urst-dask-torch-threads"

    def __init__(self, n: int | None = None, host_threads: dict[str, int] | None = None) -> None:
        self.n = n
        self.host_threads = dict(host_threads or {})

    def setup(self, worker: Any) -> None:
        _warn_gpu_without_cuda(worker)
        if self.n:
            set_torch_threads(self.n)
        else:
            own = worker.state.nthreads
            total = max(own, self.host_threads.get(get_address_host(worker.address), own))
            set_torch_threads(torch_threads_for(total))


class QuickExit(WorkerPlugin):
    """Once its worker has closed, an embedded cluster's worker process ends without tearing its
    modules down (:func:`urst_dask.engine.process.exit_without_teardown_at_exit`); from its
    start, the collector leaves the objects of its imports alone (:func:`~urst_dask.engine.process.freeze_gc`).

    The nanny waits for the process to end before the cluster counts as closed, and with torch
    imported that teardown took most of the run's "cluster shutdown" (0.9 s on a 2-core Xeon).
    Never in the process that registered it (``client_pid``: a cluster of in-process workers),
    and registered for the embedded cluster's worker processes only, never a user's workers."""

    name = "urst-dask-quick-exit"

    def __init__(self, client_pid: int) -> None:
        self.client_pid = client_pid

    def setup(self, worker: Any) -> None:
        if os.getpid() != self.client_pid:  # torch and distributed are imported for the process's life
            freeze_gc()

    def teardown(self, worker: Any) -> None:
        if os.getpid() != self.client_pid:
            exit_without_teardown_at_exit()


class CompactMemory(WorkerPlugin):
    """Fixes glibc's mmap threshold in each worker process (``memory="compact"``).

    Measured with ``benchmarks/bench_gigapixel.py`` (I/O-and-tiling pass, 2 workers x 1 thread,
    1000 windows of a 1 GP image against 16 of a 16 MP one, 2-core Xeon): worker peak RSS
    405 / 410 MB against 367 / 361 MB (+12 %) with it; 540 / 566 MB against 428 / 503 MB
    (+13 % to +26 %) without.  The price: that pass took 331 s instead of 224 s, and a wct16x
    window 12-20 % longer.  See :func:`urst_dask.engine.process.set_mmap_threshold`.
    """

    name = "urst-dask-compact-memory"

    def __init__(self, threshold: int = COMPACT_MMAP_THRESHOLD, run: str = "") -> None:
        self.threshold = threshold
        if run:  # one plugin per run on a shared cluster: the first run to end must not release the others'
            self.name = f"{CompactMemory.name}-{run}"

    def setup(self, worker: Any) -> None:
        if not set_mmap_threshold(self.threshold):
            logging.getLogger("urst_dask").warning("memory='compact' needs glibc; worker %s keeps its allocator",
                                                   worker.address)

    def teardown(self, worker: Any) -> None:
        """Unregistered from a cluster that outlives the run (``scheduler=``, ``client=``): the
        worker goes back to heap-served arrays, unless another run's plugin is still there.
        glibc cannot resume its dynamic threshold, so it is fixed at that threshold's ceiling,
        where the default mode ends up anyway."""
        plugins = getattr(worker, "plugins", {}) or {}
        if not any(n.startswith(CompactMemory.name) and n != self.name for n in plugins):
            set_mmap_threshold(RELEASED_MMAP_THRESHOLD)


class HeapTrim(WorkerPlugin):
    """Returns the heap's free pages to the OS (:func:`urst_dask.engine.process.trim_heap`)
    when a task finishes, at most once every ``interval`` seconds.

    The default allocator mode keeps freed window arrays in the heap for speed, and over a
    long run its holes grow: a 1-gigapixel wct16x run's worker went from 860 to 1040 MB with
    230 MB in use, and one trim brought it back to 793 MB.  A trim costs tens of ms, so every
    ``interval`` seconds it is a fraction of a percent of a worker's time.
    """

    name = "urst-dask-heap-trim"

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self.last = 0.0
        self.trims = 0

    def setup(self, worker: Any) -> None:
        self.last = time.monotonic()

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if start == "executing" and finish == "memory" and time.monotonic() - self.last >= self.interval:
            self.trims += trim_heap()
            self.last = time.monotonic()


def _warn_gpu_without_cuda(worker: Any) -> None:
    """A worker that advertises a ``GPU`` resource but has no CUDA device would run every
    network task on its CPU, silently and slowly: say so in its log."""
    import torch

    if (getattr(worker.state, "total_resources", {}) or {}).get("GPU") and not torch.cuda.is_available():
        logging.getLogger("urst_dask").warning(
            "worker %s advertises GPU=%g but torch sees no CUDA device (torch %s): network tasks will run on its CPU",
            worker.address, worker.state.total_resources["GPU"], torch.__version__)
