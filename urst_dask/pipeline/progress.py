"""Computing a graph on the cluster (:func:`run`, :func:`run_counted`), and the run's one
progress bar (:class:`WindowBar`): the tile stage counted in windows across all strips, with
the rate and an ETA, then the pyramid levels on the same line."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, Callable, Iterator, Sequence, TextIO

from dask.utils import format_time, key_split
from distributed import Client, as_completed, get_task_stream

from ..engine import timing
from ..logs import LOGGER

# the per-stage summary's names for the labels the pipeline gives run()
STAGE_OF_LABEL = {"network": "network load (worker)", "thumbnail stage": "thumbnail and style encoding",
                  "tile stage": "windows"}
# the parts of a stage the -v summary names, by task function (summed task time on the workers)
SUBSTAGE_OF_TASK = {"block_partial": "  of which thumbnail reduction (task time)",
                    "band": "  of which thumbnail reduction (task time)",
                    "prepare_style": "  of which style encoding",
                    "collect_stats": "  of which thumbnail statistics"}


class WindowBar:
    """One progress line for the whole run, on ``stream`` (default stderr).

    ``total`` windows, ``present`` of them already written by an interrupted run (counted as
    done, and said so).  A terminal gets one line redrawn with ``\\r``; a log file or pipe a
    line per change.  ``enabled=False`` draws nothing (``--no-progress``, ``-q``).
    """

    width = 24

    def __init__(self, total: int, present: int = 0, *, enabled: bool = True, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic, unit: str = "windows") -> None:
        self.total, self.present, self.done = int(total), int(present), int(present)
        self.unit = unit  # what is counted: windows, or an export's rows
        self.enabled = enabled
        self.stream = stream
        self.clock = clock
        self.started = clock()
        self.note = ""
        self._last = ""
        self._mark: tuple[int, str] | None = None  # (percent done, note) of the last line written to a file

    def _out(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stderr

    def line(self) -> str:
        """The current line: ``[####....] done/total windows (k already present) | elapsed |
        rate windows/min | ETA`` (and the note of a later step, e.g. the pyramid level)."""
        frac = self.done / self.total if self.total else 1.0
        bar = "#" * int(self.width * frac)
        elapsed = self.clock() - self.started
        new = self.done - self.present
        parts = [f"[{bar:<{self.width}}] {self.done}/{self.total} {self.unit}"
                 + (f" ({self.present} already present)" if self.present else ""), format_time(elapsed)]
        if new > 0 and elapsed > 0:
            per_s = new / elapsed
            parts.append(f"{per_s:,.0f} {self.unit}/s" if per_s >= 10 else f"{per_s * 60:.3g} {self.unit}/min")
            left = self.total - self.done
            parts.append("ETA " + (format_time(left / per_s) if left else "0s"))
        if self.note:
            parts.append(self.note)
        return " | ".join(parts)

    def draw(self) -> None:
        """Redraw the line on a terminal; elsewhere (a log file, a pipe) write a line when the
        whole percent done or the note changes, so a long count stays a hundred lines or so."""
        if not self.enabled:
            return
        text = self.line()
        if text == self._last:
            return
        self._last = text
        out = self._out()
        tty = getattr(out, "isatty", lambda: False)()
        if not tty:
            mark = (100 * self.done // max(1, self.total), self.note)
            if mark == self._mark:
                return
            self._mark = mark
        out.write("\r" + text if tty else text + "\n")
        out.flush()

    def advance(self, windows: int) -> None:
        self.done = min(self.total, self.done + int(windows))
        self.draw()

    def step(self, note: str) -> None:
        """A later step of the run on the same line (``pyramid level 2/4``)."""
        self.note = note
        self.draw()

    def close(self) -> None:
        if not self.enabled:
            return
        out = self._out()
        if getattr(out, "isatty", lambda: False)():
            out.write("\n")
        out.flush()


def _annotated(collection: Any) -> bool:
    """Whether a layer of ``collection`` (or of any collection in a list) carries annotations."""
    items = collection if isinstance(collection, (list, tuple)) else [collection]
    for item in items:
        layers = getattr(item.__dask_graph__(), "layers", {})
        if any(getattr(layer, "annotations", None) for layer in layers.values()):
            return True
    return False


@contextlib.contextmanager
def _task_stream(client: Client) -> Iterator[Any]:
    """distributed's task stream (for the summary's task times), its scheduler plugin removed
    afterwards if this run installed it: left on a cluster of the user's, it went on recording
    every later task of their session (up to 100 000 records).  Lambdas travel by value: the
    scheduler need not have urst_dask installed.  Not handled: two runs whose stages overlap on
    one scheduler; the first to end removes the plugin under the second, which then loses its
    task times and may leave the plugin behind."""
    try:
        had = client.run_on_scheduler(lambda dask_scheduler: "task-stream" in dask_scheduler.plugins)
    except Exception:  # noqa: BLE001 - a scheduler that cannot say: leave whatever is there
        had = True
    try:
        with get_task_stream(client) as stream:
            yield stream
    finally:
        if not had:
            with contextlib.suppress(Exception):  # the scheduler may be gone: nothing is left to clean
                client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.remove_plugin(name="task-stream"))


def _stage(label: str) -> str:
    head = label.split(":")[0]
    return STAGE_OF_LABEL.get(head, head)


def run(client: Client, collection: Any, *, progress: bool, label: str) -> Any:
    """Compute ``collection`` on ``client`` and return its result; with ``progress``, the
    ``label`` is a status line.

    An annotated graph (the ``GPU`` resource of the network tasks) is sent unoptimized: dask's
    array optimizer, which runs on the scheduler with the scheduler's config, fuses the tasks
    into one flat layer and drops the layers' annotations, so the window tasks would run on any
    worker.  The scheduler still culls the graph to the keys asked for.
    """
    started = time.perf_counter()
    if progress:
        LOGGER.info(label)
    with _task_stream(client) as stream:
        futures = client.compute(collection, optimize_graph=not _annotated(collection))
        result = client.gather(futures)
    timing.add(_stage(label), time.perf_counter() - started)
    for name, seconds in task_seconds(stream.data, SUBSTAGE_OF_TASK).items():
        timing.add(name, seconds)
    return result


def task_seconds(records: Sequence[dict[str, Any]], names: dict[str, str]) -> dict[str, float]:
    """Compute time of the tasks in a Dask task stream (``get_task_stream().data``), summed per
    ``names[key_split(key)]`` (the function name, without a leading underscore); tasks of functions not in ``names`` are left out."""
    totals: dict[str, float] = {}
    for rec in records:
        name = names.get(key_split(rec.get("key", "")))
        if name is None:
            continue
        for ss in rec.get("startstops", ()):
            if ss.get("action") == "compute":
                totals[name] = totals.get(name, 0.0) + float(ss["stop"]) - float(ss["start"])
    return totals


def run_counted(client: Client, items: Sequence[Any], counts: Sequence[int], bar: WindowBar, *, label: str) -> None:
    """Compute ``items`` (one collection per output block) on ``client``, advancing ``bar`` by
    ``counts[i]`` windows as item ``i`` finishes.  The first failure cancels the rest and is
    raised, as ``client.gather`` would."""
    started = time.perf_counter()
    items = list(items)
    futures = client.compute(items, optimize_graph=not _annotated(items))
    weight = {f.key: int(n) for f, n in zip(futures, counts)}
    try:
        for fut in as_completed(futures):
            fut.result()
            bar.advance(weight.get(fut.key, 0))
    except BaseException:
        client.cancel(futures)
        raise
    timing.add(_stage(label), time.perf_counter() - started)
