"""Deterministic synthetic images with detail at every scale, computed block by block.

``synthetic_block(y0, x0, h, w)`` depends only on absolute pixel coordinates and the seed,
so any chunking of a huge image gives the same pixels and no block ever needs another.
Content is multi-octave value noise with a roughly 1/f amplitude spectrum (cells of 2 px
to 4096 px), coloured and cut into regions with sharp edges, so that statistics look like a
photograph's at every scale, not like an upscaled small picture.
"""

from __future__ import annotations

import numpy as np

_M = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(v: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays."""
    with np.errstate(over="ignore"):
        v = v + np.uint64(0x9E3779B97F4A7C15)
        v = (v ^ (v >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        v = (v ^ (v >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return v ^ (v >> np.uint64(31))


def _lattice(iy: np.ndarray, ix: np.ndarray, salt: int) -> np.ndarray:
    """Uniform [0, 1) values at integer lattice points (outer product of iy and ix)."""
    with np.errstate(over="ignore"):
        a = _mix(iy.astype(np.int64).view(np.uint64) ^ np.uint64(salt * 0x632BE59BD9B4E019 & 0xFFFFFFFFFFFFFFFF))
        v = _mix(a[:, None] ^ (ix.astype(np.int64).view(np.uint64)[None, :] * np.uint64(0xD6E8FEB86659FD93)))
    return (v >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24)


def _interp_axis(start: int, n: int, cell: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    t = (np.arange(start, start + n, dtype=np.float64) + 0.5) / cell - 0.5
    i0 = np.floor(t).astype(np.int64)
    f = t - i0
    f = (f * f * (3 - 2 * f)).astype(np.float32)  # smoothstep
    lo = int(i0.min())
    return i0 - lo, f, lo, int(i0.max()) + 2


def value_noise(y0: int, x0: int, h: int, w: int, cell: int, salt: int) -> np.ndarray:
    """Smooth value noise with lattice spacing ``cell`` px over the block, float32 [0, 1)."""
    ry, fy, ly, hy = _interp_axis(y0, h, cell)
    rx, fx, lx, hx = _interp_axis(x0, w, cell)
    lat = _lattice(np.arange(ly, hy), np.arange(lx, hx), salt)
    rows = lat[ry] * (1 - fy)[:, None] + lat[ry + 1] * fy[:, None]  # (h, nx)
    return rows[:, rx] * (1 - fx)[None, :] + rows[:, rx + 1] * fx[None, :]


def fractal_noise(y0: int, x0: int, h: int, w: int, salt: int, *, finest: int = 2, coarsest: int = 4096,
                  exponent: float = 0.75) -> np.ndarray:
    """Sum of octaves ``finest..coarsest`` with amplitude ``cell ** exponent``, normalised to ~[0, 1]."""
    total = np.zeros((h, w), dtype=np.float32)
    norm = 0.0
    cell = finest
    octave = 0
    while cell <= coarsest:
        amp = float(cell) ** exponent
        total += np.float32(amp) * (value_noise(y0, x0, h, w, cell, salt * 131 + octave) - np.float32(0.5))
        norm += amp
        cell *= 2
        octave += 1
    return np.clip(total / np.float32(norm) * np.float32(2.2) + np.float32(0.5), 0.0, 1.0)


def synthetic_block(y0: int, x0: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """(h, w, 3) uint8 RGB block of the synthetic image at absolute position (y0, x0)."""
    base = [fractal_noise(y0, x0, h, w, seed * 7 + c, exponent=0.45) for c in range(3)]
    large = fractal_noise(y0, x0, h, w, seed * 7 + 5, finest=128, coarsest=4096, exponent=1.0) > 0.5
    small = fractal_noise(y0, x0, h, w, seed * 7 + 6, finest=8, coarsest=256, exponent=1.0) > 0.55
    lum = 0.25 + 0.5 * base[0] + 0.25 * small
    r = lum * np.where(large, 1.0, 0.55) + 0.2 * base[1] * small
    g = lum * np.where(large, 0.8, 0.9) * (0.7 + 0.3 * base[1])
    b = lum * np.where(large, 0.45, 1.0) * (0.6 + 0.4 * base[2])
    rgb = np.stack([r, g, b], axis=-1)
    return np.rint(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def demo_style(size: int = 768, seed: int = 1) -> np.ndarray:
    """A bold, swirling, painterly (size, size, 3) uint8 pattern to use as a style image."""
    warp = fractal_noise(0, 0, size, size, seed, finest=8, coarsest=512, exponent=1.2)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    phase = 18.0 * (xx + 0.6 * yy) + 9.0 * warp
    stripes = 0.5 + 0.5 * np.sin(phase)
    dabs = fractal_noise(0, 0, size, size, seed + 3, finest=2, coarsest=32, exponent=0.5)
    palette = np.array([[0.05, 0.10, 0.35], [0.95, 0.75, 0.10], [0.80, 0.20, 0.10], [0.10, 0.55, 0.60]], np.float32)
    t = np.clip(stripes * 0.75 + dabs * 0.25, 0, 0.999) * (len(palette) - 1)
    i = t.astype(np.int64)
    f = (t - i)[..., None]
    rgb = palette[i] * (1 - f) + palette[i + 1] * f
    return np.rint(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
