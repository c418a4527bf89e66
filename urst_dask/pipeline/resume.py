"""The resume check: what an output store already holds for this run.

``prepare`` decides between a new run, a resume (same fingerprint: reuse the stored style
code, statistics and intensity range byte for byte, and compute only the missing chunks) and
nothing to do (complete); a store of another run is refused unless overwritten (see
:func:`urst_dask.io.store.prepare_output`)."""

from __future__ import annotations

from typing import Any

from ..io import store
from ..settings import NormMode, StyleOptions
from ..stats import NormStats, StyleCode


def prepare(out: Any, fingerprint: str, overwrite: bool) -> str:
    """``"new"``, ``"resume"`` or ``"complete"`` for the output ``out``."""
    return store.prepare_output(out, fingerprint, overwrite)


def stored_conditioning(out_path: Any, options: StyleOptions) -> tuple[StyleCode, NormStats | None,
                                                                        tuple[float, float] | None]:
    """The style code, statistics (``tin``) and intensity range of the interrupted run."""
    style_code = store.read_style_code(out_path)
    stats = store.read_stats(out_path) if options.norm is NormMode.TIN else None
    stored = store.read_attrs(out_path).get("intensity", {}).get("range_unit")
    return style_code, stats, ((float(stored[0]), float(stored[1])) if stored else None)


def present_windows(out_path: Any, state: str) -> set[tuple[int, int]]:
    """The output chunks already written (none for a new run)."""
    return store.present_chunks(out_path) if state == "resume" else set()
