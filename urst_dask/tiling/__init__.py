"""Everything about cutting an image into windows and putting their outputs back.

* :mod:`.plan` - the geometry: stride, margin (or ``auto``), alignment to the network's
  size-multiple grid, edge merging, batch grouping;
* :mod:`.window` - the per-window kernel (pad, network, crop; intensity and channels);
* :mod:`.retry` - network calls over batches, with the out-of-memory fallback;
* :mod:`.blend` - weights, pieces and the assembly of overlapping outputs.

The Dask graph that drives them is :func:`urst_dask.pipeline.tiles.tile_graph` (one ``map_overlap``).
"""

from importlib import import_module
from typing import TYPE_CHECKING

from .blend import Piece, assemble, axis_weights, cut_pieces
from .plan import AUTO, AxisWindow, Blend, TileGrid, TilePlan, auto_margin, group_chunks, offsets, window_padding

if TYPE_CHECKING:
    from .retry import WindowMemoryError
    from .window import WindowJob, finish, pad_to_multiple, stylize_window, stylize_windows

# the window kernel and its retries import torch: on first use (the plan and the blend do not)
_LAZY = {"WindowMemoryError": "retry", "WindowJob": "window", "finish": "window", "pad_to_multiple": "window",
         "stylize_window": "window", "stylize_windows": "window"}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_LAZY[name]}", __name__), name)


__all__ = ["AUTO", "AxisWindow", "Blend", "Piece", "TileGrid", "TilePlan", "WindowJob", "WindowMemoryError",
           "assemble", "auto_margin", "axis_weights", "cut_pieces", "finish", "group_chunks", "offsets",
           "pad_to_multiple", "stylize_window", "stylize_windows", "window_padding"]
