"""The per-worker engine: device, precision, execution backend, compiled-network cache, model
cache and process settings.

The window kernel (:mod:`urst_dask.tiling`) calls :func:`forward` and nothing else; neither
the graph nor the networks know which backend ran.

* :mod:`.device` - the device (``auto``: a GPU if the process has one);
* :mod:`.precision` - ``auto``: bf16 where the hardware computes it natively and the network keeps its picture in it;
* :mod:`.backends` - eager, inductor, openvino, and what ``auto`` picks;
* :mod:`.baked` - a network with its statistics and style baked in (the compiled graph);
* :mod:`.cache` - compiled networks per key, with a compile counter;
* :mod:`.models` - one loaded network per process (:class:`ModelSpec`, :func:`get_model`);
* :mod:`.process` - torch threads and glibc's mmap threshold; :mod:`.batchcap` the
  out-of-memory batch cap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .backends import BackendUnavailable, auto_backend, check_backend
    from .batchcap import batch_cap, lower_batch_cap
    from .cache import compile_count
    from .device import DeviceError, resolve_device
    from .models import ModelSpec, get_model, load_count
    from .precision import resolve_precision
    from .process import COMPACT_MMAP_THRESHOLD, set_mmap_threshold, set_torch_threads, torch_threads_for
    from .run import forward, resolve_backend

# Each name is imported from its module on first use: `from urst_dask.engine import timing` (the
# command line's cluster start) does not import torch.
_LAZY = {"BackendUnavailable": "backends", "auto_backend": "backends", "check_backend": "backends",
         "batch_cap": "batchcap", "lower_batch_cap": "batchcap", "compile_count": "cache", "DeviceError": "device",
         "resolve_device": "device", "ModelSpec": "models", "get_model": "models", "load_count": "models",
         "resolve_precision": "precision", "COMPACT_MMAP_THRESHOLD": "process", "set_mmap_threshold": "process",
         "set_torch_threads": "process", "torch_threads_for": "process", "forward": "run", "resolve_backend": "run"}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_LAZY[name]}", __name__), name)


__all__ = ["BackendUnavailable", "COMPACT_MMAP_THRESHOLD", "DeviceError", "ModelSpec", "auto_backend", "batch_cap",
           "check_backend", "compile_count", "forward", "get_model", "load_count", "lower_batch_cap",
           "resolve_backend", "resolve_device", "resolve_precision", "set_mmap_threshold", "set_torch_threads",
           "torch_threads_for"]
