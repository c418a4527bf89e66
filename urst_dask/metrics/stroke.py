"""Stroke size: the dominant spatial wavelength of an image's texture, in pixels.

Definition (:func:`stroke_size`):

1. Luminance ``Y = 0.299 R + 0.587 G + 0.114 B`` (one channel: itself), in float64.
2. Square tiles of side ``T`` (default 512, smaller for small images) on an even grid, at most
   ``max_tiles`` of them; each tile has its mean removed and is multiplied by a 2-D Hann
   window; the power spectra ``|FFT|^2`` of the tiles are averaged.
3. Radial average in integer frequency bins ``k = 1 .. T/2`` (``k`` cycles per tile, i.e.
   ``k / T`` cycles per pixel, wavelength ``T / k`` px): ``P(k)``.
4. Power per octave: ``E(k) = k^2 P(k)`` (the power in an annulus is ``2 pi k P(k) dk`` and
   ``dk = k d(ln k)``).  A photograph's ``P(k) ~ k^-2`` makes ``E`` roughly flat, so texture
   that a style network paints at a fixed scale shows as a bump.
5. ``wavelength = T / k*`` with ``k*`` the peak of ``E`` (lightly smoothed, ``[1, 2, 1] / 4``)
   over ``k >= k_min`` (default 4: wavelengths up to ``T / 4`` = 128 px), refined by a
   parabola through the peak and its neighbours.  ``centroid`` is the power-weighted
   geometric mean wavelength over the same band, a steadier summary when there is no
   single peak.

A pure sinusoid of wavelength ``L`` (any orientation, ``2 <= L <= T / (k_min + 1.5)``, 45 px
for 256-px tiles, 93 px for 512) measures ``L`` within 5 %; longer wavelengths approach
``T / k_min`` (the band's end); white noise measures 2 px (the peak sits at the Nyquist
frequency).  Bigger strokes -> a longer wavelength.  Pure numpy: a Dask image's tiles are
placed by :func:`tile_origins` and read by :mod:`urst_dask.pipeline.quality`.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ..errors import ParameterError

LUMA = np.array([0.299, 0.587, 0.114])
DEFAULT_TILE = 512
DEFAULT_MAX_TILES = 16
DEFAULT_K_MIN = 4


def luminance(tile: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) -> (H, W) float64 luminance (alpha ignored)."""
    a = np.asarray(tile, dtype=np.float64)
    if a.ndim == 2:
        return a
    if a.ndim != 3:
        raise ParameterError(f"image: shape {a.shape}; expected (H, W) or (H, W, C)")
    if a.shape[2] >= 3:
        return a[..., :3] @ LUMA
    return a[..., 0]


def tile_power(y: np.ndarray) -> np.ndarray:
    """Power spectrum ``|FFT|^2`` of a square (T, T) luminance tile, mean removed, Hann-windowed."""
    t = y.shape[0]
    w = np.hanning(t)
    return np.abs(np.fft.fft2((y - y.mean()) * np.outer(w, w))) ** 2


