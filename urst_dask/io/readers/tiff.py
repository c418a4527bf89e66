"""TIFF/BigTIFF/OME-TIFF through tifffile's Zarr view, never read whole: pyramid levels
(SubIFDs or series levels), axes from ``series.axes``, pixel sizes and channel names from
OME-XML; a file whose tiles point past its end is refused as truncated.  The reader is
picklable (each worker process reopens the file), unlike tifffile's store."""

from __future__ import annotations

import atexit
import functools
import threading
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize

from ...errors import InputImageError
from .. import ome
from . import tiffpixels
from .source import RawImage

TIFF_SUFFIXES = {".tif", ".tiff", ".btf", ".tf8", ".tf2"}


_TIFF_LOCK = threading.Lock()
_TIFF_OPEN: dict[tuple[Any, ...], tuple[Any, Any]] = {}  # per process: key -> (TiffFile, zarr array)


def _tiff_zarr(path: str, stamp: tuple[int, int], series: int, level: int) -> Any:
    import tifffile
    import zarr

    key = (path, stamp, series, level)
    with _TIFF_LOCK:
        hit = _TIFF_OPEN.get(key)
        if hit is None:
            tif = tifffile.TiffFile(path)
            hit = _TIFF_OPEN[key] = (tif, zarr.open(tif.series[series].aszarr(level=level), mode="r"))
    return hit[1]


@atexit.register
def _close_tiffs() -> None:
    with _TIFF_LOCK:
        for tif, _ in _TIFF_OPEN.values():
            tif.close()
        _TIFF_OPEN.clear()


class TiffLevel:
    """Picklable array-like over one level of a TIFF series, for ``da.from_array``.

    tifffile's Zarr store cannot be pickled; this small object can, and reopens the file
    (once per process) where it is read.  Read errors become :class:`InputImageError`.
    """

    def __init__(self, path: str, stamp: tuple[int, int], series: int, level: int, shape: tuple[int, ...],
                 dtype: str, where: str) -> None:
        self.path, self.stamp, self.series, self.level = path, stamp, series, level
        self.shape, self.dtype, self.ndim, self.where = tuple(shape), np.dtype(dtype), len(shape), where

    def __reduce__(self):
        return (TiffLevel, (self.path, self.stamp, self.series, self.level, self.shape, str(self.dtype), self.where))

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            return np.asarray(_tiff_zarr(self.path, self.stamp, self.series, self.level)[key])
        except Exception as exc:  # noqa: BLE001 - decoders raise many types
            raise InputImageError(f"{self.where}: cannot read level {self.level} at {key} "
                                  f"({type(exc).__name__}: {exc})") from exc


