"""``compare --video``: the flicker of a stylized sequence against its content."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ParameterError
from ..io import video as video_io
from ..metrics.flicker import flicker
from .cuts import DEFAULT_THRESHOLD, colour_histogram, detect_cuts
from .sequence import iter_frames, open_sequence, read_meta


def frame_count(path: str | os.PathLike[str]) -> int:
    """The frames of a folder/glob, (T, H, W, C) Zarr or video file (a video's header count)."""
    return video_io.probe(path).frames if video_io.is_video(path) else len(open_sequence(path, Path(os.devnull)))


def flicker_report(stylized: str | os.PathLike[str], content: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Flicker figures (:mod:`urst_dask.metrics.flicker`) of the sequence ``stylized`` (a
    frame folder/glob, (T, H, W, C) Zarr or video file) against ``content`` (default: the
    input recorded in ``stylized``'s metadata).  Cuts: those recorded in the metadata, else
    detected on the content's colour histograms."""
    meta = read_meta(stylized)
    if content is None:
        content = (meta.get("input") or {}).get("path")
        if not content:
            raise ParameterError(f"reference: {str(stylized)!r} records no input; give the content sequence too")
        if not os.path.isabs(content):  # an older run recorded it as typed: relative to a folder unknown here
            raise ParameterError(f"reference: {str(stylized)!r} records its input as {content!r}, relative to the "
                                 "folder it ran in; give the content sequence too")
    if "cuts" in meta:
        cuts = list(meta["cuts"])
    else:
        hists = [colour_histogram(f) for f in iter_frames(content)]
        cuts = detect_cuts(hists, float(meta.get("cut_threshold", DEFAULT_THRESHOLD)))
    n_stylized, n_content = frame_count(stylized), frame_count(content)
    if n_stylized != n_content:
        raise ParameterError(f"reference={str(content)!r}: has {n_content} frames, but {str(stylized)!r} has "
                             f"{n_stylized}; compare a stylized sequence with its own content")
    try:
        result = flicker(iter_frames(stylized), iter_frames(content), cuts)
    except ValueError as exc:
        raise ParameterError(f"reference={str(content)!r}: {exc}") from exc
    return {**result.as_dict(), "cuts": cuts, "stats_policy": meta.get("stats_policy"), "content": str(content)}
