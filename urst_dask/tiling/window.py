"""The per-window kernel: overlapped windows in, their stylized pixels out.

Numpy in, numpy out, no I/O, no Dask.  Several windows of one shape go through the network
in one call (a batch; see :mod:`urst_dask.tiling.retry` for the out-of-memory fallback).
The network never resizes its output: each window is padded (numpy ``symmetric``) on its
inner sides to the image's standard shape (:func:`~urst_dask.tiling.plan.window_padding`; at
the image's border to the network's size multiple only), stylized, and cropped back.
Windows come from :class:`~urst_dask.tiling.plan.TileGrid`, which puts their origins on the
size-multiple grid.

Two steps, so that overlapping outputs can be blended in between:

* :func:`stylize_windows` returns RGB float32 in the network's [0, 1] units;
* :func:`finish` maps a (blended) block back to the input's intensity range, dtype and
  channels (alpha passed through, gray as luminance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..errors import ParameterError
from ..models.base import StyleModel
from ..preprocess import apply_intensity_range, from_unit, hwc_to_nchw, invert_intensity_range, nchw_to_hwc, to_unit
from ..settings import ComputeOptions, StyleOptions
from ..stats import NormStats, StyleCode
from .retry import run_in_batches

LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # Rec. 601 luminance


@dataclass(frozen=True)
class WindowJob:
    """Everything a window needs besides the pixels and the model (all picklable, small): the
    run's frozen option objects themselves (``style``: alpha, colour; ``compute``: precision,
    backend, batch, whole), the output dtype and the intensity range in [0, 1] units measured
    on the thumbnail (``None``: the dtype's range)."""

    style: StyleOptions
    compute: ComputeOptions
    out_dtype: str
    intensity: tuple[float, float] | None = None


def pad_window(image: np.ndarray, padding: tuple[int, int, int, int]) -> np.ndarray:
    """Pad an HWC array by ``(top, bottom, left, right)`` pixels (numpy ``symmetric``)."""
    top, bottom, left, right = padding
    if not (top or bottom or left or right):
        return image
    return np.pad(image, ((top, bottom), (left, right), (0, 0)), mode="symmetric")


def _to_multiple(h: int, w: int, multiple: int) -> tuple[int, int, int, int]:
    return 0, (-h) % multiple, 0, (-w) % multiple


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Pad an HWC array on the bottom/right to multiples of ``multiple`` (symmetric)."""
    return pad_window(image, _to_multiple(image.shape[0], image.shape[1], multiple))


def rgb_part(window: np.ndarray) -> np.ndarray:
    """The channels the network sees: RGB of RGBA, gray repeated to RGB, RGB as it is."""
    if window.shape[2] == 4:
        return window[..., :3]
    if window.shape[2] == 1:
        return np.repeat(window, 3, axis=2)
    return window


def stylize_windows(
    windows: Sequence[np.ndarray],
    model: StyleModel,
    style: StyleCode,
    stats: NormStats | None,
    job: WindowJob,
    batch: int = 1,
    padding: Sequence[tuple[int, int, int, int]] | None = None,
) -> list[np.ndarray]:
    """Stylize windows, up to ``batch`` windows of one shape per network call.

    ``windows``: (h, w, C) HWC arrays, uint8/uint16/float32, C in {1, 3, 4} (intensity
    mapped by the dtype's range or ``job.intensity``).  Runs on ``model.device``;
    ``stats=None`` uses each window's own statistics (``--norm in``, one window per call).
    Returns (h, w, 3) float32 RGB in [0, 1] network units, one per window; batching changes
    the result only by float32 rounding (the convolution kernels differ with the batch size:
    about 5e-5, one level in 0.1 % of uint8 values; ``batch`` is part of the fingerprint).  ``padding``: per window, the mirrored ``(top, bottom, left, right)``
    padding the network runs it with (:func:`~urst_dask.tiling.plan.window_padding`: on the
    inner sides, whose overlap the crop removes), so that an image's windows come in few
    shapes, for every backend alike; ``None``: bottom/right to the network's size multiple.
    With ``stats=None`` the padding would enter the window's own statistics, so each window is
    then padded to the size multiple only.
    """
    if padding is not None and len(padding) != len(windows):
        raise ParameterError(f"stylize_windows: padding has {len(padding)} entries for {len(windows)} windows")
    rgb = [rgb_part(w) for w in windows]
    m = model.info.size_multiple
    pads: list[tuple[int, int, int, int]] = []
    for i, one in enumerate(rgb):
        if padding is None or stats is None:
            pads.append(_to_multiple(one.shape[0], one.shape[1], m))
        else:
            top, bottom, left, right = (int(p) for p in padding[i])
            pads.append((top, bottom, left, right))
    out: list[np.ndarray] = [np.empty(0, np.float32)] * len(rgb)
    groups: dict[tuple[int, int], list[int]] = {}  # windows of one padded shape share network calls
    for i, (one, (top, bottom, left, right)) in enumerate(zip(rgb, pads)):
        groups.setdefault((one.shape[0] + top + bottom, one.shape[1] + left + right), []).append(i)
    per_call = 1 if stats is None else max(1, int(batch))
    for idx in groups.values():
        for k in range(0, len(idx), per_call):
            part = idx[k : k + per_call]
            xs = [hwc_to_nchw(apply_intensity_range(to_unit(pad_window(rgb[i], pads[i])), job.intensity),
                              model.device) for i in part]
            x = xs[0] if len(xs) == 1 else torch.cat(xs)  # one window: no copy
            y = run_in_batches(model, x.contiguous(memory_format=torch.channels_last), style, stats, job)
            for j, i in enumerate(part):
                (h, w), (top, _, left, _) = rgb[i].shape[:2], pads[i]
                out[i] = nchw_to_hwc(y[j : j + 1, :, top : top + h, left : left + w].clamp(0.0, 1.0))
    return out


def finish(rgb: np.ndarray, job: WindowJob, channels: int, extra: np.ndarray | None = None) -> np.ndarray:
    """A stylized block in network units -> the output block.

    ``rgb``: (h, w, 3) float32 in [0, 1].  Maps back from the intensity range, converts to
    ``job.out_dtype`` and restores the input's ``channels``: RGBA gets ``extra`` (the
    input's alpha, untouched); gray (1) keeps the Rec. 601 luminance.
    """
    dtype = np.dtype(job.out_dtype)
    rgb = invert_intensity_range(rgb, job.intensity)
    if channels == 1:
        return from_unit((rgb @ LUMA)[..., None], dtype)
    out = from_unit(rgb, dtype)
    if channels == 4 and extra is not None:
        return np.concatenate([out, extra.astype(dtype, copy=False)], axis=2)
    return out


def stylize_window(window: np.ndarray, model: StyleModel, style: StyleCode, stats: NormStats | None,
                   job: WindowJob) -> np.ndarray:
    """One window, whole: (h, w, C) in, (h, w, C) in ``job.out_dtype`` out (see
    :func:`stylize_windows` and :func:`finish`)."""
    rgb = stylize_windows([window], model, style, stats, job)[0]
    return finish(rgb, job, window.shape[2], window[..., 3:] if window.shape[2] == 4 else None)
