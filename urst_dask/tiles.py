"""The per-window kernel: one overlapped window in, its stylized pixels out.

Pure: numpy in, numpy out, no I/O, no Dask.  The network never resizes its output: the
window is padded (numpy ``symmetric``, the same reflection dask's ``boundary="reflect"``
uses) on the bottom/right to the network's size multiple, stylized, and cropped back.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from .models.base import StyleModel
from .preprocess import apply_window, from_unit, hwc_to_nchw, invert_window, nchw_to_hwc, preserve_colour, to_unit
from .settings import Precision
from .stats import NormStats, StyleCode


LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # Rec. 601 luminance


@dataclass(frozen=True)
class WindowJob:
    """Everything a window needs besides the pixels and the model (all picklable, small)."""

    alpha: float
    precision: Precision
    preserve_color: bool
    out_dtype: str
    window: tuple[float, float] | None = None  # intensity window in [0, 1] units (None: dtype range)


def _autocast(device: torch.device, precision: Precision):
    if precision is Precision.FLOAT32:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision is Precision.BFLOAT16 else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def pad_to_multiple(window: np.ndarray, multiple: int) -> np.ndarray:
    """Pad an HWC array on the bottom/right to multiples of ``multiple`` (symmetric)."""
    h, w = window.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return window
    return np.pad(window, ((0, ph), (0, pw), (0, 0)), mode="symmetric")


def stylize_window(
    window: np.ndarray,
    model: StyleModel,
    style: StyleCode,
    stats: NormStats | None,
    job: WindowJob,
) -> np.ndarray:
    """Stylize one window.

    ``window``: (h, w, 3) HWC RGB, uint8/uint16/float32 (intensity mapped by dtype range).
    Runs on ``model.device``; ``stats=None`` uses the window's own statistics (``--norm in``).
    Returns (h, w, C) in ``job.out_dtype``.  RGBA: the RGB part is stylized and alpha passes
    through untouched.  Gray (C=1): stylized as RGB (gray repeated), and the result's
    luminance (Rec. 601) is kept: luminance transfer.
    """
    channels = window.shape[2]
    if channels == 4:
        rgb = stylize_window(window[..., :3], model, style, stats, job)
        return np.concatenate([rgb, window[..., 3:].astype(rgb.dtype, copy=False)], axis=2)
    if channels == 1:
        rgb = stylize_window(np.repeat(window, 3, axis=2), model, style, stats, job)
        luma = (to_unit(rgb) @ LUMA)[..., None]
        return from_unit(luma, rgb.dtype)
    h, w = window.shape[:2]
    device = model.device
    x = hwc_to_nchw(apply_window(to_unit(pad_to_multiple(window, model.info.size_multiple)), job.window), device)
    try:
        y = _forward(model, x, style, stats, job)
    except torch.OutOfMemoryError:
        # another task's tensors may still be cached: free them and retry once
        if device.type == "cuda":
            torch.cuda.empty_cache()
        try:
            y = _forward(model, x, style, stats, job)
        except torch.OutOfMemoryError as exc:
            raise WindowMemoryError(
                f"out of memory on {device} for a {x.shape[-2]}x{x.shape[-1]} window even after freeing the cache; "
                "use a smaller --stride (windows are stride + 2 * margin), --precision float16/bfloat16, "
                "or fewer --threads-per-worker"
            ) from exc
    y = y[..., :h, :w].clamp(0.0, 1.0)
    return from_unit(invert_window(nchw_to_hwc(y), job.window), np.dtype(job.out_dtype))


class WindowMemoryError(MemoryError):
    """A window does not fit the device's memory, even after freeing cached blocks."""


def _forward(model: StyleModel, x: torch.Tensor, style: StyleCode, stats: NormStats | None, job: WindowJob):
    with torch.inference_mode(), _autocast(x.device, job.precision):
        y = model(x, style, stats, alpha=job.alpha)
        if job.preserve_color:
            y = preserve_colour(x, y)
    return y.float()
