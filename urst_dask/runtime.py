"""Compatibility names for :mod:`urst_dask.engine` (the per-worker engine moved there).

Kept for the benchmark scripts and outside code that import ``urst_dask.runtime``; new code
imports from :mod:`urst_dask.engine`.
"""

from __future__ import annotations

from .engine.batchcap import batch_cap, lower_batch_cap
from .engine.device import resolve_device
from .engine.models import LOADS, ModelSpec, get_model, load_count
from .engine.process import COMPACT_MMAP_THRESHOLD, MALLOC, set_mmap_threshold, set_torch_threads, torch_threads_for

__all__ = ["COMPACT_MMAP_THRESHOLD", "LOADS", "MALLOC", "ModelSpec", "batch_cap", "get_model", "load_count",
           "lower_batch_cap", "resolve_device", "set_mmap_threshold", "set_torch_threads", "torch_threads_for"]
