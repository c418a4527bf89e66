"""Benchmarks as a library: the memory-against-resolution sweep (the paper's Table 1).

``memory_sweep(out=..., methods=[...], sizes=[...], modes=["tiled", "whole"])`` runs each
(method, mode, size) in a fresh process, guards whole-image runs against running out of
memory, and writes a CSV, a Markdown table, a JSON record and a PNG plot.  The command line is
``urst-dask bench memory``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from .config import DEFAULT_SIZES, PAPER_SIZES, Mode, SweepConfig
from .predict import LinearFit, Verdict, fit, guard

if TYPE_CHECKING:
    from .memory import memory_report, memory_sweep


def __getattr__(name: str) -> object:  # the sweep imports torch: on first use (the command line's parser does not)
    if name in ("memory_report", "memory_sweep"):
        return getattr(import_module(".memory", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["DEFAULT_SIZES", "PAPER_SIZES", "LinearFit", "Mode", "SweepConfig", "Verdict", "fit", "guard", "memory_report",
           "memory_sweep"]
