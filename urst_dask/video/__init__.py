"""Frame sequences and video: statistics policies over time, shot cuts, frames in flight.

* :mod:`.policy` - ``per-frame`` / ``shot`` / ``ema`` statistics (:class:`StatsPolicy`).
* :mod:`.cuts` - shot-cut detection from colour histograms.
* :mod:`.sequence` - the input sequence and the output (folder, Zarr, video file).
* :mod:`.run` - :func:`stylize_video`, the scheduling across frames.
"""

from .policy import StatsPolicy, VideoOptions
from .run import stylize_video

__all__ = ["StatsPolicy", "VideoOptions", "stylize_video"]
