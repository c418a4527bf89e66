"""The per-window kernel: one overlapped window in, its stylized pixels out.

Numpy in, numpy out, no I/O, no Dask.  Several windows of one shape can go through the
network in one call (a batch); the only state kept is the process's batch cap per device
(:mod:`urst_dask.runtime`), lowered when a device runs out of memory.  The network never
resizes its output: each window is padded (numpy ``symmetric``, the same reflection dask's ``boundary="reflect"``
uses) on the bottom/right to the network's size multiple, stylized, and cropped back.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
import typing
from typing import Sequence

import numpy as np
import torch

from .models.base import StyleModel
from .runtime import batch_cap, lower_batch_cap
from .preprocess import apply_window, from_unit, hwc_to_nchw, invert_window, nchw_to_hwc, preserve_colour, to_unit
from .settings import Precision
from .stats import NormStats, StyleCode


log = logging.getLogger("urst_dask")
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

    ``window``: (h, w, C) HWC, uint8/uint16/float32 (intensity mapped by dtype range or
    ``job.window``).  Runs on ``model.device``; ``stats=None`` uses the window's own
    statistics (``--norm in``).  Returns (h, w, C) in ``job.out_dtype``.  RGBA: the RGB part
    is stylized and alpha passes through untouched.  Gray (C=1): stylized as RGB (gray
    repeated), and the result's luminance (Rec. 601) is kept: luminance transfer.
    """
    return stylize_windows([window], model, style, stats, job)[0]


def stylize_windows(
    windows: Sequence[np.ndarray],
    model: StyleModel,
    style: StyleCode,
    stats: NormStats | None,
    job: WindowJob,
    batch: int = 1,
) -> list[np.ndarray]:
    """Stylize several windows, up to ``batch`` windows of one shape per network call.

    Each window as in :func:`stylize_window`; the results are the same as one call per
    window (the statistics are the thumbnail's, shared by every window).  With ``stats=None``
    (``--norm in``) each window needs its own statistics, so windows go one at a time.  On an
    out-of-memory error the batch is halved (and stays halved in this process for this
    device, see :func:`batch_cap`); a single window that still does not fit after the cache
    is freed raises :class:`WindowMemoryError`.
    """
    rgb = [_as_rgb(w) for w in windows]
    out: list[np.ndarray | None] = [None] * len(rgb)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, w in enumerate(rgb):
        groups.setdefault(w.shape, []).append(i)
    per_call = 1 if stats is None else max(1, int(batch))
    device = model.device
    for shape, idx in groups.items():
        h, w = shape[:2]
        for k in range(0, len(idx), per_call):
            part = idx[k : k + per_call]
            xs = [hwc_to_nchw(apply_window(to_unit(pad_to_multiple(rgb[i], model.info.size_multiple)), job.window),
                              device) for i in part]
            x = xs[0] if len(xs) == 1 else torch.cat(xs)  # one window: no copy
            y = _run_in_batches(model, x.contiguous(memory_format=torch.channels_last), style, stats, job)
            y = y[..., :h, :w].clamp(0.0, 1.0)
            for j, i in enumerate(part):
                out[i] = from_unit(invert_window(nchw_to_hwc(y[j : j + 1]), job.window), np.dtype(job.out_dtype))
    return [_restore_channels(o, w) for o, w in zip(out, windows)]


def _as_rgb(window: np.ndarray) -> np.ndarray:
    if window.shape[2] == 4:
        return window[..., :3]
    if window.shape[2] == 1:
        return np.repeat(window, 3, axis=2)
    return window


def _restore_channels(rgb: np.ndarray | None, window: np.ndarray) -> np.ndarray:
    """RGBA: alpha back untouched; gray: the stylized luminance."""
    rgb = typing.cast(np.ndarray, rgb)  # every index is filled by stylize_windows
    if window.shape[2] == 4:
        return np.concatenate([rgb, window[..., 3:].astype(rgb.dtype, copy=False)], axis=2)
    if window.shape[2] == 1:
        return from_unit((to_unit(rgb) @ LUMA)[..., None], rgb.dtype)
    return rgb


def _free_cache(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _run_in_batches(model: StyleModel, x: torch.Tensor, style: StyleCode, stats: NormStats | None,
                    job: WindowJob) -> torch.Tensor:
    """``model`` over the (N, 3, H, W) batch ``x`` in slices no larger than this process's
    cap for the device; out of memory halves the slice (down to one window, retried once)."""
    device = x.device
    n = x.shape[0]
    size = min(n, batch_cap(device) or n)
    outs: list[torch.Tensor] = []
    i, retried = 0, False
    while i < n:
        try:
            y = _forward(model, x[i : i + size], style, stats, job)
        except torch.OutOfMemoryError:
            y = None
        if y is not None:
            outs.append(y)
            i += size
            continue
        _free_cache(device)  # outside the except block: the failed call's tensors are released
        if size > 1:
            size //= 2
            lower_batch_cap(device, size)
            log.warning("out of memory on %s: windows per network call lowered to %d", device, size)
        elif not retried:
            retried = True  # another task's tensors may have been cached: retry once
        else:
            raise WindowMemoryError(
                f"out of memory on {device} for a {x.shape[-2]}x{x.shape[-1]} window even after freeing the cache; "
                "use a smaller --stride (windows are stride + 2 * margin), --precision float16/bfloat16, "
                "or fewer --threads-per-worker"
            )
    return outs[0] if len(outs) == 1 else torch.cat(outs)


class WindowMemoryError(MemoryError):
    """A window does not fit the device's memory, even after freeing cached blocks."""


def _forward(model: StyleModel, x: torch.Tensor, style: StyleCode, stats: NormStats | None, job: WindowJob):
    with torch.inference_mode(), _autocast(x.device, job.precision):
        y = model(x, style, stats, alpha=job.alpha)
        if job.preserve_color:
            y = preserve_colour(x, y)
    return y.float()
