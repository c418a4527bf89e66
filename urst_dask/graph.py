"""All Dask orchestration of urst-dask lives here.

Three graphs, each built by one public function:

* :func:`conditioning` - the thumbnail stage: an exact area reduction of the (chunked,
  never fully loaded) image to the thumbnail, the style code, and the thumbnail
  statistics; a single small result.
* :func:`stylize_array` - the tile stage: one ``map_overlap`` over stride-sized chunks
  whose tasks stylize grid-aligned windows (geometry from :mod:`urst_dask.tiling`), and a
  blockwise layer that blends the overlapping outputs into output blocks; the style code
  and the statistics enter as one graph key each, and the model is fetched from the
  worker's process cache by a small spec.
* :func:`write_blocks` - stores stylized blocks into the output Zarr (whole chunks), only
  the missing ones when a run resumes.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from . import preprocess as pp
from .engine.models import ModelSpec, get_model
from .io import store
from .models.base import ModelInfo
from .stats import NormStats, StyleCode
from .tiling import (
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
    pad_to_multiple,
    stylize_windows,
)

# --------------------------------------------------------------------- thumbnail stage


def _block_partial(block: np.ndarray, shape_in: tuple[int, int], shape_out: tuple[int, int], y0: int, x0: int):
    return pp.area_reduce_block(pp.to_unit(block), shape_in, shape_out, y0, x0)


def _band(partials: list[tuple[int, int, np.ndarray]], width: int, channels: int) -> tuple[int, np.ndarray]:
    """Sum one block-row's partials into a float32 band of full thumbnail width."""
    top = min(oy for oy, _, _ in partials)
    bottom = max(oy + p.shape[0] for oy, _, p in partials)
    band = np.zeros((bottom - top, width, channels), dtype=np.float64)
    for oy, ox, part in partials:
        band[oy - top : oy - top + part.shape[0], ox : ox + part.shape[1]] += part
    return top, band.astype(np.float32)


def _assemble(bands: list[tuple[int, np.ndarray]], shape_out: tuple[int, int], channels: int) -> np.ndarray:
    out = np.zeros(shape_out + (channels,), dtype=np.float32)
    for top, band in bands:
        out[top : top + band.shape[0]] += band
    return out


def thumbnail(image: da.Array, thumb_size: int) -> Delayed:
    """Delayed (th, tw, C) float32 [0, 1] area-reduced thumbnail of an (H, W, C) array.

    Shorter side ``thumb_size`` (the image itself if already smaller).  Each chunk is
    reduced where it lives; its partial sums are added into one band per block-row, and the
    bands into the thumbnail, so no task ever holds more than a band's inputs or the
    thumbnail itself, whatever the image size.
    """
    h, w, c = (int(s) for s in image.shape)
    shape_out = pp.thumb_shape(h, w, thumb_size)
    offsets = [np.cumsum((0,) + image.chunks[i][:-1]) for i in (0, 1)]
    blocks = image.to_delayed()
    bands = []
    for i in range(blocks.shape[0]):
        row = [dask.delayed(_block_partial, pure=True)(blocks[i, j, 0], (h, w), shape_out, int(offsets[0][i]),
                                                       int(offsets[1][j]))
               for j in range(blocks.shape[1])]
        bands.append(dask.delayed(_band, pure=True)(row, shape_out[1], c))
    return dask.delayed(_assemble, pure=True)(bands, shape_out, c)


def _prepare_style(spec: ModelSpec, style_image: np.ndarray | None, style_size: int) -> StyleCode:
    model = get_model(spec)
    x = None
    if style_image is not None:
        x = pp.resize_center_crop(pp.to_unit(style_image), style_size).to(model.device)
    return model.prepare_style(x)


def _intensity_range(thumb: np.ndarray, percentiles: tuple[float, float] | None) -> tuple[float, float] | None:
    return None if percentiles is None else pp.percentile_range(thumb, *percentiles)


