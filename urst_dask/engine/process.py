"""Per-process settings of a worker: torch's thread pool, glibc's mmap threshold, heap trimming,
torch's huge-page allocations, and ending the process without tearing its modules down."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import functools
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import NoReturn

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
COMPACT_MMAP_THRESHOLD = 1 << 20
RELEASED_MMAP_THRESHOLD = 32 << 20  # glibc's ceiling for its dynamic threshold (64-bit): arrays below it stay in the heap
MALLOC: dict[str, int] = {}  # what set_mmap_threshold applied last in this process
MMAP_THRESHOLDS: list[int] = []  # and every value it applied, in order
HUGE_PAGES = "THP_MEM_ALLOC_ENABLE"  # torch's CPU allocator reads it once, at its first allocation


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The process's C library if it is glibc (it has ``mallopt`` and ``malloc_trim``), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - AttributeError where they are missing (musl, macOS)
    except (OSError, AttributeError):
        return None
    return libc


def set_mmap_threshold(nbytes: int) -> bool:
    """Fix glibc's mmap threshold for this process (``mallopt(M_MMAP_THRESHOLD)``): every
    allocation of ``nbytes`` or more is mapped on allocation and unmapped on free, so freed
    arrays never stay resident as holes in the heap.  Returns False where the C library is not
    glibc (nothing changed).

    Why: by default glibc raises the threshold to the largest freed block (up to 32 MiB), so a
    worker's few-MB window arrays live in the heap; over a thousand windows the heap's free
    holes keep a worker's peak RSS creeping up with the image size.  The price is page faults
    on every large allocation (measured on a 2-core Xeon: wct16x windows 12-20 % slower, the
    I/O-and-tiling pass 48 % slower; see :class:`urst_dask.pipeline.plugins.CompactMemory`)."""
    libc = _glibc()
    if libc is None:
        return False
    ok = bool(libc.mallopt(ctypes.c_int(_M_MMAP_THRESHOLD), ctypes.c_int(int(nbytes))))
    if ok:
        MALLOC["mmap_threshold"] = int(nbytes)
        MMAP_THRESHOLDS.append(int(nbytes))
    return ok


def trim_heap() -> bool:
    """Hand the free pages inside glibc's heaps back to the OS now (``malloc_trim(0)``); returns
    False where the C library is not glibc (nothing done).

    Why: in the default allocator mode, windows' few-MB arrays are served from the heap, and
    over hundreds of windows its free holes grow (a gigapixel's worker: 230 MB in use, 300 MB
    free and resident, measured with ``mallinfo2``).  One call gave 248 MB back in 27 ms."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(ctypes.c_size_t(0))
    return True


