"""Worker-side runtime: one model per process, the device picked once, torch threads sized.

Tasks carry a small :class:`ModelSpec`; :func:`get_model` loads the network the first time a
process needs it and reuses it afterwards (thread-safe), so weights are never pickled into
tasks.  ``LOADS`` counts real loads in this process (tests use it).  The batch cap per
device remembers how many windows per network call fit after an out-of-memory error.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from .models import load_model
from .models.base import StyleModel
from .settings import DeviceKind

_lock = threading.Lock()
_models: dict["ModelSpec", StyleModel] = {}
LOADS: dict[str, int] = {}


@dataclass(frozen=True)
class ModelSpec:
    """Which network to run where: a few strings, cheap to send with every task."""

    method: str
    weights_dir: str
    variant: str | None = None
    device: DeviceKind = DeviceKind.AUTO


def resolve_device(kind: DeviceKind) -> torch.device:
    """``auto`` -> the (first visible) GPU if this process has one, else the CPU."""
    if kind is DeviceKind.CUDA or (kind is DeviceKind.AUTO and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("device='cuda' but this worker has no CUDA device")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _load(spec: ModelSpec) -> StyleModel:
    """:func:`load_model`, with torch's multi-line strict-loading error (a checkpoint with the
    wrong keys or shapes) turned into one :class:`~urst_dask.errors.WeightsError` line."""
    try:
        return load_model(spec.method, Path(spec.weights_dir), spec.variant)
    except RuntimeError as exc:
        from .io.weights import state_dict_mismatch
        from .models import method_entry

        entry = method_entry(spec.method)
        paths = [Path(spec.weights_dir) / wf.relpath for wf in entry.weights(spec.variant)]
        arg = None if entry.takes_style_image else f"style={spec.variant!r}"
        error = state_dict_mismatch(exc, paths, spec.method, arg)
        if error is None:
            raise
        raise error from None


def get_model(spec: ModelSpec) -> StyleModel:
    """The process's model for ``spec``, loaded on first use."""
    model = _models.get(spec)
    if model is not None:
        return model
    with _lock:
        model = _models.get(spec)
        if model is None:
            model = _load(spec)
            # channels_last: oneDNN's fast path for these thin convolutions (5.5x on a 2-core Xeon)
            model = model.to(device=resolve_device(spec.device), memory_format=torch.channels_last)
            _models[spec] = model
            LOADS[spec.method] = LOADS.get(spec.method, 0) + 1
    return model


_batch_caps: dict[str, int] = {}


def batch_cap(device: torch.device | str) -> int | None:
    """The most windows per network call this process still tries on ``device`` since it ran
    out of memory there (``None``: it never did)."""
    return _batch_caps.get(str(device))


def lower_batch_cap(device: torch.device | str, size: int) -> None:
    """Remember that ``device`` only fits ``size`` windows per call (only ever lowers)."""
    with _lock:
        _batch_caps[str(device)] = min(int(size), _batch_caps.get(str(device), int(size)))


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
COMPACT_MMAP_THRESHOLD = 1 << 20
MALLOC: dict[str, int] = {}  # what set_mmap_threshold applied in this process


def set_mmap_threshold(nbytes: int) -> bool:
    """Fix glibc's mmap threshold for this process (``mallopt(M_MMAP_THRESHOLD)``): every
    allocation of ``nbytes`` or more is mapped on allocation and unmapped on free, so freed
    arrays never stay resident as holes in the heap.  Returns False where the C library is not
    glibc (nothing changed).

    Why: by default glibc raises the threshold to the largest freed block (up to 32 MiB), so a
    worker's few-MB window arrays live in the heap; over a thousand windows the heap's free
    holes keep a worker's peak RSS creeping up with the image size.  The price is page faults
    on every large allocation (measured on a 2-core Xeon: wct16x windows 12-20 % slower, the
    I/O-and-tiling pass 48 % slower; see :class:`urst_dask.cluster.CompactMemory`)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(ctypes.c_int(_M_MMAP_THRESHOLD), ctypes.c_int(int(nbytes))))
    except (OSError, AttributeError):  # not glibc (macOS, musl)
        return False
    if ok:
        MALLOC["mmap_threshold"] = int(nbytes)
    return ok


def load_count(method: str | None = None) -> int:
    """Number of model loads this process made (for one method, or in total)."""
    return LOADS.get(method, 0) if method else sum(LOADS.values())


def torch_threads_for(workers_threads: int, cpus: int | None = None) -> int:
    """Intra-op threads per task so that ``workers_threads`` concurrent tasks fill the CPUs."""
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpus // max(1, workers_threads))


def set_torch_threads(n: int) -> None:
    torch.set_num_threads(max(1, int(n)))