def _collect_stats(spec: ModelSpec, thumb: np.ndarray, style: StyleCode, alpha: float,
                   intensity: tuple[float, float] | None = None) -> NormStats:
    import torch

    model = get_model(spec)
    thumb = pp.apply_intensity_range(thumb, intensity)
    thumb = np.repeat(thumb, 3, axis=2) if thumb.shape[2] == 1 else thumb[..., :3]  # gray / RGBA -> RGB
    x = pp.hwc_to_nchw(pad_to_multiple(thumb, model.info.size_multiple), model.device)
    with torch.inference_mode():
        _, stats = model.collect_stats(x, style, alpha)
    return stats


def _annotate(resources: dict[str, float] | None):
    """Resource annotation for the network tasks (``{"GPU": 1}`` on GPU clusters)."""
    return dask.annotate(resources=resources) if resources else contextlib.nullcontext()


def conditioning(
    image: da.Array,
    style_image: np.ndarray | None,
    spec: ModelSpec,
    *,
    thumb_size: int,
    style_size: int,
    alpha: float,
    with_stats: bool = True,
    resources: dict[str, float] | None = None,
    percentiles: tuple[float, float] | None = None,
) -> Delayed:
    """Delayed ``(StyleCode, NormStats | None, intensity range)``: the style prepared once, the
    thumbnail statistics collected once (``with_stats=False`` for ``--norm in``), and the
    intensity range (``percentiles`` of the thumbnail, in [0, 1] units; ``None``: the
    dtype's range).  The two network tasks carry ``resources``."""
    thumb = thumbnail(image, thumb_size) if (with_stats or percentiles) else None
    intensity = dask.delayed(_intensity_range, pure=True)(thumb, percentiles) if percentiles else None
    with _annotate(resources):
        style = dask.delayed(_prepare_style, pure=True)(spec, style_image, style_size)
        stats = dask.delayed(_collect_stats, pure=True)(spec, thumb, style, alpha, intensity) if with_stats else None
    return dask.delayed(tuple, pure=True)([style, stats, intensity])


def _model_info(spec: ModelSpec) -> ModelInfo:
    return get_model(spec).info


def model_info(spec: ModelSpec, resources: dict[str, float] | None = None) -> Delayed:
    """Delayed :class:`ModelInfo` of the network, read where the network runs (a worker loads
    it once and keeps it for the tile stage)."""
    with _annotate(resources):
        return dask.delayed(_model_info, pure=True)(spec)


# ------------------------------------------------------------------------- tile stage


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


def _standard_window(geo: _Layout, multiple: int) -> tuple[int, int]:
    """The largest window of the image, padded to the network's size multiple: compiled
    backends pad every window to it (one compiled network per image)."""
    h = max(r.hi - r.lo for r in geo.rows)
    w = max(c.hi - c.lo for c in geo.cols)
    return h + (-h) % multiple, w + (-w) % multiple


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
    outs = stylize_windows(crops, model, style, stats, job, batch=batch, shape=_standard_window(geo, model.info.size_multiple))
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


def stylize_array(
    image: da.Array,
    spec: ModelSpec,
    style: StyleCode | Delayed,
    stats: NormStats | Delayed | None,
    grid: TileGrid | TilePlan,
    job: WindowJob,
    *,
    whole: bool = False,
    batch: int = 1,
    resources: dict[str, float] | None = None,
) -> da.Array:
    """Lazy (H, W, C) stylized image in ``job.out_dtype`` (C as the input: RGB, RGBA, gray).

    ``image``: (H, W, C) dask array.  Blocks are ``grid.stride`` high and ``batch`` strides
    wide (see :meth:`TileGrid.axis_chunks`).  One ``map_overlap`` (no boundary padding:
    windows stop at the image border as whole-image inference does) hands each task its
    block plus the neighbours' pixels; the task stylizes the block's grid-aligned windows and
    cuts their outputs into pieces, one per output block they reach.  A second, blockwise
    layer weights and adds the pieces of each output block (its own window's, plus the
    neighbours' for ``linear``/``gaussian``) and converts to the output dtype.  ``whole=True`` makes the whole image one window.
    ``style`` and ``stats`` become one graph key each; the window tasks carry ``resources``
    (e.g. ``{"GPU": 1}``).  A :class:`TilePlan` is resolved here against the network, which
    this process then loads; the pipeline passes a resolved :class:`TileGrid`.
    """
    if isinstance(grid, TilePlan):  # resolve against the network, loaded in this process
        info = get_model(spec).info
        grid = grid.resolve(info.size_multiple, info.seam_margin, info.receptive_field)
    shape = tuple(int(s) for s in image.shape)
    geo = layout(shape, grid, whole, batch)
    chunks = (tuple(np.diff(geo.row_edges)), tuple(np.diff(geo.col_edges)), (shape[2],))
    image = image.rechunk(tuple(tuple(int(c) for c in axis) for axis in chunks))
    style_key = style if isinstance(style, Delayed) else dask.delayed(style, pure=True)
    stats_key = stats if (stats is None or isinstance(stats, Delayed)) else dask.delayed(stats, pure=True)
    with _annotate(resources):
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


