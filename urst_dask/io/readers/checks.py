"""Checks every image passes, whatever its format: layout, channels, dtype, and - lazily,
block by block as it is read - finite values and the [0, 1] range of float input."""

from __future__ import annotations

import dataclasses

import dask.array as da
import numpy as np

from ...errors import InputImageError
from .. import validate
from .source import CHANNELS, SUPPORTED_DTYPES, ImageSource, RawImage, guess_axes, metadata_axes, parse_axes, to_yxc, where_of


def check_finite_pixels(pixels: np.ndarray, where: str) -> None:
    """Refuse NaN/inf in an image read whole (:class:`InputImageError` naming ``where``)."""
    _finite_block(pixels, where)


def _finite_block(block: np.ndarray, where: str, block_info: dict | None = None) -> np.ndarray:
    finite = np.isfinite(block)
    if not finite.all():
        loc = block_info[0]["array-location"][:2] if block_info else None
        at = f" in rows {loc[0][0]}:{loc[0][1]}, columns {loc[1][0]}:{loc[1][1]}" if loc else ""
        n = int(finite.size - np.count_nonzero(finite))
        raise InputImageError(f"{where}: {n} non-finite values (NaN or inf){at}; float input must be finite, in [0, 1]")
    return block


def _level_where(path: str, arg: str, level: int) -> str:
    """The message's subject: a pyramid level's rows and columns are not the image's."""
    return where_of(path, arg) + (f" pyramid level {level}" if level else "")


def check_finite(array: da.Array, path: str, arg: str, level: int = 0) -> da.Array:
    """``array`` with every block checked for NaN/inf as it is computed (lazily: nothing is
    scanned now).  The first non-finite block raises :class:`InputImageError` naming ``arg``,
    the file, the pyramid ``level`` (when not the image itself) and the block's rows and
    columns.  Integer arrays are returned unchanged."""
    if array.dtype.kind != "f":
        return array
    return array.map_blocks(_finite_block, where=_level_where(path, arg, level), dtype=array.dtype,
                            meta=array._meta)


PERCENTILE_HINT = "--intensity percentile:0.5,99.5"


def check_unit_pixels(pixels: np.ndarray, where: str) -> None:
    """Refuse float pixels outside [0, 1] in an image read whole, such as a style (they would
    be clipped: a 0-255 float style would become white)."""
    if pixels.dtype.kind != "f" or pixels.size == 0:
        return
    lo, hi = float(np.min(pixels)), float(np.max(pixels))
    if lo < 0.0 or hi > 1.0:
        raise InputImageError(f"{where}: float values from {lo:.6g} to {hi:.6g}; a float image must be in [0, 1] "
                              "(it would be clipped): rescale it, or save it as 8- or 16-bit")


def _unit_block(block: np.ndarray, where: str, block_info: dict | None = None) -> np.ndarray:
    lo, hi = float(np.min(block)), float(np.max(block))  # NaN/inf were reported by check_finite
    if lo < 0.0 or hi > 1.0:
        loc = block_info[0]["array-location"][:2] if block_info else None
        at = f" in rows {loc[0][0]}:{loc[0][1]}, columns {loc[1][0]}:{loc[1][1]}" if loc else ""
        raise InputImageError(f"{where}: float values from {lo:.6g} to {hi:.6g}{at}; with the default intensity "
                              f"mapping float input must be in [0, 1] (it would be clipped): pass {PERCENTILE_HINT} "
                              "to map the image's own range, or rescale it")
    return block


def check_unit_range(array: da.Array, path: str, arg: str, level: int = 0) -> da.Array:
    """``array`` with every block checked to lie in [0, 1] as it is computed (lazily, like
    :func:`check_finite`).  The first block outside raises :class:`InputImageError` naming
    ``arg``, the file, the values found and the block's rows and columns, and suggesting
    ``--intensity percentile:...``.  Integer arrays are returned unchanged."""
    if array.dtype.kind != "f":
        return array
    return array.map_blocks(_unit_block, where=_level_where(path, arg, level), dtype=array.dtype, meta=array._meta)


def require_unit_range(src: ImageSource, arg: str = "content") -> ImageSource:
    """``src`` with its image and pyramid levels wrapped by :func:`check_unit_range`: for the
    dtype intensity mapping, where float pixels outside [0, 1] cannot be represented."""
    if src.array.dtype.kind != "f":
        return src
    return dataclasses.replace(src, array=check_unit_range(src.array, src.path, arg),
                               levels=tuple(check_unit_range(lv, src.path, arg, i)
                                            for i, lv in enumerate(src.levels, 1)))


def check_image(array: da.Array, path: str, arg: str, *, axes: str | None = None,
                shape_in: tuple[int, ...] | None = None) -> tuple[da.Array, str]:
    """Validate an (H, W, C) array: not empty, 1/3/4 channels, a supported dtype.  Returns the
    array (float wrapped by :func:`check_finite`) and its channels ("gray" | "rgb" | "rgba")."""
    where = where_of(path, arg)
    shape = tuple(int(s) for s in array.shape)
    shown = f"shape {shape_in or shape}" + (f", axes {axes}" if axes else "")
    if array.ndim != 3:
        raise InputImageError(f"{where}: expected an (H, W, C) array, got {shown}")
    if 0 in shape:
        raise InputImageError(f"{where}: empty image, {shown}")
    if shape[2] not in CHANNELS:
        raise InputImageError(f"{where}: {shape[2]} channels, {shown}; supported: 1 (gray), 3 (RGB), 4 (RGBA)")
    if str(array.dtype) not in SUPPORTED_DTYPES:
        raise InputImageError(f"{where}: dtype {array.dtype}; supported: {', '.join(SUPPORTED_DTYPES)}")
    return check_finite(array, path, arg), CHANNELS[shape[2]]


def build(raw: RawImage, path: str, arg: str, axes: str | None) -> ImageSource:
    where = where_of(path, arg)
    shape = tuple(int(s) for s in raw.array.shape)
    if 0 in shape:
        raise InputImageError(f"{where}: empty image, shape {shape}")
    if axes is not None:
        ax = parse_axes(axes, shape, where)
    else:
        ax = metadata_axes(raw.axes, shape, where) or guess_axes(shape, where)
    arr, channels = check_image(to_yxc(raw.array, ax, where), path, arg, axes=ax, shape_in=shape)
    validate.check_pixel_size(raw.pixel_size, where)
    levels: list[da.Array] = []
    prev = arr.shape
    for level in raw.levels:
        if level.ndim != len(ax):
            continue
        lv = to_yxc(level, ax, where)
        if lv.shape[2] == arr.shape[2] and lv.shape[0] <= prev[0] and lv.shape[1] <= prev[1] and lv.shape != prev:
            levels.append(check_finite(lv, path, arg, len(levels) + 1))
            prev = lv.shape
    names = raw.channel_names if raw.channel_names and len(raw.channel_names) == arr.shape[2] else None
    return ImageSource(arr, path, raw.format, ax, channels, tuple(levels), raw.pixel_size, names)
