"""The tasks a run waits on (style encoding, thumbnail statistics) take every CPU of the worker,
on their own thread only, and give the worker's share back afterwards."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest
import torch

from urst_dask.engine import process
from urst_dask.engine.models import ModelSpec
from urst_dask.pipeline import conditioning
from urst_dask.testing import random_image
from urst_dask.testing.toys import Identity


@pytest.fixture(autouse=True)
def _process_threads_restored():
    """torch.set_num_threads on any thread also sets the count new threads start with: put this
    process's back, or later tests run their kernels with other blockings (other rounding)."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def on_fresh_thread(fn: Callable[[], object], threads: int = 1) -> object:
    """``fn()`` on a new thread whose torch pool has ``threads`` threads, as a worker's task thread."""
    box: dict[str, object] = {}

    def target() -> None:
        torch.set_num_threads(threads)
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            box["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]


@pytest.mark.parametrize("cpus, before, inside", [(3, 1, 3), (2, 1, 2), (1, 1, 1), (2, 4, 4)])
def test_all_cpus_widens_the_thread_and_restores_it(monkeypatch, cpus, before, inside):
    """Widened to the CPUs this process may use, never narrowed below the thread's own count."""
    monkeypatch.setattr(process, "available_cpus", lambda: cpus)

    def body() -> tuple[int, int, int]:
        with process.all_cpus() as n:
            seen = torch.get_num_threads()
        return n, seen, torch.get_num_threads()

    assert on_fresh_thread(body, before) == (inside, inside, before)


def test_all_cpus_restores_the_count_after_an_error(monkeypatch):
    monkeypatch.setattr(process, "available_cpus", lambda: 3)

    def body() -> int:
        with pytest.raises(RuntimeError, match="boom"), process.all_cpus():
            raise RuntimeError("boom")
        return torch.get_num_threads()

    assert on_fresh_thread(body, 1) == 1


def test_all_cpus_leaves_the_other_threads_alone(monkeypatch):
    """torch's count is per thread once the thread has used torch: a task thread widening its
    pool does not widen the worker's other (running) task threads, which keep their share."""
    monkeypatch.setattr(process, "available_cpus", lambda: 3)
    ready, inside, done = threading.Event(), threading.Event(), threading.Event()

    def widened() -> None:
        ready.wait(10)
        with process.all_cpus():
            inside.set()
            done.wait(10)

    def other() -> tuple[int, int]:
        first = torch.get_num_threads()  # the thread's first use: it takes the process's count, 1
        ready.set()
        inside.wait(10)
        during = torch.get_num_threads()
        done.set()
        return first, during

    t = threading.Thread(target=lambda: on_fresh_thread(widened, 1))
    t.start()
    assert on_fresh_thread(other, 1) == (1, 1)
    t.join()


class CountsThreads(Identity):
    """Identity that records torch's thread count where the conditioning runs it."""

    seen: dict[str, int] = {}

    def prepare_style(self, style):
        CountsThreads.seen["style"] = torch.get_num_threads()
        return super().prepare_style(style)

    def collect_stats(self, thumb, style, alpha=1.0):
        CountsThreads.seen["stats"] = torch.get_num_threads()
        return super().collect_stats(thumb, style, alpha)


def test_the_conditioning_tasks_run_on_every_cpu(monkeypatch, tmp_path):
    """Style encoding (on a style-cache miss) and thumbnail statistics widen to the worker's CPUs."""
    monkeypatch.setattr(process, "available_cpus", lambda: 3)
    monkeypatch.setenv("URST_DASK_STYLE_CACHE", "0")
    monkeypatch.setattr(conditioning, "get_model", lambda spec: CountsThreads().freeze())
    CountsThreads.seen.clear()
    spec = ModelSpec("identity", str(tmp_path))
    thumb = random_image(40, 48, seed=3).astype(np.float32) / 255

    def body() -> int:
        code = conditioning._prepare_style(spec, random_image(32, 32, seed=4), 32)
        conditioning._collect_stats(spec, thumb, code, 1.0)
        return torch.get_num_threads()

    assert on_fresh_thread(body, 1) == 1  # the worker's share, given back
    assert CountsThreads.seen == {"style": 3, "stats": 3}
