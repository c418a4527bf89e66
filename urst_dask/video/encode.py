"""A video output's encoder: checked before a run computes anything, then fed the stylized
frames at the end.  The encoder's settings (codec, crf, pixel format, frame rate) change
only the encoding: they are kept out of the fingerprint of the frames, so fixing one reuses
the frames a run already stylized."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..io import framestore
from ..io import video as video_io
from ..logs import LOGGER
from .policy import VideoOptions

ENCODER = ("codec", "crf", "pix_fmt", "fps")  # the VideoOptions only a video output's encoder uses


def frame_rate(rate: Fraction | None, vopts: VideoOptions) -> Fraction:
    """The output's rate: the input video's, else ``fps`` (default 24)."""
    return rate or Fraction(vopts.fps or 24).limit_denominator(1001)


def check_encoder(path: Path, shape: tuple[int, int, int], rate: Fraction | None, vopts: VideoOptions) -> None:
    """Refuse (:class:`~urst_dask.errors.ParameterError`) a codec, pixel format, container or
    frame size the encoder cannot take, by encoding one frame to a throwaway file."""
    h, w, _ = shape
    video_io.VideoEncoder.check(path, width=w, height=h, rate=frame_rate(rate, vopts), codec=vopts.codec,
                                crf=vopts.crf, pix_fmt=vopts.pix_fmt)


def encode(path: Path, frames: str | os.PathLike[str], count: int, shape: tuple[int, int, int],
           rate: Fraction | None, vopts: VideoOptions, progress: bool) -> dict[str, Any]:
    """Encode frames ``0..count-1`` of the (T, H, W, C) store ``frames`` into ``path``; the
    video's record for the metadata."""
    h, w, _ = shape
    fps = frame_rate(rate, vopts)
    if progress:
        LOGGER.info(f"encoding {count} frames with {vopts.codec} (crf {vopts.crf}, {vopts.pix_fmt}) at {float(fps):g} fps")
    with video_io.VideoEncoder(path, width=w, height=h, rate=fps, codec=vopts.codec, crf=vopts.crf,
                               pix_fmt=vopts.pix_fmt) as enc:
        for t in range(count):
            enc.write(framestore.read_zarr_frame(frames, t))
    return {"codec": vopts.codec, "crf": vopts.crf, "pix_fmt": vopts.pix_fmt, "rate": str(fps), "frames": count,
            "width": w, "height": h}
