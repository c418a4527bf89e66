"""The tile stage's graph: one ``map_overlap`` over stride-sized chunks whose tasks stylize
grid-aligned windows (geometry from :mod:`urst_dask.tiling`), and a blockwise layer that blends
the overlapping outputs into output blocks.  The style code and the statistics enter as one
graph key each, and the model is fetched from the worker's process cache by a small spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from ..engine.models import ModelSpec, get_model
from ..stats import NormStats, StyleCode
from ..tiling import (
    AxisWindow,
    Blend,
    Piece,
    TileGrid,
    TilePlan,
    WindowJob,
    assemble,
    cut_pieces,
    finish,
    group_chunks,
    offsets,
    stylize_windows,
    window_padding,
)
from .conditioning import annotate


@dataclass(frozen=True)
class _Layout:
    """The tile stage's geometry for one image: block edges and windows per axis (small,
    sent with every window task)."""

    rows: tuple[AxisWindow, ...]
    cols: tuple[AxisWindow, ...]
    row_edges: tuple[int, ...]  # block edges (global pixels); a block is one or more chunks
    col_edges: tuple[int, ...]
    col_block: tuple[int, ...]  # the block of each column window
    depth: tuple[int, int]


def layout(shape: tuple[int, ...], grid: TileGrid, whole: bool = False, batch: int = 1) -> _Layout:
    """Blocks and windows of an (H, W, C) image: a block is one chunk high and ``batch``
    chunks wide (one for ``whole``)."""
    h, w = shape[:2]
    rows, cols = grid.axis_windows(h, whole), grid.axis_windows(w, whole)
    batch = 1 if whole else max(1, batch)
    col_groups = group_chunks(tuple(c.stop - c.start for c in cols), batch)
    col_block = tuple(k // batch for k in range(len(cols)))
    return _Layout(rows, cols, offsets(tuple(r.stop - r.start for r in rows)), offsets(col_groups), col_block,
                   (grid.axis_depth(h, whole), grid.axis_depth(w, whole)))


def block_windows(shape: tuple[int, ...], grid: TileGrid, whole: bool = False, batch: int = 1) -> tuple[int, ...]:
    """Windows computed by each block column of :func:`tile_graph` (a block is one window high)."""
    geo = layout(shape, grid, whole, batch)
    return tuple(geo.col_block.count(j) for j in range(len(geo.col_edges) - 1))


def _padding(geo: _Layout, ywin: AxisWindow, xwins: list[AxisWindow], multiple: int) -> list[tuple[int, int, int, int]]:
    """The padding the network runs each of a task's windows with (:func:`window_padding`):
    to the image's largest window, padded to the network's multiple, on the inner sides."""
    std_h = max(r.hi - r.lo for r in geo.rows)
    std_w = max(c.hi - c.lo for c in geo.cols)
    standard = (std_h + (-std_h) % multiple, std_w + (-std_w) % multiple)
    top, bottom = ywin.lo == geo.rows[0].lo, ywin.hi == geo.rows[-1].hi
    return [window_padding(ywin.hi - ywin.lo, xw.hi - xw.lo, standard, starts=(top, xw.lo == geo.cols[0].lo),
                           ends=(bottom, xw.hi == geo.cols[-1].hi), multiple=multiple) for xw in xwins]


def _window_task(block: np.ndarray, *, spec: ModelSpec, style: StyleCode, stats: NormStats | None, job: WindowJob,
                 geo: _Layout, batch: int, block_id: tuple[int, ...] | None = None) -> list[Piece]:
    """One task: the windows of one block (one, or ``batch`` side by side), each cut out of
    the overlapped block at its aligned global position, stylized (same-shape windows in one
    network call) and cut into pieces for the blocks its support touches.  The blend is
    applied by the assembly, so one window pass serves every blend."""
    assert block_id is not None  # dask passes it to every block
    bi, bj = block_id[0], block_id[1]
    y_org = geo.row_edges[bi] - (geo.depth[0] if bi > 0 else 0)  # global origin of the overlapped block
    x_org = geo.col_edges[bj] - (geo.depth[1] if bj > 0 else 0)
    ywin = geo.rows[bi]
    xwins = [c for k, c in enumerate(geo.cols) if geo.col_block[k] == bj]
    crops = [block[ywin.lo - y_org : ywin.hi - y_org, xw.lo - x_org : xw.hi - x_org] for xw in xwins]
    model = get_model(spec)
    outs = stylize_windows(crops, model, style, stats, job, batch=batch,
                           padding=_padding(geo, ywin, xwins, model.info.size_multiple))
    pieces: list[Piece] = []
    for xw, _, out in zip(xwins, crops, outs):
        kept = out[ywin.keep_lo - ywin.lo : ywin.keep_hi - ywin.lo, xw.keep_lo - xw.lo : xw.keep_hi - xw.lo]
        pieces += cut_pieces(kept, ywin, xw, geo.row_edges, geo.col_edges, (bi, bj))
    if block.shape[2] == 4:  # alpha bypasses the network: the home block's, untouched
        alpha = block[geo.row_edges[bi] - y_org : geo.row_edges[bi + 1] - y_org,
                      geo.col_edges[bj] - x_org : geo.col_edges[bj + 1] - x_org, 3:]
        pieces.append(Piece((bi, bj), 0, 0, np.empty((0, 0, 3), np.float32), ywin, xwins[0], True, extra=alpha))
    return pieces


def _assemble_task(target: tuple[int, int], origin: tuple[int, int], shape: tuple[int, int], channels: int,
                   blend: Blend, job: WindowJob, *sources: list[Piece]) -> np.ndarray:
    """One output block: the pieces aimed at it, blended, mapped back to the output dtype."""
    mine = [p for src in sources for p in src if p.target == target]
    extra = next((p.extra for p in mine if p.extra is not None), None)
    rgb = assemble([p for p in mine if p.extra is None], shape, origin, blend)
    return finish(rgb, job, channels, extra)


def tile_graph(
    image: da.Array,
    spec: ModelSpec,
    style: StyleCode | Delayed,
    stats: NormStats | Delayed | None,
    grid: TileGrid | TilePlan,
    job: WindowJob,
    *,
    resources: dict[str, float] | None = None,
) -> da.Array:
    """Lazy (H, W, C) stylized image in ``job.out_dtype`` (C as the input: RGB, RGBA, gray).

    ``image``: (H, W, C) dask array.  Blocks are ``grid.stride`` high and ``batch`` strides
    wide (see :meth:`TileGrid.axis_chunks`).  One ``map_overlap`` (no boundary padding:
    windows stop at the image border as whole-image inference does) hands each task its
    block plus the neighbours' pixels; the task stylizes the block's grid-aligned windows and
    cuts their outputs into pieces, one per output block they reach.  A second, blockwise
    layer weights and adds the pieces of each output block (its own window's, plus the
    neighbours' for ``linear``/``gaussian``) and converts to the output dtype.
    ``job.compute.whole`` makes the whole image one window; ``job.compute.batch`` windows share a task.
    ``style`` and ``stats`` become one graph key each; the window tasks carry ``resources``
    (e.g. ``{"GPU": 1}``).  A :class:`TilePlan` is resolved here against the network, which
    this process then loads; the pipeline passes a resolved :class:`TileGrid`.
    """
    if isinstance(grid, TilePlan):  # resolve against the network, loaded in this process
        info = get_model(spec).info
        grid = grid.resolve(info.size_multiple, info.seam_margin, info.receptive_field)
    whole, batch = job.compute.whole, job.compute.batch
    shape = tuple(int(s) for s in image.shape)
    geo = layout(shape, grid, whole, batch)
    chunks = (tuple(np.diff(geo.row_edges)), tuple(np.diff(geo.col_edges)), (shape[2],))
    image = image.rechunk(tuple(tuple(int(c) for c in axis) for axis in chunks))
    style_key = style if isinstance(style, Delayed) else dask.delayed(style, pure=True)
    stats_key = stats if (stats is None or isinstance(stats, Delayed)) else dask.delayed(stats, pure=True)
    with annotate(resources):
        windows = image.map_overlap(
            _window_task,
            depth={0: geo.depth[0], 1: geo.depth[1], 2: 0},
            boundary="none",
            trim=False,
            allow_rechunk=False,
            dtype=object,
            meta=np.empty((0, 0, 0), dtype=object),
            spec=spec,
            style=style_key,
            stats=stats_key,
            job=job,
            geo=geo,
            batch=1 if whole else batch,
        )
    blend = grid.blend if grid.blends and not whole else Blend.CROP
    return _assembled(windows, image.chunks, geo, blend, job)


def _aimed_at(pieces: list[Piece], target: tuple[int, int]) -> list[Piece]:
    return [p for p in pieces if p.target == target]


def _assembled(windows: da.Array, chunks: tuple[tuple[int, ...], ...], geo: _Layout, blend: Blend,
               job: WindowJob) -> da.Array:
    """The blockwise assembly layer over the window tasks' pieces.  With ``crop`` a block
    depends on its own window task.  With a blend it also takes its up to eight neighbours'
    pieces aimed at it, through small selection tasks, so an assembly task holds at most a
    block plus the margin bands around it, and a window's output is released as soon as it
    has been split."""
    name = f"assemble-{blend.value}-" + tokenize(windows.name, job, blend.value)
    pick = "pieces-" + tokenize(windows.name)
    nr, nc = len(chunks[0]), len(chunks[1])
    channels = chunks[2][0]
    layer: dict[Any, Any] = {}
    for i in range(nr):
        for j in range(nc):
            deps: list[tuple[Any, ...]] = []
            if blend is Blend.CROP:
                deps.append((windows.name, i, j, 0))
            else:
                for di in (-1, 0, 1):
                    for dj in (-1, 0, 1):
                        if 0 <= i + di < nr and 0 <= j + dj < nc:
                            key = (pick, i + di, j + dj, i, j)
                            layer[key] = (_aimed_at, (windows.name, i + di, j + dj, 0), (i, j))
                            deps.append(key)
            layer[(name, i, j, 0)] = (_assemble_task, (i, j), (geo.row_edges[i], geo.col_edges[j]),
                                      (chunks[0][i], chunks[1][j]), channels, blend, job, *deps)
    hlg = HighLevelGraph.from_collections(name, layer, dependencies=[windows])
    dtype = np.dtype(job.out_dtype)
    return da.Array(hlg, name, chunks, dtype=dtype, meta=np.empty((0, 0, 0), dtype=dtype))
