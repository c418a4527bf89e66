"""Temporal flicker of a stylized sequence, relative to its content's own change (pure numpy).

Definition.  Frames are compared in [0, 1] units (integers divided by their dtype's
maximum), RGB (alpha dropped, gray repeated).  For each pair of consecutive frames
``(t - 1, t)`` that is not across a shot cut:

1. the camera's global motion ``d_t = (dy, dx)`` is estimated on the *content* frames by
   phase correlation (:func:`global_shift`: luminance, Hann window, the peak of the
   normalised cross-power spectrum; integer pixels, on the central crop of at most
   ``CROP`` x ``CROP`` pixels), so that ``C_t(y, x) ~ C_{t-1}(y - dy, x - dx)``;
2. the motion-compensated differences are the mean absolute differences over the overlap
   of the two frames once shifted (:func:`aligned_difference`)::

       e_S(t) = mean |S_t(y, x) - S_{t-1}(y - dy, x - dx)|     (stylized)
       e_C(t) = mean |C_t(y, x) - C_{t-1}(y - dy, x - dx)|     (content)

The **flicker** is ``mean_t e_S(t) / max(mean_t e_C(t), FLOOR)``: how much the stylized
sequence changes from frame to frame, once the camera's motion is removed, per unit of the
content's own remaining change (what a pan leaves after a global shift: sub-pixel
resampling, parallax, zoom, noise).  ``FLOOR`` = 1/255 (one 8-bit level) keeps a perfectly
compensated content (an integer-pixel pan of a still image) from dividing by zero.
1.0 means the stylization changes no more than the content; temporally unstable statistics
(per-frame thumbnails) raise it.  Lower is steadier.  A pan is compensated exactly; a zoom
is not (its content change stays in ``e_C``, as in ``e_S``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import numpy as np

CROP = 1024
FLOOR = 1.0 / 255.0
LUMA = np.array([0.299, 0.587, 0.114])


def _unit_rgb(frame: np.ndarray) -> np.ndarray:
    f = np.asarray(frame)
    f = f[..., None] if f.ndim == 2 else f
    f = np.repeat(f, 3, axis=2) if f.shape[2] == 1 else f[..., :3]
    scale = float(np.iinfo(f.dtype).max) if f.dtype.kind in "ui" else 1.0
    return f.astype(np.float32) / np.float32(scale)


def _centre(a: np.ndarray, size: int) -> np.ndarray:
    h, w = a.shape[:2]
    y0, x0 = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return a[y0 : y0 + size, x0 : x0 + size]


def global_shift(prev: np.ndarray, cur: np.ndarray) -> tuple[int, int]:
    """Integer shift ``(dy, dx)`` with ``cur(y, x) ~ prev(y - dy, x - dx)``, by phase
    correlation of the luminance of the central crops ((H, W, C) frames, any dtype)."""
    a = _centre(_unit_rgb(prev), CROP) @ LUMA
    b = _centre(_unit_rgb(cur), CROP) @ LUMA
    win = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
    fa, fb = np.fft.rfft2((a - a.mean()) * win), np.fft.rfft2((b - b.mean()) * win)
    cross = fb * np.conj(fa)
    corr = np.fft.irfft2(cross / np.maximum(np.abs(cross), 1e-12), s=a.shape)
    dy, dx = np.unravel_index(int(np.argmax(corr)), corr.shape)
    h, w = a.shape
    return (int(dy - h) if dy > h // 2 else int(dy)), (int(dx - w) if dx > w // 2 else int(dx))


def aligned_difference(prev: np.ndarray, cur: np.ndarray, shift: tuple[int, int]) -> float:
    """Mean absolute difference, [0, 1] units, between ``cur(y, x)`` and
    ``prev(y - dy, x - dx)`` over the pixels both frames cover (NaN if none)."""
    dy, dx = shift
    a, b = _unit_rgb(prev), _unit_rgb(cur)
    h, w = b.shape[:2]
    ys, yd = slice(max(0, dy), min(h, h + dy)), slice(max(0, -dy), min(h, h - dy))
    xs, xd = slice(max(0, dx), min(w, w + dx)), slice(max(0, -dx), min(w, w - dx))
    cur_part, prev_part = b[ys, xs], a[yd, xd]
    return float(np.abs(cur_part - prev_part).mean()) if cur_part.size else float("nan")


@dataclass(frozen=True)
class Flicker:
    """The flicker figure and its parts (see the module docstring)."""

    flicker: float
    stylized_change: float  # mean_t e_S(t)
    content_change: float  # mean_t e_C(t)
    pairs: int  # consecutive pairs measured
    cuts_skipped: int  # pairs across a cut, left out
    max_shift: int  # largest |dy| or |dx| found

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def flicker(stylized: Iterable[np.ndarray], content: Iterable[np.ndarray], cuts: Sequence[int] = ()) -> Flicker:
    """The flicker of a stylized sequence against its content sequence (same length and
    size; (H, W, C) frames, streamed: two of each held at a time).  ``cuts``: frames that
    start a new shot (the pair ending there is skipped)."""
    cut_set = set(cuts)
    es, ec, skipped, biggest = [], [], 0, 0
    prev_s = prev_c = None
    for t, (s, c) in enumerate(zip(stylized, content, strict=True)):
        if np.shape(s)[:2] != np.shape(c)[:2]:
            raise ValueError(f"frame {t}: stylized {np.shape(s)[:2]} and content {np.shape(c)[:2]} sizes differ")
        if prev_s is not None and prev_c is not None:
            if t in cut_set:
                skipped += 1
            else:
                d = global_shift(prev_c, c)
                biggest = max(biggest, abs(d[0]), abs(d[1]))
                es.append(aligned_difference(prev_s, s, d))
                ec.append(aligned_difference(prev_c, c, d))
        prev_s, prev_c = s, c
    if not es:
        return Flicker(float("nan"), float("nan"), float("nan"), 0, skipped, biggest)
    ms, mc = float(np.nanmean(es)), float(np.nanmean(ec))
    return Flicker(ms / max(mc, FLOOR), ms, mc, len(es), skipped, biggest)
