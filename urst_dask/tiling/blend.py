"""Blending window outputs into output blocks: weights, pieces and their assembly.

A window's output may be used on its support: its chunk plus ``margin`` into each
neighbour (see :class:`~urst_dask.tiling.plan.AxisWindow`).  The window task cuts that
output into :class:`Piece` objects, one per output block it touches, unweighted, so the
same window pass serves every blend.  A block's task weights the pieces it receives
(``crop``: its own window's, weight one; ``linear``/``gaussian``: its own and its
neighbours'), adds them and divides by the summed weights.  Weights are separable: a row
profile times a column profile.  A block's pieces add up to at most one window's pixels.

Pure numpy: no I/O, no Dask, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .plan import AxisWindow, Blend

GAUSSIAN_SIGMA = 0.125  # of the window's support side, MONAI's default sigma_scale


def axis_weights(win: AxisWindow, blend: Blend) -> np.ndarray:
    """Weights (float32) over the support ``[win.keep_lo, win.keep_hi)`` along one axis.

    ``crop``: one on the chunk, zero outside.  ``linear``: ramps from the support's edge to
    one across each inner overlap band ``[boundary - margin, boundary + margin)``, at pixel
    centres, so the two windows meeting at a boundary have weights summing to one.
    ``gaussian``: a Gaussian centred on the chunk, sigma = 1/8 of the support's side.
    Linear and Gaussian weights are positive everywhere on the support.
    """
    x = np.arange(win.keep_lo, win.keep_hi, dtype=np.float64) + 0.5
    if blend is Blend.CROP:
        return ((x > win.start) & (x < win.stop)).astype(np.float32)
    if blend is Blend.GAUSSIAN:
        centre = 0.5 * (win.start + win.stop)
        sigma = GAUSSIAN_SIGMA * (win.keep_hi - win.keep_lo)
        return np.exp(-0.5 * ((x - centre) / sigma) ** 2).astype(np.float32)
    w = np.ones(x.shape, np.float64)
    left, right = win.start - win.keep_lo, win.keep_hi - win.stop  # feather width each side (0 at borders)
    if left:
        w = np.minimum(w, (x - win.keep_lo) / (2 * left))
    if right:
        w = np.minimum(w, (win.keep_hi - x) / (2 * right))
    return w.astype(np.float32)


@dataclass(frozen=True)
class Piece:
    """Part of one window's output (unweighted) that lands in one output block.

    ``target``: the block (row, column) in the output's block grid; ``y0, x0``: where the
    piece starts inside that block; ``rgb``: (h, w, 3) float32 network output; ``ywin``,
    ``xwin``: the window it came from (its weights are computed from these);
    ``home``: whether the target is the window's own block.  ``extra``: channels that bypass
    the network (alpha), raw, for the window's own block only (``rgb`` then empty).
    """

    target: tuple[int, int]
    y0: int
    x0: int
    rgb: np.ndarray
    ywin: AxisWindow
    xwin: AxisWindow
    home: bool
    extra: np.ndarray | None = None


def cut_pieces(rgb: np.ndarray, ywin: AxisWindow, xwin: AxisWindow, row_edges: tuple[int, ...],
               col_edges: tuple[int, ...], home: tuple[int, int]) -> list[Piece]:
    """Cut one window's output on its support into pieces per output block.

    ``rgb``: (keep_h, keep_w, 3) float32, the window's output on ``[keep_lo, keep_hi)`` of
    both axes.  ``row_edges``/``col_edges``: the output blocks' edges in global pixels;
    ``home``: the window's own block.
    """
    pieces = []
    for bi in _blocks_touched(ywin, row_edges, home[0]):
        y_lo, y_hi = max(ywin.keep_lo, row_edges[bi]), min(ywin.keep_hi, row_edges[bi + 1])
        for bj in _blocks_touched(xwin, col_edges, home[1]):
            x_lo, x_hi = max(xwin.keep_lo, col_edges[bj]), min(xwin.keep_hi, col_edges[bj + 1])
            part = rgb[y_lo - ywin.keep_lo : y_hi - ywin.keep_lo, x_lo - xwin.keep_lo : x_hi - xwin.keep_lo]
            pieces.append(Piece((bi, bj), y_lo - row_edges[bi], x_lo - col_edges[bj], np.ascontiguousarray(part),
                                ywin, xwin, (bi, bj) == home))
    return pieces


def _blocks_touched(win: AxisWindow, edges: tuple[int, ...], home: int) -> list[int]:
    return [b for b in (home - 1, home, home + 1)
            if 0 <= b < len(edges) - 1 and edges[b] < win.keep_hi and win.keep_lo < edges[b + 1]]


def _profile(win: AxisWindow, blend: Blend, g0: int, n: int) -> np.ndarray:
    return axis_weights(win, blend)[g0 - win.keep_lo : g0 - win.keep_lo + n]


def _crop(pieces: list[Piece], shape: tuple[int, int], origin: tuple[int, int]) -> np.ndarray:
    """Each pixel from its own chunk's window (the paper's assembling)."""
    home = [p for p in pieces if p.home]
    if len(home) == 1 and home[0].rgb.shape[:2] == shape:
        return home[0].rgb
    out = np.zeros(shape + (3,), np.float32)
    for p in home:
        h, w = p.rgb.shape[:2]
        wy = _profile(p.ywin, Blend.CROP, origin[0] + p.y0, h).astype(bool)
        wx = _profile(p.xwin, Blend.CROP, origin[1] + p.x0, w).astype(bool)
        region = out[p.y0 : p.y0 + h, p.x0 : p.x0 + w]
        region[np.ix_(wy, wx)] = p.rgb[np.ix_(wy, wx)]
    return out


def assemble(pieces: list[Piece], shape: tuple[int, int], origin: tuple[int, int], blend: Blend) -> np.ndarray:
    """Weight, add and normalize the pieces of one block (at global ``origin``).

    Returns (h, w, 3) float32.  With ``crop`` each pixel comes from its own chunk's window.
    Blends are computed as that crop result plus the weighted mean of each window's
    difference from it, so where the windows agree the result is exactly the crop result
    (no rounding from the weights).  Pieces are added in the order given (callers give a
    fixed order, so the result is byte-identical on every run).
    """
    base = _crop(pieces, shape, origin)
    if blend is Blend.CROP:
        return base
    acc = np.zeros(shape + (3,), np.float32)
    wsum = np.zeros(shape, np.float32)
    for p in pieces:
        h, w = p.rgb.shape[:2]
        wy = _profile(p.ywin, blend, origin[0] + p.y0, h)
        wx = _profile(p.xwin, blend, origin[1] + p.x0, w)
        weight = np.outer(wy, wx)
        acc[p.y0 : p.y0 + h, p.x0 : p.x0 + w] += (p.rgb - base[p.y0 : p.y0 + h, p.x0 : p.x0 + w]) * weight[..., None]
        wsum[p.y0 : p.y0 + h, p.x0 : p.x0 + w] += weight
    if not np.all(wsum > 0):
        raise RuntimeError("internal error: an output pixel is covered by no window")  # a geometry bug, not input
    return base + acc / wsum[..., None]