def huge_pages_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment entry that turns on transparent huge pages for torch's CPU tensors, for a
    process that has not started torch yet; empty where ``environ`` (default: this process's)
    already sets it (``THP_MEM_ALLOC_ENABLE=0`` turns it off).

    With ``THP_MEM_ALLOC_ENABLE=1`` torch aligns its blocks of 2 MiB and more to 2 MiB and asks
    the kernel for huge pages (``madvise``), where the kernel's THP mode is ``madvise`` or
    ``always``.  An eager window's activations (tens of MB each, larger than glibc's largest
    dynamic mmap threshold) are otherwise mapped afresh and faulted in 4 KiB at a time, on every
    window.  Measured on a 2-core Xeon, wct16x eager float32 on a worker-like thread
    (``benchmarks/bench_thumbnail_allocator.py --thread``): one 1136-px window 3.12-3.66 s ->
    2.31-2.79 s, 0.6 million page faults -> 34 thousand, peak RSS unchanged (781 MB); the
    thumbnail pass 5.1-5.5 s -> 4.2-5.0 s."""
    environ = os.environ if environ is None else environ
    return {} if HUGE_PAGES in environ else {HUGE_PAGES: "1"}


def available_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def torch_threads_for(workers_threads: int, cpus: int | None = None) -> int:
    """Intra-op threads per task so that ``workers_threads`` concurrent tasks fill the CPUs."""
    if cpus is None:
        cpus = available_cpus()
    return max(1, cpus // max(1, workers_threads))


_task_threads: list[int] = []  # the worker's planned torch threads per task (set_torch_threads), if any


def set_torch_threads(n: int) -> None:
    """torch's intra-op pool (the compiled backends read it too: OpenVINO gets as many threads),
    on the calling thread, and the count every task thread takes on its next network call
    (:func:`use_task_threads`)."""
    import torch  # here, not at the top: the command line's cluster start imports this module without torch

    _task_threads[:] = [max(1, int(n))]
    torch.set_num_threads(_task_threads[0])


def use_task_threads() -> None:
    """Give the calling thread the planned count.  torch keeps a count per thread, taken at the
    thread's first use: on a cluster that outlives a run, a worker's task threads that ran an
    earlier run's networks kept that run's count (2 threads each on a 2-core host where the
    next run planned 1, and 1-level differences in the picture)."""
    if not _task_threads:
        return
    import torch

    if torch.get_num_threads() != _task_threads[0]:
        torch.set_num_threads(_task_threads[0])


@contextlib.contextmanager
def all_cpus() -> Iterator[int]:
    """Widen torch's intra-op pool, on the calling thread only, to every CPU this process may use
    (yields that count), and restore the thread's count afterwards, also on error.

    For a task the rest of its run waits on: the thumbnail statistics and the style encoding.
    While they run, no window of that run can start, so the other workers' CPUs are idle; a
    worker's usual share (:func:`torch_threads_for`: 1 thread per task with 2 workers on 2 CPUs)
    would leave them so.  torch keeps the count per thread (OpenMP's), so the worker's other task
    threads that have used torch keep theirs (a thread's first use takes the process's count of
    that moment).  Measured on a 2-core Xeon, wct16x, eager float32, the 1820 x 1024
    thumbnail of a 16:9 photograph: statistics 3.3-4.3 s on 1 thread, 1.7-2.4 s on 2."""
    import torch  # here, not at the top: see set_torch_threads

    before = torch.get_num_threads()
    n = max(before, available_cpus())
    if n != before:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def freeze_gc() -> None:
    """Move every object alive now out of the garbage collector's view (``gc.freeze``), once
    the long-lived ones are made: the modules torch, distributed and numpy import (100-200
    thousand objects), and a worker's network.  Each full collection walked them all again: a
    review measured 0.4-0.6 s of collection per process in a default run, one full pass of
    0.12-0.16 s between the tile graph's arrival on the worker and its first window, and with
    the freeze, the first window 0.1-0.2 s sooner.  Frozen objects are never freed by the cyclic
    collector, so call this only after imports and model loads, not around per-task data; and
    only in processes urst-dask owns (the command line, which unfreezes before a failed exit so
    that the modules are torn down as usual, and the embedded cluster's workers)."""
    import gc

    gc.freeze()


def exit_without_teardown() -> NoReturn:
    """End this process with status 0 as the interpreter would end it, less the teardown of its
    modules: thread pools are told to stop and the threads that are not daemons are joined, the
    ``atexit`` handlers run (scratch folders, open readers, logging, Dask's and
    multiprocessing's clean-up), the standard streams are flushed, then ``os._exit(0)``.

    With torch imported, the skipped teardown (its C++ objects and the module dictionaries)
    takes 0.5-0.9 s on a 2-core Xeon, for no effect on any file the process wrote.  For a
    process whose work has succeeded; a failure should exit the usual way."""
    # What the interpreter does first at exit: tell the thread pools to stop (their idle threads
    # are not daemons), then join the threads that are not daemons.  Joining them without the
    # first step waits for ever on a pool nobody shut down.  A second call returns at once.
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(0)


def exit_without_teardown_at_exit() -> None:
    """When this process's interpreter exits, end it with :func:`exit_without_teardown`: the
    ``atexit`` handlers registered before this call still run, after it.  Idempotent.

    For a process whose remaining life is a clean exit (a worker process its nanny closed);
    the exit status is then 0 whatever ``sys.exit`` was given."""
    atexit.unregister(_quick_exit_handler)
    atexit.register(_quick_exit_handler)


def _quick_exit_handler() -> None:
    atexit.unregister(_quick_exit_handler)  # then the handlers registered before run, and the process ends
    exit_without_teardown()
