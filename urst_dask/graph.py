"""All Dask orchestration of urst-dask lives here.

Three graphs, each built by one public function:

* :func:`conditioning` - the thumbnail stage: an exact area reduction of the (chunked,
  never fully loaded) image to the thumbnail, the style code, and the thumbnail
  statistics; a single small result.
* :func:`stylize_array` - the tile stage: ``map_overlap`` over stride-sized chunks with a
  ``margin`` of reflected overlap; the style code and the statistics enter as one graph
  key each, and the model is fetched from the worker's process cache by a small spec.
* :func:`write_blocks` - stores stylized blocks into the output Zarr (whole chunks), only
  the missing ones when a run resumes.
"""

from __future__ import annotations

import contextlib
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.delayed import Delayed

from . import preprocess as pp
from .io import store
from .runtime import ModelSpec, get_model
from .settings import TilePlan
from .stats import NormStats, StyleCode
from .tiles import WindowJob, pad_to_multiple, stylize_window, stylize_windows

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


def _intensity_window(thumb: np.ndarray, percentiles: tuple[float, float] | None) -> tuple[float, float] | None:
    return None if percentiles is None else pp.percentile_window(thumb, *percentiles)


def _collect_stats(spec: ModelSpec, thumb: np.ndarray, style: StyleCode, alpha: float,
                   window: tuple[float, float] | None = None) -> NormStats:
    import torch

    model = get_model(spec)
    thumb = pp.apply_window(thumb, window)
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
    """Delayed ``(StyleCode, NormStats | None, window)``: the style prepared once, the
    thumbnail statistics collected once (``with_stats=False`` for ``--norm in``), and the
    intensity window (``percentiles`` of the thumbnail, in [0, 1] units; ``None``: the
    dtype's range).  The two network tasks carry ``resources``."""
    thumb = thumbnail(image, thumb_size) if (with_stats or percentiles) else None
    window = dask.delayed(_intensity_window, pure=True)(thumb, percentiles) if percentiles else None
    with _annotate(resources):
        style = dask.delayed(_prepare_style, pure=True)(spec, style_image, style_size)
        stats = dask.delayed(_collect_stats, pure=True)(spec, thumb, style, alpha, window) if with_stats else None
    return dask.delayed(tuple, pure=True)([style, stats, window])


# ------------------------------------------------------------------------- tile stage


def _stylize_block(block: np.ndarray, *, spec: ModelSpec, style: StyleCode, stats: NormStats | None,
                   job: WindowJob, plan: TilePlan | None = None, depth_x: int = 0, batch: int = 1) -> np.ndarray:
    """One task: a block of one or more windows side by side along x (``batch`` > 1).

    The block is the chunk plus ``depth_x`` pixels each side; its windows are the chunk's
    stride-wide pieces (``plan.axis_chunks`` of the chunk width: the same cut as with one
    window per chunk) with their margins, stylized in one network call where their shapes
    agree.  Only the windows' centres are placed; the margins are trimmed by map_overlap."""
    model = get_model(spec)
    if plan is None or batch == 1:
        return stylize_window(block, model, style, stats, job)
    widths = plan.axis_chunks(block.shape[1] - 2 * depth_x)
    starts = np.cumsum((0,) + widths[:-1])
    windows = [block[:, x0 : x0 + cw + 2 * depth_x] for x0, cw in zip(starts, widths)]
    results = stylize_windows(windows, model, style, stats, job, batch=batch)
    out = np.zeros(block.shape[:2] + (results[0].shape[2],), dtype=results[0].dtype)
    for x0, cw, res in zip(starts, widths, results):
        out[:, depth_x + x0 : depth_x + x0 + cw] = res[:, depth_x : depth_x + cw]
    return out


