"""Quality figures of an image or output store: the Dask side of :mod:`urst_dask.metrics`.

:func:`quality` builds the graph (seam lines, PSNR, SSIM, chunk by chunk); :func:`compare`
computes it with the threaded scheduler and reads the few stroke-size tiles one by one.  The
metrics themselves take numpy.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

import dask
import dask.array as da
import numpy as np
from dask.delayed import Delayed

from .. import metrics
from ..errors import ParameterError, ParameterTypeError, UrstError, as_int, require_bool
from ..io import store
from ..io.readers import as_source, open_image
from ..metrics import stroke
from ..tiling import Blend, TileGrid, TilePlan


def _ssim_block(a: np.ndarray, b: np.ndarray, *, peak: float, radius: int) -> np.ndarray:
    total, count = metrics.ssim_sum(a, b, peak, radius)
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


def _psnr(mse: float, peak: float) -> float:
    return float("inf") if mse == 0 else float(10 * np.log10(peak**2 / mse))


def _ssim_mean(totals: np.ndarray) -> float:
    return float(totals[0] / totals[1]) if totals[1] else float("nan")


def quality(image: da.Array, reference: da.Array | None, stride: int, peak: float, radius: int = 3,
            boundaries: tuple[list[int], list[int]] | None = None) -> Delayed:
    """Delayed dict of :mod:`urst_dask.metrics` figures for an (H, W, C) image, chunk by
    chunk (never loaded whole): ``seam`` at ``stride`` or at the given (rows, columns)
    ``boundaries`` (only the compared lines are read), and against ``reference`` (same shape) ``psnr`` and ``ssim`` (blocks overlapped by the
    SSIM window's radius, so the sum equals the whole-image computation)."""
    a = image.astype(np.float64).rechunk({2: -1})
    parts: dict[str, Any] = {}
    lines = metrics.seam_lines(a.shape, stride, boundaries=boundaries)
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
        parts["psnr"] = dask.delayed(_psnr)(mse, peak)
        sums = da.map_overlap(_ssim_block, a, b, depth={0: radius, 1: radius, 2: 0}, boundary="none", trim=False,
                              allow_rechunk=False, peak=peak, radius=radius, dtype=np.float64,
                              chunks=(tuple(1 for _ in a.chunks[0]), tuple(1 for _ in a.chunks[1]), (2,)),
                              meta=np.empty((0, 0, 0), np.float64))
        parts["ssim"] = dask.delayed(_ssim_mean)(sums.sum(axis=(0, 1)))
        if image.dtype.kind == "f" or reference.dtype.kind == "f":  # the peak 1.0 holds for [0, 1] only
            parts["range"] = (da.minimum(a.min(), b.min()), da.maximum(a.max(), b.max()))
    return dask.delayed(dict)(parts)


def _stroke_tiles(image: da.Array, origins: list[tuple[int, int]], side: int) -> Iterator[np.ndarray]:
    for y, x in origins:  # one tile at a time: up to 16 tiles of 512 px
        yield np.asarray(image[y : y + side, x : x + side].compute(scheduler="threads"))


def stroke_size(image: da.Array) -> dict[str, float]:
    """:func:`urst_dask.metrics.stroke_size` of a Dask image, its few tiles read one by one."""
    origins, side = stroke.tile_origins(tuple(int(s) for s in image.shape))
    return stroke.stroke_from_tiles(_stroke_tiles(image, origins, side), side)


def compare(image: str | os.PathLike[str] | np.ndarray | da.Array,
            reference: str | os.PathLike[str] | np.ndarray | da.Array | None = None, *,
            stride: int | None = None, video: bool = False) -> dict[str, Any]:
    """``video=True``: ``image`` and ``reference`` are frame sequences (folder/glob, (T, H, W, C)
    Zarr or video file; ``reference`` defaults to the input recorded with ``image``) and the
    figures are its flicker (:func:`urst_dask.video.compare.flicker_report`).

    Quality figures of ``image`` (a finished output store, an image file, or an (H, W, C)
    numpy/dask array in host memory: uint8/uint16 over the dtype's range or float in [0, 1],
    the peak of the PSNR being the dtype's), read chunk by chunk: ``seam`` (the seam score at ``stride``: 1.0 means no visible
    tile boundary; default: the store's own stride, else 1000) and, against ``reference``
    (same shape and dtype), ``psnr`` (dB) and ``ssim`` (of the colour channels: an RGBA image's
    alpha, passed through untouched, is left out); ``stroke``: the stroke size (dominant texture
    wavelength in px, :func:`urst_dask.metrics.stroke_size`).  See :mod:`urst_dask.metrics`."""
    require_bool("video", video)
    if video:
        from ..video.compare import flicker_report

        if stride is not None:  # it was accepted, whatever its value, and ignored
            raise ParameterError(f"stride={stride!r}: video=True reports flicker, which has no stride; leave it out")

        for arg, value in (("image", image), ("reference", reference)):  # pathlib's TypeError named neither
            if not (isinstance(value, (str, os.PathLike)) or (arg == "reference" and value is None)):
                raise ParameterTypeError(f"{arg}=<{type(value).__name__}>: video=True compares frame sequences "
                                         "given as paths (a folder, a glob, a .zarr or a video file)")

        return flicker_report(image, reference)  # type: ignore[arg-type]
    a, grid = _compare_input(image, "image")
    b = _compare_input(reference, "reference")[0] if reference is not None else None
    if b is not None and b.shape != a.shape:
        raise ParameterError(f"reference: shape {tuple(b.shape)} differs from the image's {tuple(a.shape)}")
    if b is not None and b.dtype != a.dtype:  # the peak is the dtype's: uint8 against uint16 would read -42 dB
        raise ParameterError(f"reference: dtype {b.dtype} differs from the image's {a.dtype}; compare images of "
                             "one dtype (convert one first)")
    if stride is not None:
        try:
            valid = as_int("stride", stride) >= 1
        except ParameterTypeError:
            valid = False
        if not valid:
            raise ParameterError(f"stride={stride!r}: must be an integer >= 1")
        stride = as_int("stride", stride)
    own = grid is not None and stride in (None, grid.stride)  # a store's own tiles: where they really meet
    stride = int(stride or (grid.stride if grid is not None else TilePlan().stride))
    bounds = _tile_boundaries(grid, a.shape) if own and grid is not None else None
    if a.shape[2] == 4:  # the alpha channel passes through untouched: it would inflate every figure
        a, b = a[..., :3], (None if b is None else b[..., :3])
    figures = dask.compute(quality(a, b, stride, metrics.data_range(a.dtype), boundaries=bounds),
                           scheduler="threads")[0]
    lo, hi = figures.pop("range", (0.0, 1.0))
    if lo < 0.0 or hi > 1.0:
        raise ParameterError(f"image, reference: float values from {lo:.6g} to {hi:.6g}; PSNR and SSIM take 1.0 as "
                             "a float image's peak, so float images must lie in [0, 1]: rescale both")
    strokes = stroke_size(a) if min(a.shape[:2]) >= 16 else None
    return {"stride": stride, **figures, "stroke": strokes}


def _tile_boundaries(grid: TileGrid, shape: tuple[int, ...]) -> tuple[list[int], list[int]]:
    """Rows and columns where the store's tiles meet (a short last tile is merged)."""
    return tuple(list(np.cumsum(grid.axis_chunks(int(n)))[:-1]) for n in shape[:2])  # type: ignore[return-value]


def _compare_input(value: Any, arg: str) -> tuple[da.Array, TileGrid | None]:
    """(H, W, C) array of an image or store, and the store's tile grid (None if not a store
    or not recorded)."""
    if isinstance(value, (np.ndarray, da.Array)):
        return as_source(value, "<array>", arg).array, None
    if not isinstance(value, (str, os.PathLike)):
        raise ParameterTypeError(f"{arg}={type(value).__name__}: expected a path or an array")
    try:
        meta = store.read_attrs(value)
    except UrstError:
        meta = {}
    if meta:  # a urst-dask output store: refused if incomplete
        return store.open_output(value), _recorded_grid(meta)
    return open_image(value, arg).array, None


def _recorded_grid(meta: dict[str, Any]) -> TileGrid | None:
    """The tile grid a store records (older stores: only the plan's stride, read as a grid
    without merging, i.e. a boundary every stride)."""
    grid = meta.get("tile_grid") or {}
    try:
        return TileGrid(stride=int(grid["stride"]), margin=int(grid["margin"]), multiple=int(grid["multiple"]),
                        blend=Blend(grid["blend"]), align=bool(grid.get("align", True)))
    except (KeyError, TypeError, ValueError):
        stride = (meta.get("tile_plan") or {}).get("stride")
        return TileGrid(stride=int(stride), margin=0, multiple=1, blend=Blend.CROP, align=False) \
            if isinstance(stride, int) and stride >= 1 else None
