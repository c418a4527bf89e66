"""A cascaded WCT's thumbnail statistics, tile by tile, so that the pass's memory is set by
the tile and not by the thumbnail.

The thumbnail keeps the paper's shorter side (1024 px), so its pixel count follows the image's
aspect ratio: 4096x1024 for a 4:1 scan, 102400x1024 for a 100:1 strip.  The whole-thumbnail
pass holds every layer's activations at that size.  For a cascade each level is encode,
statistics, whiten/colour, decode, and the statistics are the features' mean and covariance:
moments, which add up over disjoint parts.  So, level by level:

1. each tile's window (the tile plus ``margin`` pixels of context) is encoded and the moments
   of the tile's own part of the features are added up;
2. the summed moments give the level's mean and whitening matrix;
3. each tile's window is encoded again, whitened, coloured and decoded, and the tile's own
   part becomes the next level's input.

Encoding twice costs time (about 1.4x the whole pass's network time) but keeps nothing of
thumbnail size except two RGB images: memory is the tile's, whatever the aspect ratio.  Each
network sees windows, so near tile borders its output differs from the whole pass's within
its receptive field beyond ``margin``; the statistics, sums over the whole thumbnail, hardly
move (benchmarks/results/stats-memory-*.json: the pictures stylized with either agree to
about 99 dB).  Pure: tensors in, statistics out; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .. import kernels
from ..errors import ParameterError
from ..models.cascade import CascadedWct, whitening_from_moments
from ..stats import NormStats, StyleCode
from .plan import AxisWindow, TileGrid


@dataclass(frozen=True)
class _Tile:
    rows: AxisWindow
    cols: AxisWindow

    def window(self) -> tuple[slice, slice]:
        """The window: the tile and its context."""
        return slice(self.rows.lo, self.rows.hi), slice(self.cols.lo, self.cols.hi)

    def own(self) -> tuple[slice, slice]:
        """The tile itself."""
        return slice(self.rows.start, self.rows.stop), slice(self.cols.start, self.cols.stop)

    def own_in_window(self, s: int = 1) -> tuple[slice, slice]:
        """The tile's part of its window's output, in a map ``s`` times smaller."""
        r, c = self.rows, self.cols
        return (slice((r.start - r.lo) // s, (r.stop - r.lo) // s),
                slice((c.start - c.lo) // s, (c.stop - c.lo) // s))


def _empty_like(t: Tensor, shape: tuple[int, ...]) -> Tensor:
    """An empty map of ``shape`` in ``t``'s dtype, device and memory format (a network gives
    the same numbers for the same memory format)."""
    cl = t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()
    return torch.empty(shape, dtype=t.dtype, device=t.device,
                       memory_format=torch.channels_last if cl else torch.contiguous_format)


def _tiles(h: int, w: int, grid: TileGrid) -> list[_Tile]:
    return [_Tile(r, c) for r in grid.axis_windows(h) for c in grid.axis_windows(w)]


def _moments(encoder: nn.Module, x: Tensor, tiles: list[_Tile]) -> tuple[int, Tensor, Tensor]:
    """The summed moments of the tiles' own parts of the level's features."""
    total: tuple[int, Tensor, Tensor] | None = None
    for tile in tiles:
        f = encoder(x[(..., *tile.window())])
        s = (tile.rows.hi - tile.rows.lo) // f.shape[-2]  # the encoder's downsampling
        n, s1, s2 = kernels.feature_moments(f[(..., *tile.own_in_window(s))])
        total = (n, s1, s2) if total is None else (total[0] + n, total[1] + s1, total[2] + s2)
    assert total is not None  # at least one tile
    return total


def _next_input(encoder: nn.Module, decoder: nn.Module, affine: tuple[Tensor, Tensor], x: Tensor,
                tiles: list[_Tile]) -> Tensor:
    """The next level's input: each tile's window encoded again, transformed and decoded."""
    a, b = affine
    out: Tensor | None = None
    for tile in tiles:
        y = decoder(kernels.apply_channel_affine(encoder(x[(..., *tile.window())]), a, b))
        out = _empty_like(y, tuple(x.shape)) if out is None else out
        out[(..., *tile.own())] = y[(..., *tile.own_in_window())]
    assert out is not None  # at least one tile
    return out


def tiled_cascade_stats(model: CascadedWct, thumb: Tensor, style: StyleCode, alpha: float, grid: TileGrid) -> NormStats:
    """The :class:`NormStats` of ``thumb`` for ``model``, computed tile by tile (see the module
    text); the same points and fields as ``model.collect_stats``.

    ``thumb``: (1, 3, H, W) float32 RGB in [0, 1] on ``model.device``, H and W multiples of
    the network's size multiple.  ``grid``: the thumbnail's tiles; its stride, margin and
    multiple must be multiples of the size multiple, so that every tile maps onto whole
    feature pixels at every level.  Call under ``torch.inference_mode()``.
    """
    m = model.info.size_multiple
    h, w = thumb.shape[-2:]
    if h % m or w % m or grid.stride % m or grid.margin % m or grid.multiple % m:
        raise ParameterError(f"tiled_cascade_stats: thumbnail {h}x{w}, stride {grid.stride}, margin {grid.margin} "
                             f"and multiple {grid.multiple} must be multiples of {model.info.name}'s {m}")
    tiles = _tiles(h, w, grid)
    x, recorded = thumb, {}
    for i, k in enumerate(model.levels):
        point = f"level{k}"
        encoder, decoder = model.encoders[str(k)], model.decoders[str(k)]
        content = whitening_from_moments(*_moments(encoder, x, tiles))
        recorded[point] = {name: v.cpu().numpy() for name, v in content.items()}
        if i + 1 < len(model.levels):
            st = style.tensors(point, x.device)
            affine = kernels.wct_affine(content["mean"], content["whiten"], st["mean"], st["colour"], alpha)
            x = _next_input(encoder, decoder, affine, x, tiles)
    return NormStats.build(model.info.name, recorded)
