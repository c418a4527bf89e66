"""The embedded cluster's worker processes, started on a helper thread while this process goes
on with other work: decoding the input (:func:`urst_dask.api.stylize`), and before that, on the
command line, importing torch and the pipeline (:mod:`urst_dask.cli.images`).  Starting worker
processes is mostly their own imports, on the other core.

This module imports no torch: the command line starts its cluster before it imports torch.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import Any, Callable

from distributed import Client, LocalCluster, fire_and_forget

from ..settings import ClusterOptions
from .cluster import local_client, local_cluster

__all__ = ["EarlyCluster", "prestart", "start_early"]


class EarlyCluster:
    """The embedded cluster's worker processes, started on a helper thread while this process
    goes on with other work (decoding the input), and taken by :func:`~urst_dask.pipeline.cluster.connect`.

    Starting worker processes is mostly their imports, on the other core; decoding a JPEG is
    this process's.  SIGINT is ignored in this process from the start until the cluster is
    taken or closed, as :func:`~urst_dask.pipeline.cluster._workers_ignore_sigint` does around a plain start, so the
    workers inherit that.  :meth:`close` (or leaving the ``with`` block) closes a cluster that
    was not taken, after its start finished: nothing is left running.
    """

    def __init__(self, options: ClusterOptions, *, ignore_sigint: bool = True) -> None:
        self.options = options
        self._result: dict[str, Any] = {}
        self._taken = False
        self._started = time.perf_counter()
        self.background_seconds = 0.0  # the whole start, most of it beside other work
        self._sigint: list[Any] = []  # the handler to put back, while SIGINT is ignored here
        self._lock = threading.Lock()
        self._preloads: list[tuple[Callable[..., None], tuple[Any, ...]]] = []  # not submitted yet
        if ignore_sigint and threading.current_thread() is threading.main_thread():
            self._sigint.append(signal.signal(signal.SIGINT, signal.SIG_IGN))
        self._thread = threading.Thread(target=self._start, name="urst-dask-cluster-start", daemon=True)
        self._thread.start()

    def _start(self) -> None:
        try:
            cluster = self._result["cluster"] = local_cluster(self.options)
            # the plugins' setup imports torch in each worker: also beside the decoding
            client = local_client(cluster, self.options)
            with self._lock:
                self._result["client"] = client
            self._submit_preloads()
        except BaseException as exc:  # noqa: BLE001 - re-raised by take()
            self._result["error"] = exc

    def preload(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` once on each worker as soon as the cluster is up (now, if it is),
        beside this process's work: the run's network loads into each worker's model cache
        while this process decodes the input.  Nothing waits for it; a failure is left for the
        run's own task, which meets it again and reports it.  ``fn`` returns nothing."""
        with self._lock:
            self._preloads.append((fn, args))
        if "client" in self._result:
            self._submit_preloads()

    def _submit_preloads(self) -> None:
        with self._lock:
            client, todo, self._preloads = self._result.get("client"), self._preloads, []
        if client is None or not todo:
            return
        try:
            workers = list(client.scheduler_info().get("workers", {}))
            for fn, args in todo:
                fire_and_forget([client.submit(fn, *args, pure=False, workers=[w], allow_other_workers=False)
                                 for w in workers])
        except Exception:  # noqa: BLE001 - best effort: a closed client, a lost scheduler; the run decides
            return

    def _join(self) -> None:
        self._thread.join()
        if self._sigint:
            previous = self._sigint.pop()
            signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)

    def take(self) -> tuple[LocalCluster, Client]:
        """The started cluster and its client, plugins registered (waits for the start;
        raises what it raised, after closing what it had started).  The caller closes both."""
        self._join()
        self.background_seconds = time.perf_counter() - self._started
        if "error" in self._result:
            self.close()
            raise self._result["error"]
        self._taken = True
        return self._result["cluster"], self._result["client"]

    def close(self) -> None:
        """Close the client and cluster unless :meth:`take` handed them on."""
        if self in _PENDING:  # never handed to a later run
            _PENDING.remove(self)
        self._join()
        if not self._taken:
            self._taken = True
            for part in ("client", "cluster"):
                if part in self._result:
                    self._result[part].close()

    def __enter__(self) -> "EarlyCluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_PENDING: list[EarlyCluster] = []  # started by prestart, for the run start_early will be asked about


def prestart(options: ClusterOptions) -> EarlyCluster | None:
    """Start the embedded cluster now for the run this process is about to make, before its slow
    imports (the command line: torch takes seconds), and leave it for that run's
    :func:`start_early`.  The caller closes it if the run never takes it (``with``)."""
    early = start_early(options, new=False)  # one started before for the same options
    if early is None and not options.scheduler and options.processes:
        # workers that ignore SIGINT themselves from their first import leave Ctrl-C live here
        # meanwhile: it was ignored, and lost, through the imports and the decoding
        early = EarlyCluster(options, ignore_sigint=not _workers_import_the_cli())
    if early is not None:
        _PENDING.append(early)
    return early


def _workers_import_the_cli() -> bool:
    """Whether the worker processes spawned now run this process's main script, and with it
    :mod:`urst_dask.cli`, which makes them ignore SIGINT from their start
    (``urst_dask.cli._spawned_workers_ignore_sigint``): the ``urst-dask`` console script.
    ``multiprocessing`` never runs a package's ``__main__`` again (``python -m urst_dask``,
    ``python -m pytest``), nor a ``python -c`` program."""
    main = sys.modules.get("__main__")
    if main is None or "urst_dask.cli" not in sys.modules or getattr(main, "__file__", None) is None:
        return False
    name = getattr(getattr(main, "__spec__", None), "name", None) or ""
    return not (name == "__main__" or name.endswith(".__main__"))


def start_early(options: ClusterOptions, client: Client | None = None, *, new: bool = True) -> EarlyCluster | None:
    """The embedded cluster, starting on a helper thread (:class:`EarlyCluster`), where
    :func:`~urst_dask.pipeline.cluster.connect` would start worker processes: no ``client``, no ``scheduler`` and
    ``processes``.  A cluster :func:`prestart` began for the same options is taken as it is;
    otherwise one is started if ``new`` (``False``: a run that may not need one).  ``None``
    where no worker processes are started (threads start in milliseconds)."""
    if client is not None or options.scheduler or not options.processes:
        return None
    while _PENDING:
        early = _PENDING.pop()
        if early.options == options:
            return early
        early.close()  # started for other options: not this run's
    return EarlyCluster(options) if new else None
