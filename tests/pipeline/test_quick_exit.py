"""The embedded cluster's worker processes end without tearing their modules down, once closed:
their ``atexit`` handlers still run; a module's object is never finalized."""

from __future__ import annotations

import atexit
import os
import sys
import time
import types
from pathlib import Path

import pytest
from distributed import Client

from urst_dask.pipeline import cluster, plugins
from urst_dask.settings import ClusterOptions


class Sentinel:
    """Writes ``path`` when finalized: kept in a module, that happens in module teardown."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __del__(self, _open=os.open, _write=os.write, _close=os.close, _flags=os.O_WRONLY | os.O_CREAT) -> None:
        fd = _open(self.path, _flags, 0o644)
        _write(fd, b"module teardown ran")
        _close(fd)


def _install(folder: str) -> int:
    """In the worker: an atexit handler and a module-held sentinel; returns the worker's pid."""
    atexit.register(lambda: Path(folder, "atexit").write_text("atexit ran"))
    module = types.ModuleType("urst_quick_exit_sentinel")
    module.sentinel = Sentinel(os.path.join(folder, "teardown"))  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    return os.getpid()


def _gone(pid: int, timeout: float = 30.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("quick", [True, False], ids=["embedded-client", "plain-client-control"])
def test_a_closed_worker_process_skips_module_teardown_but_runs_atexit(tmp_path, quick, no_early_start):
    """With the embedded cluster's client the worker's module teardown is skipped; the control, a
    plain client of the same cluster, shows that teardown does finalize the sentinel."""
    options = ClusterOptions(workers=1)
    local = cluster.local_cluster(options)
    client = cluster.local_client(local, options) if quick else Client(local)
    try:
        pid = next(iter(client.run(_install, str(tmp_path)).values()))
    finally:
        client.close()
        local.close()
    assert _gone(pid), f"worker process {pid} still alive 30 s after the cluster closed"
    assert (tmp_path / "atexit").read_text() == "atexit ran"
    assert (tmp_path / "teardown").exists() is not quick


def test_the_plugin_does_nothing_in_the_process_that_registered_it(monkeypatch):
    """In-process workers share the client's process: closing them must not change how it exits."""
    calls: list[str] = []
    monkeypatch.setattr(plugins, "exit_without_teardown_at_exit", lambda: calls.append("registered"))
    plugins.QuickExit(os.getpid()).teardown(worker=None)
    assert calls == []
    plugins.QuickExit(os.getpid() + 1).teardown(worker=None)  # as in a worker process
    assert calls == ["registered"]


def _in_process_worker(attribute: str) -> list[str]:
    """The sorted names in ``attribute`` of the one worker of an embedded in-process cluster."""
    options = ClusterOptions(workers=1, processes=False)
    local = cluster.local_cluster(options)
    client = cluster.local_client(local, options)
    try:
        found = client.run(lambda dask_worker: sorted(getattr(dask_worker, attribute)))
    finally:
        client.close()
        local.close()
    (names,) = found.values()
    return names


def test_in_process_workers_get_no_quick_exit(no_early_start):
    registered = _in_process_worker("plugins")
    assert plugins.QuickExit.name not in registered
    assert plugins.TorchThreads.name in registered  # the other plugins are there: the listing works


def test_embedded_workers_run_no_statistical_profiler(no_early_start):
    """distributed's profiler samples sys._current_frames() every 10 ms; on CPython 3.11 a
    garbage collection inside it can deadlock the process (python/cpython#106883; a test run
    hung here with every thread waiting for the GIL).  The embedded cluster serves no dashboard."""
    names = _in_process_worker("periodic_callbacks")
    assert "profile" not in names and "heartbeat" in names, names
