"""The functions a video run's tasks execute on the workers (each loads the network from the
worker's process cache; frames are read where they are used).  (H, W, C) frames in their
dtype; thumbnails float32 in [0, 1]."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .. import preprocess as pp
from ..engine import ModelSpec, get_model
from ..engine.probe import PrecisionChoice, choose_precision, wants_probe
from ..errors import InputImageError
from ..models.base import StyleModel
from ..settings import ComputeOptions, StyleOptions
from ..stats import NormStats, StyleCode
from ..tiling import pad_to_multiple
from .cuts import colour_histogram

BAND = 512  # rows reduced at once by the thumbnail (bounds its float64 temporaries)


@dataclass(frozen=True)
class FrameRef:
    """Where frame ``index`` lives: ``kind`` ``"file"`` (``path`` is the frame file) or
    ``"zarr"`` (``path`` is a (T, H, W, C) store, ``index`` the frame); ``shape``: the
    (H, W, C) the sequence's headers promise (``None``: unchecked)."""

    kind: str
    path: str
    index: int
    name: str
    shape: tuple[int, int, int] | None = None


def held(value: Any) -> Any:
    """A value the run holds on the cluster as a task's result (the style code, a frame's
    statistics): unlike scattered data, the scheduler can compute it again when the worker
    holding it is lost."""
    return value


def load(ref: FrameRef) -> np.ndarray:
    """The frame's pixels, (H, W, C), of the shape its header promised; float frames must be
    finite and in [0, 1]."""
    if ref.kind == "zarr":
        from ..io.framestore import read_zarr_frame

        frame = read_zarr_frame(ref.path, ref.index)
    else:
        from ..io.frames import read_frame

        frame = read_frame(ref.path)
    where = ref.path if ref.kind == "file" else ref.name  # a file by its path: names repeat across folders
    if ref.shape is not None and tuple(frame.shape) != tuple(ref.shape):
        (h, w, c), (eh, ew, ec) = frame.shape, ref.shape
        raise InputImageError(f"frame={where!r}: decoded as {w}x{h} with {c} channels, but the sequence's "
                              f"header says {ew}x{eh} with {ec}; the frame changed or its header is wrong")
    if frame.dtype.kind == "f":
        lo, hi = float(np.nanmin(frame)), float(np.nanmax(frame))
        if not (np.isfinite(frame).all() and 0.0 <= lo and hi <= 1.0):
            raise InputImageError(f"frame={where!r}: float pixels must be finite and in [0, 1] "
                                  f"(found {lo:.4g}..{hi:.4g}); scale the frames first")
    return frame


def thumbnail(frame: np.ndarray, thumb_size: int) -> np.ndarray:
    """Area-reduced (th, tw, C) float32 thumbnail, shorter side ``thumb_size``, reduced band
    by band (as :func:`urst_dask.graph.thumbnail` does chunk by chunk)."""
    h, w, c = frame.shape
    shape_out = pp.thumb_shape(h, w, thumb_size)
    out = np.zeros(shape_out + (c,), np.float64)
    for y0 in range(0, h, BAND):
        oy, ox, part = pp.area_reduce_block(pp.to_unit(frame[y0 : y0 + BAND]), (h, w), shape_out, y0, 0)
        out[oy : oy + part.shape[0], ox : ox + part.shape[1]] += part
    return out.astype(np.float32)


def _network_input(model: StyleModel, thumb: np.ndarray) -> torch.Tensor:
    """A thumbnail as the network takes it: RGB (gray repeated, alpha dropped), padded to the
    network's multiple, (1, 3, h, w) on its device."""
    thumb = np.repeat(thumb, 3, axis=2) if thumb.shape[2] == 1 else thumb[..., :3]
    return pp.hwc_to_nchw(pad_to_multiple(thumb, model.info.size_multiple), model.device)


def collect(spec: ModelSpec, thumb: np.ndarray, style: StyleCode, alpha: float) -> NormStats:
    """The network's statistics of a thumbnail (gray repeated, alpha dropped)."""
    model = get_model(spec)
    with torch.inference_mode():
        return model.collect_stats(_network_input(model, thumb), style, alpha)[1]


def prepare_style(spec: ModelSpec, style_image: np.ndarray | None, style_size: int) -> StyleCode:
    model = get_model(spec)
    x = None if style_image is None else pp.resize_center_crop(pp.to_unit(style_image), style_size).to(model.device)
    return model.prepare_style(x)


def probe(ref: FrameRef, spec: ModelSpec, style: StyleCode, alpha: float, thumb_size: int,
          with_stats: bool) -> tuple[np.ndarray, NormStats | None]:
    """One frame's colour histogram and (``with_stats``) its own thumbnail statistics."""
    frame = load(ref)
    hist = colour_histogram(frame)
    return hist, collect(spec, thumbnail(frame, thumb_size), style, alpha) if with_stats else None


def precision_choice(ref: FrameRef, spec: ModelSpec, style: StyleCode, stats: NormStats, alpha: float,
                     thumb_size: int, compute: ComputeOptions) -> PrecisionChoice | None:
    """``precision="auto"``'s bf16 probe (:mod:`urst_dask.engine.probe`) on one frame's
    thumbnail, with the statistics its windows use (a shot's or a smoothed set need not be the
    frame's own, so the float32 reference is a forward pass with them); ``None`` where this
    worker's device and the network need no probe."""
    model = get_model(spec)
    if not wants_probe(compute.precision, model.device, model.info.name):
        return None
    x = _network_input(model, thumbnail(load(ref), thumb_size))
    with torch.inference_mode():
        y = model(x, style, stats, alpha=alpha)
    return choose_precision(model, x, y, style, stats, StyleOptions(alpha=alpha), compute)


def mosaic(thumbs: list[np.ndarray]) -> np.ndarray:
    """Thumbnails of one size in a grid of ``ceil(sqrt(k))`` columns, row-major; the empty
    cells of the last row repeat the first thumbnails (so every cell is a real frame)."""
    k = len(thumbs)
    cols = int(np.ceil(np.sqrt(k)))
    rows = -(-k // cols)
    cells = [thumbs[i % k] for i in range(rows * cols)]
    return np.concatenate([np.concatenate(cells[r * cols : (r + 1) * cols], axis=1) for r in range(rows)], axis=0)


def shot_stats(refs: list[FrameRef], spec: ModelSpec, style: StyleCode, alpha: float, thumb_size: int) -> NormStats:
    """The statistics of one shot: collected from the mosaic of its sampled frames' thumbnails."""
    return collect(spec, mosaic([thumbnail(load(r), thumb_size) for r in refs]), style, alpha)


def write_file(frame: np.ndarray, path: str, fmt: str) -> str:
    from ..io.frames import write_frame

    write_frame(path, frame, fmt)
    return path


def write_zarr(frame: np.ndarray, path: str, index: int) -> int:
    from ..io.framestore import write_zarr_frame

    write_zarr_frame(path, index, frame)
    return index