def _tiff_chunks(shape: tuple[int, ...], chunks: tuple[int, ...], axes: str, itemsize: int) -> tuple[int, ...]:
    """Dask chunks: whole tiles/strips grouped to about 1024 px a side (at most ~64 MiB)."""
    out = []
    for a, n, c in zip(axes, shape, chunks):
        out.append(min(n, max(c, (1024 // c) * c)) if a in "YX" else (n if a in "CS" else 1))
    while np.prod(out) * itemsize > 64 << 20 and "Y" in axes:
        i = axes.index("Y")
        smaller = out[i] - chunks[i]
        if smaller < chunks[i]:
            break
        out[i] = smaller
    return tuple(out)


def _check_complete(tif: Any, series: Any, size: int, where: str) -> None:
    """Refuse a file whose strips/tiles point past its end (pages of other files of a
    multi-file OME-TIFF are not checked here)."""
    for level in series.levels:
        for page in level.pages:
            if page is None or getattr(page, "parent", tif) is not tif:
                continue
            ends = [o + n for o, n in zip(page.dataoffsets, page.databytecounts) if n]
            if ends and max(ends) > size:
                raise InputImageError(f"{where}: truncated TIFF: image data runs to byte {max(ends)} but the file "
                                      f"has {size} bytes")


def _tag_pixel_size(page: Any) -> ome.PixelSize | None:
    """The pixel size the XResolution/YResolution/ResolutionUnit tags give (a scan's or a
    photograph's dpi), or ``None`` without a unit (an aspect ratio only) or a usable value:
    odd metadata costs the pixel size, never the image."""
    def first(code: int) -> Any:
        tag = page.tags.get(code)
        value = tag.value if tag is not None else None
        return value[0] if isinstance(value, tuple) and len(value) == 1 else value  # a count-1 DOUBLE: (300.0,)

    def ratio(value: Any) -> float | None:
        if isinstance(value, tuple) and len(value) == 2:
            return value[0] / value[1] if value[1] else None
        return float(value) if isinstance(value, (int, float)) else None

    try:
        unit = page.tags.get(296)  # ResolutionUnit: 1 none, 2 inch (the default), 3 centimetre
        code: Any = unit.value if unit is not None else 2
        code = code[0] if isinstance(code, tuple) and code else code
        name = {2: "inch", 3: "centimeter"}.get(int(code))
        x, y = ratio(first(282)), ratio(first(283))
    except (TypeError, ValueError, IndexError):
        return None
    return None if name is None or x is None or y is None else ome.from_resolution(x, y, name)


def read_tiff(path: Path, where: str) -> RawImage:
    import tifffile

    st = path.stat()
    stamp = (st.st_size, st.st_mtime_ns)
    try:
        with tifffile.TiffFile(str(path)) as tif:
            series = tif.series[0]
            _check_complete(tif, series, st.st_size, where)
            ome_xml = tif.ome_metadata if tif.is_ome else None
            view = tiffpixels.view_of(series.keyframe, where)
            resolution = _tag_pixel_size(series.keyframe)
    except InputImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated/corrupt TIFFs raise many types
        raise InputImageError(f"{where}: not a readable TIFF ({type(exc).__name__}: {exc})") from exc
    arrays, axes, stored, level0_axes = [], None, None, ""
    for level in range(len(series.levels)):
        try:
            z = _tiff_zarr(str(path), stamp, 0, level)
            if level == 0:  # decode one pixel now: a missing codec fails here, not mid-run
                z[tuple(slice(0, 1) for _ in z.shape)]
        except Exception as exc:  # noqa: BLE001
            raise InputImageError(f"{where}: not a readable TIFF level {level} ({type(exc).__name__}: {exc})") from exc
        level_axes = "".join(z.attrs.get("_ARRAY_DIMENSIONS", ())) or None
        reader = TiffLevel(str(path), stamp, 0, level, tuple(z.shape), str(z.dtype), where)
        chunks = _tiff_chunks(tuple(z.shape), tuple(z.chunks), level_axes or "", z.dtype.itemsize) \
            if level_axes and len(level_axes) == z.ndim else "auto"
        arr = da.from_array(reader, chunks=chunks, name=f"tiff-{tokenize(str(path), stamp, level)}",
                            lock=False, meta=np.empty((0,) * z.ndim, z.dtype))
        if level == 0:
            level0_axes, stored = level_axes or "", reader
            axes = view.axes(level_axes) if level_axes else None
        if not view.identity and not level_axes:
            raise InputImageError(f"{where}: TIFF level {level} has no axes to interpret its samples by")
        # the picture a viewer shows: min-is-white inverted, palette looked up, Orientation applied
        arrays.append(arr if view.identity else view(arr, level_axes or "", where))
    pixel_size, names = ome.parse_ome_xml(ome_xml) if ome_xml else (None, None)
    pixel_size = pixel_size or resolution  # OME's PhysicalSize first, else the resolution tags (a photo's dpi)
    if view.orientation >= 5 and pixel_size:  # rows and columns swapped
        pixel_size = {{"y": "x", "x": "y"}.get(k, k): v for k, v in pixel_size.items()}
    shown = None if view.identity else functools.partial(view, axes=level0_axes, where=where)
    return RawImage(arrays[0], "ome-tiff" if ome_xml else "tiff", axes, tuple(arrays[1:]), pixel_size, names,
                    stored, shown)
