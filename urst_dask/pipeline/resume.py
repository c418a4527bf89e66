"""The resume check: what an output store already holds for this run.

``prepare`` decides between a new run, a resume (same fingerprint: reuse the stored style
code, statistics and intensity range byte for byte, and compute only the missing chunks) and
nothing to do (complete); a store of another run is refused unless overwritten (see
:func:`urst_dask.io.store.prepare_output`)."""

from __future__ import annotations

from typing import Any

from ..engine.probe import PrecisionChoice
from ..errors import OutputError
from ..io import chunkio, store
from ..io.remote import local_or_remote
from ..settings import NormMode, StyleOptions
from ..stats import NormStats, StyleCode


def prepare(out: Any, fingerprint: str, overwrite: bool) -> str:
    """``"new"``, ``"resume"`` or ``"complete"`` for the output ``out``."""
    return store.prepare_output(out, fingerprint, overwrite)


def is_new(out: Any, overwrite: bool) -> bool:
    """Whether :func:`prepare` can only answer ``"new"`` for ``out`` (``overwrite``, or nothing
    there yet); ``False`` where that cannot be told cheaply.  Never raises: :func:`prepare`
    reports what is wrong with the output."""
    try:
        return overwrite or not store.exists(local_or_remote(out, "output"))
    except Exception:  # noqa: BLE001 - see above
        return False


def stored_conditioning(out_path: Any, options: StyleOptions) -> tuple[StyleCode, NormStats | None,
                                                                        tuple[float, float] | None,
                                                                        PrecisionChoice | None]:
    """The style code, statistics (``tin``), intensity range and ``auto`` precision choice of
    the interrupted run: its remaining windows run in the precision its first ones did."""
    style_code = store.read_style_code(out_path)
    stats = store.read_stats(out_path) if options.norm is NormMode.TIN else None
    attrs = store.read_attrs(out_path)
    stored = attrs.get("intensity", {}).get("range_unit")
    choice = attrs.get("precision_auto")
    return (style_code, stats, ((float(stored[0]), float(stored[1])) if stored else None),
            PrecisionChoice.from_dict(choice) if choice else None)


def present_windows(out_path: Any, state: str) -> set[tuple[int, int]]:
    """The output chunks already written (none for a new run); on a resume, the half-written
    chunk files the interrupted run left are removed first."""
    if state != "resume":
        return set()
    chunkio.remove_partials(out_path)
    return chunkio.present_chunks(out_path)


def require_every_chunk(out_path: Any) -> None:
    """Refuse to mark ``out_path`` complete while an image chunk is not on disk (a write lost
    somewhere: a worker in another folder, a store replaced meanwhile): it stays ``running``,
    and the same command resumes it."""
    missing = chunkio.missing_chunks(out_path)
    if missing:
        shown = ", ".join(f"{r}:{c}" for r, c in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise OutputError(f"output={str(out_path)!r}: {len(missing)} image chunks were not written (row:col "
                          f"{shown}); the store stays marked running: rerun the same command to finish it")
