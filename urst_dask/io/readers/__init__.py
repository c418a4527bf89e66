"""Opening content and style images lazily as (H, W, C) Dask arrays.

One reader per format family, tried in the order of :data:`READERS`:

* :mod:`.zarrstore` - Zarr v2/v3 and OME-Zarr, local or at a URL;
* :mod:`.tiff` - TIFF/BigTIFF/OME-TIFF, tiles read where they are needed;
* :mod:`.raster` - PNG/JPEG and other Pillow formats, streamed into a temporary Zarr.

Every reader returns a :class:`RawImage` (any layout, with what its metadata says); the axes
rules (:mod:`.source`) and the checks (:mod:`.checks`) then make it an :class:`ImageSource`
with an (H, W, C) array.  Channels: 1 (``gray``), 3 (``rgb``) or 4 (``rgba``, alpha passed
through untouched by the pipeline); any other count is an error.  Dtypes: uint8, uint16,
float32 (float in [0, 1]); float input is checked for NaN/inf lazily, block by block as it is
read, and, with the dtype intensity mapping, for values outside [0, 1].  A symbolic link that
leads nowhere (dangling, or a loop) is refused as such.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import dask.array as da
import numpy as np

from ...errors import InputImageError
from .. import png, remote, validate
from .checks import (
    build,
    check_finite,
    check_finite_pixels,
    check_image,
    check_unit_pixels,
    check_unit_range,
    require_unit_range,
)
from .identity import HEAD_BYTES, input_identity
from .raster import read_raster
from .source import (
    ALLOW_LARGE_FLAG,
    AXES_LETTERS,
    CHANNELS,
    SUPPORTED_DTYPES,
    ImageSource,
    RawImage,
    guess_axes,
    parse_axes,
    to_yxc,
    where_of,
)
from .tiff import TIFF_SUFFIXES, _close_tiffs, read_tiff
from .zarrstore import ZarrBlocks, is_zarr, read_zarr


@dataclass(frozen=True)
class Reader:
    """One format family: whether it takes a local path, and how it reads one."""

    name: str
    takes: Callable[[Path], bool]
    read: Callable[[Path, str, bool, Path | None], RawImage]  # (path, where, allow_large, scratch_dir)


_TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")  # TIFF and BigTIFF, little- and big-endian


def is_tiff_file(path: Path) -> bool:
    """A TIFF by its suffix, or by its first bytes whatever its name (a camera's .dng, a TIFF
    named .jpg): Pillow would read only its first page, 16-bit samples as 8-bit."""
    if path.suffix.lower() in TIFF_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            return f.read(4) in _TIFF_MAGIC
    except OSError:  # a folder, or unreadable: the other readers say so
        return False


READERS: tuple[Reader, ...] = (
    Reader("zarr", is_zarr, lambda p, where, allow_large, scratch_dir: read_zarr(p, where)),
    Reader("tiff", is_tiff_file, lambda p, where, allow_large, scratch_dir: read_tiff(p, where)),
    Reader("raster", lambda p: p.is_file(), read_raster),  # Pillow says whether it can decode it
)


def _reader_for(p: Path, where: str) -> Reader:
    for reader in READERS:
        if reader.takes(p):
            return reader
    raise InputImageError(f"{where}: is a directory but not a Zarr store")


def open_image(path: str | os.PathLike[str], arg: str = "content", *, axes: str | None = None,
               allow_large: bool = False, scratch_dir: str | os.PathLike[str] | None = None) -> ImageSource:
    """Open an image lazily as an :class:`ImageSource` with an (H, W, C) Dask array.

    ``path``: a local path, or a Zarr/OME-Zarr store at a URL (``s3://``, ``gs://``,
    ``http(s)://``, ``memory://``, ``file://``; see :mod:`.remote` for storage options).

    ``axes`` overrides axis detection (``"YXC"``, ``"CYX"``, ``"TCZYX"``...);
    ``allow_large`` lifts Pillow's decompression-bomb limit for this file; ``scratch_dir``
    is the folder (created if missing, not its parent) that receives the decoded copy of a
    PNG/JPEG (default: the system's temporary folder; see :mod:`.scratch`).  Every problem
    raises :class:`InputImageError` naming ``arg``, the file and the value.
    """
    return build(_open_raw(path, arg, allow_large, scratch_dir), str(path), arg, axes)


def _open_raw(path: str | os.PathLike[str], arg: str, allow_large: bool,
              scratch_dir: str | os.PathLike[str] | None) -> RawImage:
    """The format reader's :class:`RawImage` of a local path or a URL (nothing checked beyond the file)."""
    where = where_of(path, arg)
    if remote.is_url(path):
        got = remote.attach(path, None, arg)
        if isinstance(got, remote.RemotePath):
            return _read_url(got, where)
        path = got  # file:///...: a local path, with the checks below
    p = Path(path)
    broken_link = validate.link_problem(p)
    if broken_link:
        raise InputImageError(f"{where}: {broken_link}")
    if not p.exists():
        raise InputImageError(f"{where}: no such file or directory")
    reader = _reader_for(p, where)
    if reader.name != "zarr" and not os.access(p, os.R_OK):
        raise InputImageError(f"{where}: not readable (permission denied)")
    # absolute: the lazy array is read where it is computed, by workers that may run in another folder
    return reader.read(p.absolute(), where, allow_large, Path(scratch_dir) if scratch_dir else None)


URL_FILE_SUFFIXES = TIFF_SUFFIXES | {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


def _read_url(rp: remote.RemotePath, where: str) -> RawImage:
    """A Zarr/OME-Zarr store at a URL, read through fsspec (single-file images are not)."""
    if Path(rp.rstrip("/")).suffix.lower() in URL_FILE_SUFFIXES:
        raise InputImageError(f"{where}: only Zarr and OME-Zarr stores are read from URLs; download the file "
                              "and give its local path")
    return read_zarr(rp, where)


def as_source(array: np.ndarray | da.Array, path: str = "<array>", arg: str = "content", *,
              axes: str | None = None, chunk: int = 1000) -> ImageSource:
    """An in-memory numpy/Dask array as an :class:`ImageSource` (same axes and checks as
    files).  A numpy array is normalised first (a view) and then chunked ``chunk`` a side."""
    where = where_of(path, arg)
    if isinstance(array, da.Array) and any(np.isnan(n) for n in array.shape):
        raise InputImageError(f"{where}: Dask array of unknown chunk sizes, shape {array.shape}; call its "
                              "compute_chunk_sizes() first")
    shape = tuple(int(s) for s in array.shape)
    if 0 in shape:
        raise InputImageError(f"{where}: empty image, shape {shape}")
    ax = parse_axes(axes, shape, where) if axes is not None else guess_axes(shape, where)
    yxc = to_yxc(array if isinstance(array, da.Array) else np.asarray(array), ax, where)
    if not isinstance(yxc, da.Array):
        yxc = da.from_array(yxc, chunks=(chunk, chunk, -1))
    arr, channels = check_image(yxc, path, arg, axes=ax, shape_in=shape)
    return ImageSource(arr, path, "array", ax, channels)


def as_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, C) -> (H, W, 3): gray repeated, alpha dropped."""
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[..., :3]


def read_style(path: str | os.PathLike[str], arg: str = "style", *, axes: str | None = None,
               allow_large: bool = False, scratch_dir: str | os.PathLike[str] | None = None) -> np.ndarray:
    """Read a style image fully into memory as (H, W, 3) RGB in its own dtype.

    Any size is accepted (a 1 x 1 style is resized up later); gray is repeated to RGB and
    alpha dropped.  PNG/JPEG above Pillow's limit need ``allow_large``; TIFF/Zarr styles are
    read whole (a 20000 x 20000 RGB uint8 style takes 1.2 GB), straight from the stored array
    (no Dask compute), with the same checks as :func:`open_image`.
    """
    raw = _open_raw(path, arg, allow_large, scratch_dir)
    src = build(raw, str(path), arg, axes)  # the axes, shape and dtype checks; nothing read yet
    where = where_of(path, arg)
    if raw.shown is None:
        stored = raw.stored[tuple(slice(0, int(n)) for n in raw.array.shape)]
    else:  # a TIFF whose samples are interpreted (palette, min-is-white) or turned (Orientation)
        stored = raw.shown(raw.stored[tuple(slice(0, int(n)) for n in raw.stored.shape)])
    pixels = to_yxc(stored, src.axes_in, where)
    if pixels.dtype.kind == "f":
        check_finite_pixels(np.asarray(pixels), where)
        check_unit_pixels(np.asarray(pixels), where)
    return as_rgb(np.ascontiguousarray(pixels))


__all__ = [
    "ALLOW_LARGE_FLAG", "AXES_LETTERS", "CHANNELS", "HEAD_BYTES", "READERS", "SUPPORTED_DTYPES", "TIFF_SUFFIXES",
    "ImageSource", "RawImage", "Reader", "ZarrBlocks", "as_rgb", "as_source", "check_finite", "check_image",
    "check_unit_pixels", "check_unit_range", "guess_axes", "input_identity", "is_tiff_file", "open_image", "parse_axes", "png", "read_style",
    "require_unit_range", "to_yxc", "_close_tiffs",
]
