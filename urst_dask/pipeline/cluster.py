"""Connecting to a Dask cluster: an embedded local one by default, or any scheduler.

The worker plugin sizes torch's intra-op thread pool to the worker's share of the CPUs, so
``workers x threads_per_worker`` concurrent tasks do not oversubscribe the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import signal
import threading
import time
import warnings
from concurrent.futures import CancelledError
from typing import TYPE_CHECKING, Any, Iterator

import dask
from distributed import Client, KilledWorker, LocalCluster
from distributed.comm import get_address_host
from distributed.comm.core import CommClosedError
from distributed.scheduler import NoWorkerError

from ..engine import timing
from ..engine.process import huge_pages_environ, torch_threads_for
from ..errors import ParameterError, ParameterTypeError, SchedulerError
from ..settings import ClusterOptions, MemoryMode
from .plugins import CompactMemory, HeapTrim, QuickExit, TorchThreads

if TYPE_CHECKING:
    from .earlystart import EarlyCluster

__all__ = ["ClusterOptions", "check_scheduler", "connect", "gpu_resources", "quiet_logging"]


@contextlib.contextmanager
def _compact_for_the_run(client: Client, options: ClusterOptions) -> Iterator[None]:
    """``memory="compact"`` on a cluster that is not ours: the plugin only while the run lasts."""
    if options.memory is not MemoryMode.COMPACT:
        yield
        return
    plugin = CompactMemory(run=secrets.token_hex(4))
    client.register_plugin(plugin)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # a cluster gone meanwhile has no plugin left to remove
            client.unregister_worker_plugin(plugin.name)


def _register(client: Client, options: ClusterOptions, host_threads: dict[str, int] | None = None,
              compact: bool = True) -> None:
    plugins = [TorchThreads(options.torch_threads, host_threads), HeapTrim()]
    if compact and options.memory is MemoryMode.COMPACT:
        plugins.append(CompactMemory())
    for plugin in plugins:
        try:
            client.register_plugin(plugin)
        except Exception as exc:  # noqa: BLE001 - a worker's own error, whatever it is, as one line
            why = " ".join(str(exc).split())[:300] or type(exc).__name__
            where = f"scheduler={options.scheduler!r}: " if options.scheduler else ""
            raise SchedulerError(f"{where}a worker could not set up urst-dask ({why}); its Python environment "
                                 "must have urst-dask installed, the same version as here") from exc


def _host_threads(client: Client) -> dict[str, int]:
    """``{host: threads of all its workers}`` for the workers connected now."""
    totals: dict[str, int] = {}
    for addr, info in client.scheduler_info().get("workers", {}).items():
        host = info.get("host") or get_address_host(addr)
        totals[host] = totals.get(host, 0) + int(info.get("nthreads", 1))
    return totals


def _worker_environ() -> dict[str, Any]:
    """Dask's worker environment without ``MALLOC_TRIM_THRESHOLD_``, with torch's huge pages.

    Setting that variable freezes glibc's mmap threshold, so every large activation is
    mmap'd and faulted in afresh: measured 13.9 s vs 7.6 s per 1064 window on a 2-core Xeon.
    The activations too large for the heap anyway are faulted in 2 MiB at a time
    (:func:`~urst_dask.engine.process.huge_pages_environ`), unless this process's environment
    sets ``THP_MEM_ALLOC_ENABLE`` itself (the workers inherit that).
    """
    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    env.update(huge_pages_environ())
    return env


# distributed's statistical profiler samples sys._current_frames() every 10 ms; on CPython 3.11 a
# garbage collection inside that call can deadlock the process (python/cpython#106883: a hung
# test run here, every thread waiting for the GIL).  The embedded cluster serves no dashboard,
# so its workers do without it.
NO_PROFILER = {"distributed.worker.profile.enabled": False}


def local_cluster(options: ClusterOptions) -> LocalCluster:
    """Start the embedded local cluster of ``options`` (blocks until its workers are up)."""
    with dask.config.set({"distributed.nanny.pre-spawn-environ": _worker_environ(), **NO_PROFILER}), \
            warnings.catch_warnings():
        if not options.verbose:  # "Port 8787 is already in use": another cluster runs; ours takes any port
            warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
        return _workers_ignore_sigint(LocalCluster, dict(
            n_workers=options.workers,
            threads_per_worker=options.threads_per_worker,
            processes=options.processes,
            dashboard_address=None,
            silence_logs=logging.ERROR if options.verbose else logging.CRITICAL,
        ))


def local_client(cluster: LocalCluster, options: ClusterOptions) -> Client:
    """A client of the embedded ``cluster``, with the worker plugins registered."""
    client = Client(cluster)
    n = options.torch_threads or torch_threads_for(options.workers * options.threads_per_worker)
    try:
        _register(client, dataclasses.replace(options, torch_threads=n))
        if options.processes:
            client.register_plugin(QuickExit(os.getpid()))
    except BaseException:
        client.close()
        raise
    return client


def _first_worker(client: Client, address: str) -> None:
    """Wait until a worker has joined the scheduler (a run submitted before its workers, as
    batch systems start them): what a run reads of its workers (threads per host, GPU
    resources) is read once, at its start, so an empty cluster would leave both unset."""
    if client.scheduler_info().get("workers"):
        return
    try:  # the scheduler's own limit for a cluster without workers (None: wait as long as it takes)
        limit = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.no_workers_timeout)
    except Exception:  # noqa: BLE001 - an older scheduler without the setting: no limit
        limit = None
    how_long = "" if not limit else f" (at most {limit:g} s, the scheduler's no-workers-timeout)"
    logging.getLogger("urst_dask").info(f"waiting for a worker to join {address}{how_long}")
    try:
        client.wait_for_workers(1, timeout=limit or None)
    except TimeoutError:
        raise SchedulerError(f"scheduler={address!r}: no worker joined within {limit:g} s (the scheduler's "
                             "distributed.scheduler.no-workers-timeout); start workers, then rerun") from None


CLIENT_IGNORES = ("scheduler", "workers", "threads_per_worker", "processes", "connect_timeout")


def check_client(client: Any, options: ClusterOptions | None = None) -> None:
    """Refuse a ``client=`` that is not a :class:`distributed.Client` (an address string would
    fail only after the input was decoded), and cluster settings it would ignore: its cluster
    is the one it has."""
    if client is not None and not isinstance(client, Client):
        raise ParameterTypeError(f"client={client!r}: expected a distributed.Client (a scheduler's address goes in "
                                 "scheduler=)")
    if client is None or options is None:
        return
    default = ClusterOptions()
    given = [f"{n}={getattr(options, n)!r}" for n in CLIENT_IGNORES if getattr(options, n) != getattr(default, n)]
    if given:
        raise ParameterError(f"client=<Client>: {', '.join(given)} would have no effect: the client's cluster runs "
                             "the work with the workers it has; drop them (or the client)")


LOST = (CancelledError, NoWorkerError, CommClosedError, KilledWorker)  # the cluster failed the run, not the run


@contextlib.contextmanager
def connect(options: ClusterOptions, client: Client | None = None,
            early: EarlyCluster | None = None) -> Iterator[Client]:
    """Yield a client: the one given, one to ``options.scheduler``, the cluster ``early``
    started (:func:`urst_dask.pipeline.earlystart.start_early`), or a new local cluster's.

    The cluster failing under the run (the scheduler gone, every worker lost, a task that
    killed its workers) becomes one :class:`~urst_dask.errors.SchedulerError` line: what an
    output store holds stays marked incomplete, and the same command resumes it."""
    try:
        with _connect(options, client, early) as c:
            yield c
    except LOST as exc:
        why = " ".join(str(exc).split())[:200] or type(exc).__name__
        where = f"scheduler={options.scheduler!r}: " if options.scheduler else ""
        raise SchedulerError(f"{where}the Dask cluster failed under the run ({type(exc).__name__}: {why}); any output "
                             "is left marked incomplete: rerun the same command to resume it") from exc


@contextlib.contextmanager
def _connect(options: ClusterOptions, client: Client | None, early: EarlyCluster | None) -> Iterator[Client]:
    if client is not None:  # a cluster of the user's: as one at --scheduler
        # no wait for a first worker: an adaptive cluster (cluster.adapt(), dask-jobqueue) starts
        # one only when tasks arrive; the plugins reach workers that join later
        _register(client, options, _host_threads(client), compact=False)
        with _compact_for_the_run(client, options):
            yield client
        return
    if options.scheduler:
        check_scheduler(options.scheduler, options.connect_timeout)
        try:
            c = Client(options.scheduler, timeout=f"{options.connect_timeout}s")
        except (OSError, asyncio.TimeoutError) as exc:
            raise SchedulerError(f"scheduler={options.scheduler!r}: cannot connect a client within "
                                 f"{options.connect_timeout:g} s ({type(exc).__name__}: {exc})") from exc
        with c:
            _first_worker(c, options.scheduler)  # the plugins' thread counts and the GPU routing read the workers
            _register(c, options, _host_threads(c), compact=False)
            with _compact_for_the_run(c, options):
                yield c
        return
    with contextlib.ExitStack() as stack:
        closing: list[float] = []
        stack.callback(lambda: timing.add("cluster shutdown", time.perf_counter() - closing[0]) if closing else None)
        started = time.perf_counter()
        if early is not None:
            cluster, c = early.take()
            stack.callback(cluster.close)
            stack.callback(c.close)
        else:
            cluster = stack.enter_context(local_cluster(options))
            c = stack.enter_context(local_client(cluster, options))
        timing.add("cluster start", time.perf_counter() - started)  # what the run waited for
        if early is not None:
            timing.add("  started in the background, beside decoding", early.background_seconds)
        stack.callback(lambda: closing.append(time.perf_counter()))  # runs first on exit
        yield c


def _workers_ignore_sigint(factory: Any, kwargs: dict[str, Any]) -> Any:
    """``factory(**kwargs)`` (a :class:`LocalCluster`) with SIGINT ignored while it spawns its
    worker processes, which inherit that: Ctrl-C in a terminal reaches the whole process group,
    and a worker would otherwise die printing a ``KeyboardInterrupt`` traceback while this
    process unwinds and closes the cluster.  Outside the main thread (no signal handlers
    there) the cluster starts as it is; a Ctrl-C during the start itself is ignored."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:
        return factory(**kwargs)
    try:
        return factory(**kwargs)
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


