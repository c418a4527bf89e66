"""Video files (mp4, mov, mkv) through PyAV: the ``video`` extra.

:func:`probe` reads the container's header: the first video stream's size, frame rate and
frame count (counted by demuxing when the container does not say); a file without a video
stream is refused.  :func:`decode` yields its frames in order as (H, W, 3) uint8 RGB.

:class:`VideoEncoder` writes frames in order to a temporary name beside the target and
renames it into place when closed without error.  Defaults: H.264 (``libx264``) at
``crf`` 16 (visually lossless for most material) in ``yuv420p``, the pixel format every
player decodes; ``yuv420p`` needs even sizes, so odd sizes are refused (use ``yuv444p``
or a frame folder).  16-bit frames are reduced to 8 bits (the high byte); the frame rate
given (the input's, as a fraction) is kept exactly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import InputImageError, OutputError, ParameterError

SUFFIXES = (".mp4", ".mov", ".mkv", ".m4v", ".avi", ".webm")
DEFAULT_CODEC = "libx264"
DEFAULT_CRF = 16
DEFAULT_PIX_FMT = "yuv420p"


def _av():
    try:
        import av
    except ImportError:
        raise InputImageError("video files need the 'video' extra (PyAV): pip install 'urst-dask[video]'") from None
    return av


def is_video(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in SUFFIXES


@dataclass(frozen=True)
class VideoInfo:
    """A video file's first video stream."""

    frames: int
    height: int
    width: int
    rate: Fraction  # frames per second
    codec: str


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Size, rate and frame count of ``path``'s first video stream."""
    av = _av()
    where = f"video={str(path)!r}"
    if not Path(path).is_file():
        raise InputImageError(f"{where}: no such file")
    try:
        with av.open(str(path)) as box:
            if not box.streams.video:
                kinds = ", ".join(s.type for s in box.streams) or "no streams"
                raise InputImageError(f"{where}: has no video stream ({kinds})")
            st = box.streams.video[0]
            rate = Fraction(st.average_rate or st.guessed_rate or 0)
            n = int(st.frames or 0)
            if n <= 0:  # not in the header: count the packets that hold a frame
                n = sum(1 for pkt in box.demux(st) if pkt.size)
            return VideoInfo(n, int(st.codec_context.height), int(st.codec_context.width), rate, st.codec_context.name)
    except InputImageError:
        raise
    except Exception as exc:
        raise InputImageError(f"{where}: cannot be read: {exc}") from exc


def decode(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """The frames of the first video stream, in order, as (H, W, 3) uint8 RGB."""
    av = _av()
    try:
        with av.open(str(path)) as box:
            for frame in box.decode(box.streams.video[0]):
                yield frame.to_ndarray(format="rgb24")
    except Exception as exc:
        raise InputImageError(f"video={str(path)!r}: cannot be decoded: {exc}") from exc


class VideoEncoder:
    """Encode (H, W, C) frames in order into ``path`` (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, width: int, height: int, rate: Fraction,
                 codec: str = DEFAULT_CODEC, crf: int = DEFAULT_CRF, pix_fmt: str = DEFAULT_PIX_FMT) -> None:
        av = _av()
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        if pix_fmt in ("yuv420p", "nv12") and (width % 2 or height % 2):
            raise ParameterError(f"pix_fmt={pix_fmt!r}: needs even sizes, the frames are {width}x{height}; "
                                 "use --pix-fmt yuv444p or a frame folder")
        try:
            self.box = av.open(str(self.tmp), mode="w")
            self.stream = self.box.add_stream(codec, rate=rate)
        except Exception as exc:
            raise ParameterError(f"codec={codec!r}: cannot encode with it here: {exc}") from exc
        self.stream.width, self.stream.height = width, height
        try:
            self.stream.pix_fmt = pix_fmt
        except Exception as exc:
            self.box.close()
            raise ParameterError(f"pix_fmt={pix_fmt!r}: not usable with codec {codec!r}: {exc}") from exc
        self.stream.time_base = Fraction(1, 1) / rate
        if codec in ("libx264", "libx265", "h264", "hevc"):
            self.stream.options = {"crf": str(crf), "preset": "medium"}
        self.count = 0

    def write(self, frame: np.ndarray) -> None:
        av = _av()
        if frame.dtype == np.uint16:
            frame = (frame >> 8).astype(np.uint8)
        elif frame.dtype.kind == "f":
            frame = np.clip(np.rint(frame * 255.0), 0, 255).astype(np.uint8)
        rgb = np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame[..., :3]
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        vf.pts = self.count
        for pkt in self.stream.encode(vf):
            self.box.mux(pkt)
        self.count += 1

    def close(self, ok: bool = True) -> None:
        try:
            if ok:
                for pkt in self.stream.encode():
                    self.box.mux(pkt)
            self.box.close()
            if ok:
                os.replace(self.tmp, self.path)
        except OSError as exc:
            raise OutputError(f"output={str(self.path)!r}: cannot write the video: {exc}") from exc
        finally:
            if self.tmp.exists():
                self.tmp.unlink()

    @classmethod
    def check(cls, path: str | os.PathLike[str], *, width: int, height: int, rate: Fraction, codec: str,
              crf: int, pix_fmt: str) -> None:
        """Encode one black frame with these settings into a throwaway file of ``path``'s
        container (nothing is written at ``path``): a codec, pixel format or container that
        cannot work is refused before any frame is computed, as :class:`ParameterError`."""
        import tempfile

        with tempfile.TemporaryDirectory(prefix="urst-dask-encoder-") as tmp:
            try:
                with cls(Path(tmp) / f"check{Path(path).suffix}", width=width, height=height, rate=rate,
                         codec=codec, crf=crf, pix_fmt=pix_fmt) as enc:
                    enc.write(np.zeros((height, width, 3), np.uint8))
            except ParameterError:
                raise
            except Exception as exc:
                raise ParameterError(f"codec={codec!r}, pix_fmt={pix_fmt!r}: cannot write {Path(path).name!r} with "
                                     f"them: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc

    def __enter__(self) -> "VideoEncoder":
        return self

    def __exit__(self, kind, value, tb) -> None:
        self.close(ok=kind is None)
