"""Image-quality measures for tiled stylization: seams, fidelity, statistics.

Pure numpy on (H, W, C) arrays (any dtype; compared in float64), no I/O.

* :func:`seam_score` - how visible the tile boundaries are: the mean absolute neighbour
  difference across the boundary lines, divided by the same figure on lines 16, 32 and 48 px
  either side (the same phase with respect to the boundary, so periodic decoder artefacts
  cancel).  1.0 means no visible seam; a stitched image with seams scores well above 1.
* :func:`psnr`, :func:`ssim` - fidelity against a reference (e.g. whole-image inference).
* :func:`stats_distance` - per normalization point, how far one set of statistics is from
  another (the paper's Figure 7: thumbnail against full-image statistics).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ParameterError
from ..stats import NormStats

SEAM_OFFSETS = (16, 32, 48)


def _gray(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3:
        raise ParameterError(f"image: shape {a.shape}; expected (H, W) or (H, W, C)")
    return a.astype(np.float64)


def _boundaries(length: int, stride: int) -> list[int]:
    return [b for b in range(stride, length, stride) if b - max(SEAM_OFFSETS) >= 1 and b + max(SEAM_OFFSETS) < length]


def _line_diff(a: np.ndarray, axis: int, lines: Sequence[int]) -> float:
    """Mean |a[line] - a[line - 1]| over the given lines along ``axis`` (all channels)."""
    idx = np.asarray(lines, dtype=np.intp)
    if axis == 0:
        return float(np.abs(a[idx] - a[idx - 1]).mean())
    return float(np.abs(a[:, idx] - a[:, idx - 1]).mean())


def seam_score(image: np.ndarray, stride: int | Sequence[int], offsets: Sequence[int] = SEAM_OFFSETS,
               boundaries: tuple[Sequence[int], Sequence[int]] | None = None) -> float:
    """Seam score of an (H, W[, C]) image stitched from tiles every ``stride`` pixels
    (``(stride_y, stride_x)`` for different strides; tile boundaries at ``k * stride``, or
    at the given (rows, columns) ``boundaries``).

    Ratio of the mean absolute difference between the pixels on either side of each
    boundary to the mean over the reference lines at ``+-offsets`` px from it.  Boundaries
    closer than ``max(offsets)`` to the image edge are skipped.  Raises
    :class:`ParameterError` when the image has no boundary to measure.
    """
    a = _gray(image)
    on, ref = [], []
    for axis, (bounds, refs) in seam_lines(a.shape, stride, offsets, boundaries).items():
        n = a.shape[1 - axis]
        on.append((_line_diff(a, axis, bounds), len(bounds) * n))
        ref.append((_line_diff(a, axis, refs), len(refs) * n))
    if not on:
        raise ParameterError(f"stride={stride!r}: the {a.shape[0]}x{a.shape[1]} image has no tile boundary "
                             f"at least {max(offsets)} px from its edges")
    return seam_ratio(on, ref)


def seam_ratio(on: Sequence[tuple[float, int]], ref: Sequence[tuple[float, int]]) -> float:
    """The seam score from per-axis (mean line difference, pixel count) pairs."""
    num = sum(v * w for v, w in on) / sum(w for _, w in on)
    den = sum(v * w for v, w in ref) / sum(w for _, w in ref)
    return float(num / den) if den > 0 else float("inf") if num > 0 else 1.0


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _gray(a), _gray(b)
    if a.shape != b.shape:
        raise ParameterError(f"images: shapes {a.shape} and {b.shape} differ")
    return a, b


def data_range(dtype: np.dtype) -> float:
    """Peak value for PSNR/SSIM: the integer dtype's maximum, 1.0 for floats."""
    dtype = np.dtype(dtype)
    return float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0


def psnr(image: np.ndarray, reference: np.ndarray, peak: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB (``inf`` for identical images); ``peak`` defaults to
    the reference dtype's range."""
    peak = data_range(np.asarray(reference).dtype) if peak is None else peak
    a, b = _pair(image, reference)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(peak**2 / mse))


def _box(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, valid part only (summed-area table)."""
    k = 2 * r + 1
    c = np.cumsum(np.cumsum(np.pad(x, ((1, 0), (1, 0), (0, 0))), axis=0), axis=1)
    return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)


def ssim(image: np.ndarray, reference: np.ndarray, peak: float | None = None, radius: int = 3) -> float:
    """Mean structural similarity (Wang et al. 2004, 7x7 uniform window, K1 = 0.01,
    K2 = 0.03), averaged over channels and the valid windows."""
    peak = data_range(np.asarray(reference).dtype) if peak is None else peak
    a, b = _pair(image, reference)
    if min(a.shape[:2]) < 2 * radius + 1:
        raise ParameterError(f"images: {a.shape[0]}x{a.shape[1]} is smaller than the {2 * radius + 1}-px SSIM window")
    total, count = ssim_sum(a, b, peak, radius)
    return total / count


def ssim_sum(a: np.ndarray, b: np.ndarray, peak: float, radius: int = 3) -> tuple[float, int]:
    """Sum and count of the SSIM map over the valid windows of two same-shape blocks (the
    block form of :func:`ssim`: blocks overlapped by ``radius`` add up to the whole image)."""
    a, b = _pair(a, b)
    if min(a.shape[:2]) < 2 * radius + 1:
        return 0.0, 0
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    ma, mb = _box(a, radius), _box(b, radius)
    va = _box(a * a, radius) - ma * ma
    vb = _box(b * b, radius) - mb * mb
    cov = _box(a * b, radius) - ma * mb
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    return float(s.sum()), int(s.size)


def seam_lines(shape: tuple[int, ...], stride: int | Sequence[int],
               offsets: Sequence[int] = SEAM_OFFSETS,
               boundaries: tuple[Sequence[int], Sequence[int]] | None = None) -> dict[int, tuple[list[int], list[int]]]:
    """Per axis, the boundary lines and reference lines :func:`seam_score` compares (each
    line ``k`` is compared with line ``k - 1``).  ``boundaries``: the (rows, columns) where
    tiles really meet, when they are not every ``stride`` (a short last tile merged into its
    neighbour); those closer than ``max(offsets)`` to an edge are skipped as well."""
    sy, sx = (stride, stride) if isinstance(stride, (int, np.integer)) else tuple(stride)
    out = {}
    for axis, s in ((0, sy), (1, sx)):
        n = shape[axis]
        bounds = _boundaries(n, int(s)) if boundaries is None else \
            [int(b) for b in boundaries[axis] if b - max(offsets) >= 1 and b + max(offsets) < n]
        if bounds:
            out[axis] = (bounds, [b + sign * o for b in bounds for o in offsets for sign in (-1, 1)])
    return out


def stats_distance(stats: NormStats, reference: NormStats) -> dict[str, float]:
    """Per normalization point, the relative distance of ``stats`` from ``reference``:
    ``||s - r|| / ||r||`` over all fields of the point (means, stds or matrices) together.
    Both must come from the same network (same points and field shapes)."""
    if stats.points() != reference.points():
        raise ParameterError(f"stats: points {stats.points()} differ from the reference's {reference.points()}")
    out = {}
    for point in reference.points():
        num = den = 0.0
        for name, ref in reference[point].items():
            val = np.asarray(stats[point][name], np.float64)
            ref = np.asarray(ref, np.float64)
            num += float(np.sum((val - ref) ** 2))
            den += float(np.sum(ref**2))
        out[point] = float(np.sqrt(num / den)) if den > 0 else float(np.sqrt(num))
    return out