# ---------------------------------------------------------------------------- writing


def _write_block(block: np.ndarray, *, path: str, block_info: dict[Any, Any] | None = None) -> np.ndarray:
    assert block_info is not None  # dask passes it to every block
    (y0, _), (x0, _), _ = block_info[0]["array-location"]
    store.write_region(path, y0, x0, block)
    return np.ones((1, 1), dtype=bool)


def missing_blocks(stylized: da.Array, chunk: int, present: set[tuple[int, int]]) -> list[tuple[int, int]]:
    """Blocks (row, col) of ``stylized`` with any output chunk (``chunk`` px) not in ``present``."""
    offsets = [np.cumsum((0,) + stylized.chunks[i]) for i in (0, 1)]
    todo = []
    for i in range(stylized.numblocks[0]):
        rows = range(offsets[0][i] // chunk, (offsets[0][i + 1] - 1) // chunk + 1)
        for j in range(stylized.numblocks[1]):
            cols = range(offsets[1][j] // chunk, (offsets[1][j + 1] - 1) // chunk + 1)
            if any((r, c) not in present for r in rows for c in cols):
                todo.append((i, j))
    return todo


BLEND_MIN_COLUMNS = 16  # strips at least this wide when blending: <= 12.5 % recomputed windows


def strips(blocks: list[tuple[int, int]], n_rows: int, threads: int, min_columns: int = 4) -> list[list[tuple[int, int]]]:
    """Split the windows to write into vertical strips of block-columns, computed one strip
    after another.

    ``map_overlap`` needs a window's neighbours, so a graph over the whole image keeps a
    frontier of blocks as wide as the image in memory (it grows with the width: measured
    +60 % per worker at 40000 px).  A strip of ``k`` columns keeps it ``k`` blocks wide,
    whatever the image size.  ``k`` is at least ``min_columns`` and large enough that a
    strip holds ~8 windows per worker thread, so every thread stays busy.  With blending, a
    strip also computes the window column on each side of it (their pieces feather into the
    strip's edge blocks): ``2 / k`` extra windows, so blending callers pass a larger
    ``min_columns`` (:data:`BLEND_MIN_COLUMNS`).
    """
    if not blocks:
        return []
    k = max(min_columns, -(-8 * max(1, threads) // max(1, n_rows)))
    grouped: dict[int, list[tuple[int, int]]] = {}
    for i, j in sorted(blocks, key=lambda b: (b[1] // k, b[0], b[1])):
        grouped.setdefault(j // k, []).append((i, j))
    return list(grouped.values())


def write_blocks(stylized: da.Array, path: str, blocks: list[tuple[int, int]] | None = None) -> list[da.Array]:
    """Lazy writes of the given blocks (all if ``None``); computing them stores each block.
    Blocks not asked for are culled with their windows, so a resumed run computes only those."""
    written = stylized.map_blocks(
        _write_block,
        path=str(path),
        dtype=bool,
        drop_axis=2,
        chunks=(tuple(1 for _ in stylized.chunks[0]), tuple(1 for _ in stylized.chunks[1])),
        meta=np.empty((0, 0), dtype=bool),
    )
    if blocks is None:
        return [written]
    return [written.blocks[i, j] for i, j in blocks]


# ------------------------------------------------------------------------ quality


def _ssim_block(a: np.ndarray, b: np.ndarray, *, peak: float, radius: int) -> np.ndarray:
    from .metrics import ssim_sum

    total, count = ssim_sum(a, b, peak, radius)
    return np.array([[[total, count]]], dtype=np.float64)


def _at_least(chunks: tuple[int, ...], minimum: int) -> tuple[int, ...]:
    """The same axis cut in chunks of at least ``minimum`` (a shorter chunk joins the next;
    a short last one joins the previous)."""
    out: list[int] = []
    for c in chunks:
        if out and out[-1] < minimum:
            out[-1] += c
        else:
            out.append(c)
    if len(out) > 1 and out[-1] < minimum:
        tail = out.pop()
        out[-1] += tail
    return tuple(out)


def quality(image: da.Array, reference: da.Array | None, stride: int, peak: float, radius: int = 3) -> Delayed:
    """Delayed dict of :mod:`urst_dask.metrics` figures for an (H, W, C) image, chunk by
    chunk (never loaded whole): ``seam`` at ``stride`` (only the compared lines are read),
    and against ``reference`` (same shape) ``psnr`` and ``ssim`` (blocks overlapped by the
    SSIM window's radius, so the sum equals the whole-image computation)."""
    from . import metrics

    a = image.astype(np.float64).rechunk({2: -1})
    parts: dict[str, Any] = {}
    lines = metrics.seam_lines(a.shape, stride)
    on: list[Any] = []
    ref: list[Any] = []
    for axis, (bounds, refs) in lines.items():
        n = a.shape[1 - axis]
        for picked, out in ((bounds, on), (refs, ref)):
            idx = np.asarray(picked)
            diff = da.abs(da.take(a, idx, axis=axis) - da.take(a, idx - 1, axis=axis)).mean()
            out.append((diff, len(picked) * n))
    parts["seam"] = dask.delayed(metrics.seam_ratio)(on, ref) if on else None
    if reference is not None:
        a = a.rechunk(tuple(_at_least(c, 2 * radius + 1) for c in a.chunks[:2]) + ((a.shape[2],),))
        b = reference.astype(np.float64).rechunk(a.chunks)
        mse = ((a - b) ** 2).mean()
        parts["psnr"] = dask.delayed(lambda m: float("inf") if m == 0 else float(10 * np.log10(peak**2 / m)))(mse)
        sums = da.map_overlap(_ssim_block, a, b, depth={0: radius, 1: radius, 2: 0}, boundary="none", trim=False,
                              allow_rechunk=False, peak=peak, radius=radius, dtype=np.float64,
                              chunks=(tuple(1 for _ in a.chunks[0]), tuple(1 for _ in a.chunks[1]), (2,)),
                              meta=np.empty((0, 0, 0), np.float64))
        totals = sums.sum(axis=(0, 1))
        parts["ssim"] = dask.delayed(lambda t: float(t[0] / t[1]) if t[1] else float("nan"))(totals)
    return dask.delayed(dict)(parts)


# -------------------------------------------------------------------- synthetic input


def _synthetic_chunk(*, seed: int, block_info: dict[Any, Any] | None = None) -> np.ndarray:
    from .synthetic import synthetic_block

    assert block_info is not None  # dask passes it to every block
    (y0, y1), (x0, x1), _ = block_info[None]["array-location"]
    return synthetic_block(y0, x0, y1 - y0, x1 - x0, seed)


def synthetic_array(shape: tuple[int, int], *, seed: int = 0, chunk: int = 1000) -> da.Array:
    """Lazy (H, W, 3) uint8 synthetic image (see :mod:`urst_dask.synthetic`), any size."""
    h, w = shape
    chunks = da.core.normalize_chunks((chunk, chunk, 3), (h, w, 3))
    return da.map_blocks(_synthetic_chunk, seed=seed, dtype=np.uint8, chunks=chunks,
                         meta=np.empty((0, 0, 0), np.uint8))