# distributed.client has a level of its own (a lost scheduler: "Failed to reconnect ..."), as
# have distributed.gc and tornado.application
QUIET_LOGGERS = ("distributed", "distributed.client", "distributed.gc", "asyncio", "tornado", "tornado.application",
                 "bokeh")


def quiet_logging(verbose: bool = False) -> None:
    """In this (client) process, keep distributed's, asyncio's and tornado's log records below
    CRITICAL off stderr unless ``verbose``: a failed task is reported once, by its exception,
    and Ctrl-C does not print asyncio's "Task exception was never retrieved ... AllExit"
    tracebacks.  Meant for the command line; a library caller keeps its own logging setup."""
    if verbose:
        return
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


async def _identity(address: str, timeout: float) -> Any:
    """The ``identity`` reply of the Dask server at ``address``, every step bounded by ``timeout``."""
    from distributed.comm import connect as comm_connect

    async def ask() -> Any:
        comm = await comm_connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    return await asyncio.wait_for(ask(), timeout)


def check_scheduler(address: str, timeout: float) -> None:
    """Refuse, within about ``timeout`` seconds, a scheduler address that is malformed, does not
    accept connections, or does not answer as a Dask scheduler (a web server, a database, a
    Dask worker...).  distributed's own client can wait forever on a server that accepts the
    connection and never speaks its protocol; this probe runs on its own thread and event
    loop (so it also works from inside a running loop) and is abandoned at the deadline."""
    from distributed.comm.addressing import parse_address
    from distributed.comm.registry import get_backend

    try:
        scheme, location = parse_address(address)
        backend = get_backend(scheme)
        with contextlib.suppress(NotImplementedError):  # inproc:// has no host and port
            backend.get_address_host_port(location)
    except (ValueError, TypeError) as exc:
        raise ParameterError(f"scheduler={address!r}: {exc}; expected an address like tcp://host:8786") from None
    result: dict[str, Any] = {}

    def probe() -> None:
        try:
            result["reply"] = asyncio.run(_identity(address, timeout))
        except BaseException as exc:  # noqa: BLE001 - reported below, whatever the server sent
            result["error"] = exc

    thread = threading.Thread(target=probe, name="urst-dask-scheduler-probe", daemon=True)
    thread.start()
    thread.join(timeout + 5)
    what = f"scheduler={address!r}"
    error = result.get("error")
    if thread.is_alive() or isinstance(error, (asyncio.TimeoutError, TimeoutError)):
        raise SchedulerError(f"{what}: did not answer as a Dask scheduler within {timeout:g} s; check the address "
                             "and port (dask scheduler prints it as 'Scheduler at: tcp://...')")
    if isinstance(error, OSError):
        raise SchedulerError(f"{what}: cannot connect within {timeout:g} s ({error}); is `dask scheduler` running "
                             "there?")
    if error is not None:
        raise SchedulerError(f"{what}: did not answer as a Dask scheduler ({type(error).__name__}: "
                             f"{str(error)[:200]}); check the address and port")
    reply = result.get("reply")
    kind = reply.get("type") if isinstance(reply, dict) else None
    if not (isinstance(kind, str) and kind.endswith("Scheduler")):
        raise SchedulerError(f"{what}: answered, but as {'a Dask ' + str(kind) if kind else 'something else'}, "
                             "not as a Dask scheduler; give the scheduler's address")


def gpu_resources(client: Client) -> dict[str, float] | None:
    """``{"GPU": 1}`` if any worker advertises a ``GPU`` resource (``dask worker --resources
    GPU=1``), else ``None``: network tasks then run on any (CPU) worker."""
    workers = client.scheduler_info().get("workers", {})
    return {"GPU": 1} if any(w.get("resources", {}).get("GPU") for w in workers.values()) else None