def radial_average(power: np.ndarray) -> np.ndarray:
    """``P(k)`` for ``k = 0 .. T/2`` (mean of the spectrum over annuli ``round(|f| T) = k``)."""
    t = power.shape[0]
    f = np.fft.fftfreq(t) * t
    k = np.rint(np.hypot(f[:, None], f[None, :])).astype(np.int64)
    keep = k <= t // 2
    sums = np.bincount(k[keep], weights=power[keep], minlength=t // 2 + 1)
    counts = np.bincount(k[keep], minlength=t // 2 + 1)
    return sums / np.maximum(counts, 1)


def _origins(h: int, w: int, t: int, max_tiles: int) -> list[tuple[int, int]]:
    per_side = max(1, int(np.floor(np.sqrt(max_tiles))))
    ys = np.unique(np.linspace(0, h - t, min(per_side, max(1, h // t))).round().astype(int))
    xs = np.unique(np.linspace(0, w - t, min(per_side, max(1, w // t))).round().astype(int))
    return [(int(y), int(x)) for y in ys for x in xs][:max_tiles]


def tile_origins(shape: tuple[int, ...], tile: int = DEFAULT_TILE,
                 max_tiles: int = DEFAULT_MAX_TILES) -> tuple[list[tuple[int, int]], int]:
    """Where the tiles of an (H, W[, C]) image's stroke size lie: their (y, x) origins and side."""
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3):
        raise ParameterError(f"image: shape {shape}; expected (H, W) or (H, W, C)")
    h, w = shape[:2]
    t = min(int(tile), h, w) // 2 * 2
    if t < 16:
        raise ParameterError(f"image: {w} x {h} is too small for a stroke size (needs 16 x 16 or more)")
    if max_tiles < 1:
        raise ParameterError(f"max_tiles={max_tiles}: must be >= 1")
    return _origins(h, w, t, max_tiles), t


def tiles_spectrum(tiles: Iterable[np.ndarray], side: int) -> np.ndarray:
    """The radial power spectrum ``P(k)`` averaged over (side, side[, C]) numpy tiles."""
    total, n = np.zeros(side // 2 + 1), 0
    for t in tiles:
        total += radial_average(tile_power(luminance(t)))
        n += 1
    return total / max(n, 1)


def spectrum(image: np.ndarray, tile: int = DEFAULT_TILE, max_tiles: int = DEFAULT_MAX_TILES) -> tuple[np.ndarray, int]:
    """The tile-averaged radial power spectrum ``P(k)`` of ``image`` (H, W[, C]) and the tile side used."""
    origins, t = tile_origins(image.shape, tile, max_tiles)
    return tiles_spectrum((image[y : y + t, x : x + t] for y, x in origins), t), t


def stroke_size(image: np.ndarray, *, tile: int = DEFAULT_TILE, max_tiles: int = DEFAULT_MAX_TILES,
                k_min: int = DEFAULT_K_MIN) -> dict[str, float]:
    """``{"wavelength": px, "centroid": px, "tile": T}``: the dominant texture wavelength of
    ``image`` (numpy, H, W[, C], any dtype; see the module docstring for the definition).
    :func:`urst_dask.pipeline.quality.stroke_size` reads a Dask image's tiles one by one."""
    origins, t = tile_origins(image.shape, tile, max_tiles)
    return stroke_from_tiles((image[y : y + t, x : x + t] for y, x in origins), t, k_min=k_min)


def stroke_from_tiles(tiles: Iterable[np.ndarray], side: int, *, k_min: int = DEFAULT_K_MIN) -> dict[str, float]:
    """:func:`stroke_size` from the image's tiles (numpy, ``side`` x ``side``, as placed by
    :func:`tile_origins`)."""
    p, t = tiles_spectrum(tiles, side), side
    kmax = t // 2
    k_lo = max(1, min(int(k_min), kmax - 2))
    k = np.arange(kmax + 1, dtype=np.float64)
    e = k**2 * p
    smooth = e.copy()
    smooth[1:-1] = (e[:-2] + 2 * e[1:-1] + e[2:]) / 4
    band = np.arange(k_lo, kmax + 1)
    if not np.any(smooth[band] > 0):  # a flat image: no texture
        return {"wavelength": float("nan"), "centroid": float("nan"), "tile": float(t)}
    i = int(band[np.argmax(smooth[band])])
    peak = float(i)
    if k_lo < i < kmax:  # parabola through the peak and its neighbours
        a, b, c = smooth[i - 1], smooth[i], smooth[i + 1]
        den = a - 2 * b + c
        if den < 0:
            peak = i + 0.5 * (a - c) / den
    weights = e[band]
    centroid = float(np.exp(np.sum(weights * np.log(t / band)) / np.sum(weights)))
    return {"wavelength": float(t / peak), "centroid": centroid, "tile": float(t)}
