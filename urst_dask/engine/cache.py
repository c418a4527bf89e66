"""The per-process cache of compiled window networks.

Key: (model, statistics, style, alpha, window shape, precision, backend).  Each key is
compiled once per process (``COMPILES`` counts real compilations per backend; tests read
it); the tile stage pads an image's windows to at most four shapes
(:func:`urst_dask.tiling.window_padding`) before they get here, so an image needs at most four
compilations per worker.  A backend that fails
to compile a key is replaced by eager for that key, with one warning per backend and process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import torch

from ..models.base import StyleModel
from ..settings import Backend, Precision
from ..stats import NormStats, StyleCode
from .backends import Runner, build_runner, forget_compiled
from .baked import bake
from .precision import torch_dtype

log = logging.getLogger("urst_dask")

MAX_ENTRIES = 8  # compiled networks kept per process (least recently used dropped)
COMPILES: dict[str, int] = {}
COMPILE_SECONDS: list[float] = []  # wall time of every compilation in this process
_warned: set[str] = set()
_lock = threading.Lock()
_entries: "OrderedDict[CacheKey, tuple[StyleModel, Runner, Backend]]" = OrderedDict()


@dataclass(frozen=True)
class CacheKey:
    model: int  # id() of the process's cached model (one per ModelSpec); the entry keeps it alive
    method: str
    stats: str  # NormStats token
    style: str  # StyleCode token
    alpha: float
    shape: tuple[int, ...]  # (N, C, H, W) after padding
    precision: Precision
    backend: Backend
    device: str


def compile_count(backend: Backend | str | None = None) -> int:
    """Compilations made in this process (by one backend, or in total; eager fallbacks count
    under ``eager``)."""
    if backend is None:
        return sum(COMPILES.values())
    return COMPILES.get(Backend.parse(backend, "backend").value, 0)


def clear() -> None:
    """Drop every compiled network and reset the counters and warnings (tests)."""
    with _lock:
        _entries.clear()
        COMPILES.clear()
        COMPILE_SECONDS.clear()
        _warned.clear()


def has_shape(shape: tuple[int, ...]) -> bool:
    """Whether a network compiled for inputs of ``shape`` is cached in this process."""
    with _lock:
        return any(k.shape == tuple(shape) for k in _entries)


def forget_shape(shape: tuple[int, ...]) -> int:
    """Drop every network compiled for inputs of ``shape``, with the compiled models and
    buffers behind them (a one-off shape: the bf16 probe's thumbnail would otherwise hold a
    few hundred MB through the whole tile stage); returns how many entries were dropped."""
    with _lock:
        gone = [k for k in _entries if k.shape == tuple(shape)]
        for k in gone:
            del _entries[k]
        forget_compiled(tuple(shape))
    return len(gone)


def _warn_once(backend: Backend, method: str, exc: BaseException) -> None:
    if backend.value in _warned:
        return
    _warned.add(backend.value)
    log.warning("backend %s could not compile the %s network (%s: %s); running it eager instead",
                backend.value, method, type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "")


def runner_for(model: StyleModel, style: StyleCode, stats: NormStats, alpha: float, example: torch.Tensor,
               precision: Precision, backend: Backend,
               build: Callable[..., Runner] = build_runner) -> tuple[Runner, Backend]:
    """The compiled runner of this key (built on first use) and the backend it really uses."""
    key = CacheKey(id(model), model.info.name, stats.token(), style.token(), float(alpha), tuple(example.shape),
                   precision, backend, str(example.device))
    with _lock:
        hit = _entries.get(key)
        if hit is not None:
            _entries.move_to_end(key)
            return hit[1], hit[2]
        # compiled under the lock: a second thread wanting the same key waits instead of compiling it again
        dtype = None if backend is Backend.OPENVINO else torch_dtype(precision)
        t0 = time.perf_counter()
        try:
            runner, used = build(backend, bake(model, style, stats, alpha, dtype), example, precision), backend
        except torch.OutOfMemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - any compiler failure: fall back, never crash
            if backend is Backend.EAGER:
                raise
            _warn_once(backend, model.info.name, exc)
            used = Backend.EAGER
            runner = build_runner(used, bake(model, style, stats, alpha, torch_dtype(precision)), example, precision)
        COMPILE_SECONDS.append(time.perf_counter() - t0)
        COMPILES[used.value] = COMPILES.get(used.value, 0) + 1
        _entries[key] = (model, runner, used)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
        return runner, used
