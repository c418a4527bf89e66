"""Frame sequences and video: statistics policies over time, shot cuts, frames in flight.

* :mod:`.policy` - ``per-frame`` / ``shot`` / ``ema`` statistics (:class:`StatsPolicy`).
* :mod:`.cuts` - shot-cut detection from colour histograms.
* :mod:`.sequence` - the input sequence and the output (folder, Zarr, video file).
* :mod:`.options` - which keywords are the video's, which the run's, and which it refuses.

:func:`stylize_video`, the scheduling across frames on a Dask cluster, lives in
:mod:`urst_dask.pipeline.video` (re-exported here, imported on first use).
"""

from typing import Any

from .policy import StatsPolicy, VideoOptions


def __getattr__(name: str) -> Any:  # lazy: the pipeline imports this package's pure parts
    if name == "stylize_video":
        from ..pipeline.video import stylize_video

        return stylize_video
    raise AttributeError(name)


__all__ = ["StatsPolicy", "VideoOptions", "stylize_video"]