def plan_chunks(shape: tuple[int, ...], plan: TilePlan, whole: bool, batch: int = 1) -> tuple[tuple[int, ...], ...]:
    """Chunks of the (H, W, C) image for the tile stage (one chunk for ``whole``); with
    ``batch`` > 1, ``batch`` neighbouring windows along x share a chunk (one task)."""
    h, w, c = shape
    if whole:
        return ((h,), (w,), (c,))
    cols = plan.axis_chunks(w)
    grouped = tuple(sum(cols[i : i + batch]) for i in range(0, len(cols), batch))
    return (plan.axis_chunks(h), grouped, (c,))


def stylize_array(
    image: da.Array,
    spec: ModelSpec,
    style: StyleCode | Delayed,
    stats: NormStats | Delayed | None,
    plan: TilePlan,
    job: WindowJob,
    *,
    whole: bool = False,
    batch: int = 1,
    resources: dict[str, float] | None = None,
) -> da.Array:
    """Lazy (H, W, 3) stylized image in ``job.out_dtype``.

    Chunks are ``plan.stride`` (a last chunk narrower than the margin merges into its
    neighbour); each task sees its chunk plus ``plan.margin`` reflected/neighbour pixels on
    every side, stylizes that window and keeps the centre.  ``whole=True`` makes the whole
    image one window (same code path, for comparison).  ``style`` and ``stats`` become one
    graph key each.  The window tasks carry ``resources`` (e.g. ``{"GPU": 1}``).
    """
    shape = tuple(int(s) for s in image.shape)
    batch = 1 if whole else batch
    image = image.rechunk(plan_chunks(shape, plan, whole, batch))
    style_key = style if isinstance(style, Delayed) else dask.delayed(style, pure=True)
    stats_key = stats if (stats is None or isinstance(stats, Delayed)) else dask.delayed(stats, pure=True)
    depth = {0: plan.axis_depth(shape[0]), 1: plan.axis_depth(shape[1]), 2: 0}
    dtype = np.dtype(job.out_dtype)
    with _annotate(resources):
        return image.map_overlap(
            _stylize_block,
            depth=depth,
            boundary=plan.boundary.value,
            trim=True,
            allow_rechunk=False,
            dtype=dtype,
            meta=np.empty((0, 0, 0), dtype=dtype),
            spec=spec,
            style=style_key,
            stats=stats_key,
            job=job,
            plan=plan,
            depth_x=depth[1],
            batch=batch,
        )


# ---------------------------------------------------------------------------- writing


def _write_block(block: np.ndarray, *, path: str, block_info: dict[Any, Any] | None = None) -> np.ndarray:
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


def strips(blocks: list[tuple[int, int]], n_rows: int, threads: int, min_columns: int = 4) -> list[list[tuple[int, int]]]:
    """Split the windows to write into vertical strips of block-columns, computed one strip
    after another.

    ``map_overlap`` needs a window's neighbours, so a graph over the whole image keeps a
    frontier of blocks as wide as the image in memory (it grows with the width: measured
    +60 % per worker at 40000 px).  A strip of ``k`` columns keeps it ``k`` blocks wide,
    whatever the image size.  ``k`` is at least ``min_columns`` and large enough that a
    strip holds ~8 windows per worker thread, so every thread stays busy.
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


# -------------------------------------------------------------------- synthetic input


def _synthetic_chunk(*, seed: int, block_info: dict[Any, Any] | None = None) -> np.ndarray:
    from .synthetic import synthetic_block

    (y0, y1), (x0, x1), _ = block_info[None]["array-location"]
    return synthetic_block(y0, x0, y1 - y0, x1 - x0, seed)


def synthetic_array(shape: tuple[int, int], *, seed: int = 0, chunk: int = 1000) -> da.Array:
    """Lazy (H, W, 3) uint8 synthetic image (see :mod:`urst_dask.synthetic`), any size."""
    h, w = shape
    chunks = da.core.normalize_chunks((chunk, chunk, 3), (h, w, 3))
    return da.map_blocks(_synthetic_chunk, seed=seed, dtype=np.uint8, chunks=chunks,
                         meta=np.empty((0, 0, 0), np.uint8))
