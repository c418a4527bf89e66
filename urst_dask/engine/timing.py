"""Wall time per stage of a run, for the ``-v`` summary (``urst-dask stylize -v``).

The client records its stages with :func:`stage`; the workers' compilation time comes from
:data:`urst_dask.engine.cache.COMPILE_SECONDS` (gathered at the end of the run).  The
process's own start (interpreter and imports, up to the ``stylize()`` call) is read from
``/proc/self/stat`` where there is one.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Iterator

from ..io import host

_lock = threading.Lock()
_stages: list[tuple[str, float]] = []


def reset() -> None:
    with _lock:
        _stages.clear()


def add(name: str, seconds: float) -> None:
    """Add ``seconds`` to stage ``name`` (stages keep their first-seen order)."""
    with _lock:
        for i, (n, s) in enumerate(_stages):
            if n == name:
                _stages[i] = (n, s + seconds)
                return
        _stages.append((name, seconds))


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        add(name, time.perf_counter() - t0)


def stages() -> list[tuple[str, float]]:
    with _lock:
        return list(_stages)


def process_age() -> float | None:
    """Seconds since this process started (:func:`urst_dask.io.host.process_age`)."""
    return host.process_age()


def summary(total: float | None = None) -> str:
    """The stages as aligned lines, with their sum (and the run's wall time if given)."""
    rows = stages()
    width = max([len(n) for n, _ in rows] + [10])
    lines = [f"  {n:<{width}} {s:7.2f} s" for n, s in rows]
    lines.append(f"  {'sum':<{width}} {sum(s for n, s in rows if not n.startswith(' ')):7.2f} s")
    if total is not None:
        lines.append(f"  {'wall time':<{width}} {total:7.2f} s")
    return "\n".join(lines)


_t0: list[float] = []


def start() -> None:
    """A new run: clear the stages and record the process's age as its first stage."""
    reset()
    _t0[:] = [time.perf_counter()]
    age = process_age()
    if age is not None:
        add("process start and imports", age)


def _worker_compile_seconds() -> float:
    from .cache import COMPILE_SECONDS

    return float(sum(COMPILE_SECONDS))


def gather_compile_times(client) -> None:  # noqa: ANN001 - a distributed Client
    """Record the workers' compilation time (the slowest worker's, a part of ``windows``)."""
    try:
        per_worker = client.run(_worker_compile_seconds)
    except Exception:  # noqa: BLE001 - a summary line is not worth failing a finished run
        return
    if per_worker:
        add("  of which compilation (slowest worker)", max(per_worker.values()))


def report() -> None:
    """Log the summary (``-v``) on the ``urst_dask`` logger (the command line prints it on stderr)."""
    from ..logs import LOGGER

    total = None
    if _t0:
        age = process_age()
        total = (time.perf_counter() - _t0[0]) + (dict(stages()).get("process start and imports", 0.0) if age else 0.0)
    LOGGER.info("time per stage:\n" + summary(total))
