"""Viewable exports: pyramidal tiled BigTIFF (OME-TIFF), PNG (streamed) and JPEG.

Every writer checks the target first (exists without ``overwrite``, a dangling symbolic
link, missing or unwritable folder -> :class:`OutputError`), writes to a temporary file of its
own beside it, ``.<name>.<host>-<pid>-<random>.partial``, and renames it into place at the end, so a
failed export never leaves a half-written file under the real name, and two exports to one
target never write into the same file.

The writers compute nothing: they take a numpy array or a :class:`Raster` (an image's shape,
dtype and a ``read(y0, y1)`` callable supplying numpy rows), and pull TIFF and PNG band by band
from it (never a whole level in memory); :mod:`urst_dask.pipeline.export` makes a Raster of a
Dask array and computes the reduced TIFF levels.  JPEG goes through Pillow and is built in
memory (at most 65500 px a side).
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import secrets
import socket
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..errors import OutputError, ParameterError, ParameterTypeError
from ..settings import _Choice
from . import halving, ome, validate
from .lock import pid_alive

JPEG_MAX_SIDE = 65500
PNG_MAX_SIDE = 2**31 - 1
BAND_BYTES = 256 << 20  # rows read at once are kept under this


@dataclass(frozen=True)
class Raster:
    """An (H, W, C) image read band by band: ``read(y0, y1)`` returns rows ``y0:y1`` as numpy;
    ``chunk_rows`` is the height the source is best read in (bands are a multiple of it)."""

    shape: tuple[int, int, int]
    dtype: np.dtype
    chunk_rows: int
    read: Callable[[int, int], np.ndarray]


def as_raster(image: np.ndarray | Raster) -> Raster:
    """``image`` as a :class:`Raster`; a 2-D array gets a channel axis.  Anything but numpy
    (e.g. a Dask array) is refused: :func:`urst_dask.pipeline.export.as_raster` streams those."""
    if isinstance(image, Raster):
        return image
    if not isinstance(image, np.ndarray):
        raise ParameterTypeError(f"image={type(image).__name__}: the writers take a numpy array or a Raster; "
                                 "export a Dask array through urst_dask.pipeline.export")
    arr = image[..., None] if image.ndim == 2 else image
    h, w, c = (int(s) for s in arr.shape)

    def read(y0: int, y1: int) -> np.ndarray:
        return arr[y0:y1]

    return Raster((h, w, c), arr.dtype, max(1, min(1024, h)), read)


def check_target(path: Path, overwrite: bool) -> None:
    """Refuse an export target: a dangling link, an existing file without ``overwrite``, a
    missing, non-folder or unwritable parent (:class:`OutputError`)."""
    broken_link = validate.link_problem(path)
    if broken_link:
        raise OutputError(f"output={str(path)!r}: {broken_link}; remove the link or choose another path")
    if path.exists() and not overwrite:
        raise OutputError(f"output={str(path)!r}: already exists; pass --overwrite to replace it")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"output={str(path)!r}: {str(parent)!r} is a file, not a folder")
    if not parent.is_dir():
        raise OutputError(f"output={str(path)!r}: folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output={str(path)!r}: folder {str(parent)!r} is not writable")


def _partial_prefix(path: Path, host: str) -> str:
    """``.<name>.<host>-``, the start of ``path``'s partial files on this host; a name too long
    to take the suffix within 255 bytes is replaced by a digest of it."""
    name = path.name
    if len(f".{name}.{host}-{2**22}-{'0' * 8}.partial".encode()) > 255:
        name = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f".{name}.{host}-"


def _partial(path: Path) -> Path:
    """A new, empty temporary file beside ``path`` (so the final rename is atomic), hidden and
    named for this writer alone, ``.<name>.<host>-<pid>-<random>.partial``: two exports to one
    target never write the same file.  The partial files of ``path`` left by dead exports of
    this host (a kill -9) are removed first.  An unwritable folder becomes an OutputError."""
    prefix = _partial_prefix(path, socket.gethostname())
    mine = re.compile(re.escape(prefix) + r"(\d+)-[0-9a-f]{8}\.partial")
    for left in path.parent.glob(glob.escape(prefix) + "*.partial"):
        found = mine.fullmatch(left.name)  # not another host whose name starts with this one's
        if found and not pid_alive(int(found.group(1))):
            left.unlink(missing_ok=True)
    while True:
        tmp = path.with_name(f"{prefix}{os.getpid()}-{secrets.token_hex(4)}.partial")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue  # that name is taken: draw another
        except OSError as exc:
            raise OutputError(f"output={str(path)!r}: cannot write in {str(path.parent)!r} ({exc.strerror})") from exc
        return tmp


def _band_rows(array: Raster, multiple: int) -> int:
    """Rows per band: the source's chunk height rounded up to ``multiple``, under BAND_BYTES."""
    h = int(array.shape[0])
    row_bytes = max(1, int(np.prod(array.shape[1:])) * array.dtype.itemsize)
    rows = -(-int(array.chunk_rows) // multiple) * multiple if h else multiple
    while rows > multiple and rows * row_bytes > BAND_BYTES:
        rows -= multiple
    return max(1, min(rows, -(-h // multiple) * multiple))


def _bands(array: Raster, rows: int) -> Iterator[np.ndarray]:
    h = int(array.shape[0])
    for y in range(0, h, rows):
        yield np.asarray(array.read(y, min(y + rows, h)))


# ------------------------------------------------------------------------- PNG / JPEG


def _png_chunk(fh, tag: bytes, data: bytes) -> None:
    fh.write(struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))


def _write_png(fh, array: Raster, level: int = 6, dpi: tuple[float, float] | None = None) -> None:
    """PNG (8/16-bit gray, RGB or RGBA), rows filtered with "Up" and deflated band by band;
    ``dpi`` (x, y) goes in a pHYs chunk (pixels per metre)."""
    h, w, c = (int(s) for s in array.shape)
    depth = 8 * array.dtype.itemsize
    fh.write(b"\x89PNG\r\n\x1a\n")
    _png_chunk(fh, b"IHDR", struct.pack(">IIBBBBB", w, h, depth, {1: 0, 3: 2, 4: 6}[c], 0, 0, 0))
    per_metre = None if dpi is None else [round(v / 0.0254) for v in dpi]
    if per_metre is not None and all(1 <= v <= 0xFFFFFFFF for v in per_metre):  # else none: never wrapped
        _png_chunk(fh, b"pHYs", struct.pack(">IIB", *per_metre, 1))
    comp = zlib.compressobj(level)
    prev = np.zeros(w * c * array.dtype.itemsize, np.uint8)
    for band in _bands(array, _band_rows(array, 1)):
        band = np.ascontiguousarray(band.astype(">u2") if depth == 16 else band)
        raw = band.view(np.uint8).reshape(band.shape[0], -1)
        rows = np.empty((raw.shape[0], raw.shape[1] + 1), np.uint8)
        rows[:, 0] = 2  # filter type "Up": each byte minus the byte above
        rows[0, 1:] = raw[0] - prev
        rows[1:, 1:] = raw[1:] - raw[:-1]
        prev = raw[-1].copy()
        out = comp.compress(rows.tobytes())
        if out:
            _png_chunk(fh, b"IDAT", out)
    _png_chunk(fh, b"IDAT", comp.flush())
    _png_chunk(fh, b"IEND", b"")


def check_raster_holds(path: str | os.PathLike[str], shape: tuple[int, int, int], dtype: Any,
                       arg: str = "output") -> None:
    """Refuse (H, W, C) ``dtype`` pixels that the PNG or JPEG file ``path`` (the format from
    the suffix) cannot hold, with :class:`OutputError` naming the option ``arg``, the file and
    what to export instead."""
    h, w, c = shape
    jpeg = Path(path).suffix.lower() in (".jpg", ".jpeg")
    name = "JPEG" if jpeg else "PNG"
    if c not in (1, 3, 4):
        raise OutputError(f"{arg}={str(path)!r}: {name} cannot hold {c} channels")
    if str(np.dtype(dtype)) not in (("uint8",) if jpeg else ("uint8", "uint16")):
        raise OutputError(f"{arg}={str(path)!r}: {name} cannot hold {np.dtype(dtype)} pixels; export a .tif")
    if jpeg and c == 4:
        raise OutputError(f"{arg}={str(path)!r}: JPEG has no alpha channel; export a .png or .tif")
    if max(h, w) > (JPEG_MAX_SIDE if jpeg else PNG_MAX_SIDE):
        raise OutputError(f"{arg}={str(path)!r}: {name} cannot hold {w}x{h}; export a .tif")


def write_raster(path: str | os.PathLike[str], image: np.ndarray | Raster, *, overwrite: bool = False,
                 quality: int = 95, dpi: tuple[float, float] | None = None) -> None:
    """Write an (H, W, C) image (C = 1, 3 or 4) as PNG or JPEG (the format from the suffix).

    PNG: uint8 or uint16, gray/RGB/RGBA, streamed band by band from the :class:`Raster`.
    JPEG: uint8 gray/RGB only, at most 65500 px a side, built whole in memory by Pillow.
    ``dpi``: the (x, y) resolution to record (PNG pHYs, JPEG JFIF density), for printing; left
    out where the format cannot hold it (a JPEG's 16-bit density: 1-65535 dpi, so a
    microscope's 0.1 um pixels), never wrapped round.
    """
    p = Path(path)
    check_target(p, overwrite)
    arr = as_raster(image)
    h, w, c = arr.shape
    check_raster_holds(p, (h, w, c), arr.dtype)
    jpeg = p.suffix.lower() in (".jpg", ".jpeg")
    tmp = _partial(p)
    try:
        if jpeg:
            from PIL import Image

            pixels = np.asarray(arr.read(0, h))
            density = None if dpi is None else tuple(round(v) for v in dpi)
            fits = density is not None and all(1 <= v <= 0xFFFF for v in density)  # JFIF's 16 bits: else none
            Image.fromarray(pixels[..., 0] if c == 1 else pixels).save(
                tmp, format="JPEG", quality=quality, **({"dpi": density} if fits else {}))
        else:
            with open(tmp, "wb") as fh:
                _write_png(fh, arr, dpi=dpi)
        os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)


# -------------------------------------------------------------------------------- TIFF


def _tiles(array: Raster, tile: int) -> Iterator[np.ndarray]:
    """Tiles in row-major order, read one band of tile rows at a time (edge tiles padded)."""
    w, c = int(array.shape[1]), int(array.shape[2])
    for band in _bands(array, _band_rows(array, tile)):
        for ty in range(0, band.shape[0], tile):
            for x in range(0, w, tile):
                t = band[ty : ty + tile, x : x + tile]
                if t.shape[:2] != (tile, tile):
                    t = np.pad(t, ((0, tile - t.shape[0]), (0, tile - t.shape[1]), (0, 0)))
                yield t[..., 0] if c == 1 else t


def _halves(array: Raster, n: int) -> list[Raster]:
    """Levels 1..n of an in-memory image, each the 2x area mean of the previous
    (:func:`halving.half_array`)."""
    out, prev = [], np.asarray(array.read(0, array.shape[0]))
    for _ in range(n):
        prev = halving.half_array(prev)
        out.append(as_raster(prev))
    return out


def _resolution(pixel_size: dict | None, factor: int) -> dict:
    """TIFF resolution tags (pixels per centimetre) when the pixel size has a length unit."""
    dpi = ome.dots_per_inch(pixel_size)
    if dpi is None:
        return {}
    return {"resolution": tuple(v / (2.54 * factor) for v in dpi), "resolutionunit": "CENTIMETER"}


def _ome_metadata(name: str, c: int, pixel_size: dict | None, channel_names: Sequence[str] | None) -> dict:
    """tifffile's OME metadata for an (H, W, C) image: axes, image name, physical pixel size
    (where its unit is known) and (for gray) the channel name.  Every string is passed through :func:`ome.xml_text`, so
    a control character in a file name or an input's channel label cannot make the OME-XML
    unparseable; tifffile escapes markup characters.  A name left empty is omitted."""
    meta: dict = {"axes": "YX" if c == 1 else "YXS", "Name": ome.xml_text(name)}
    for ax in ("x", "y"):
        # a size without a unit is left out: OME-XML reads a missing unit as micrometres, and a
        # scale of 0.5 (unit unknown) became 0.5 um in QuPath and Bio-Formats
        if pixel_size and ax in pixel_size and pixel_size[ax][1]:
            meta[f"PhysicalSize{ax.upper()}"] = float(pixel_size[ax][0])
            unit = pixel_size[ax][1]
            meta[f"PhysicalSize{ax.upper()}Unit"] = ome.xml_text(ome.UNIT_TO_OME.get(unit, unit))
    label = ome.xml_text(channel_names[0]) if c == 1 and channel_names else ""
    if label:
        meta["Channel"] = {"Name": [label]}
    return meta


class TiffCompression(_Choice):
    """How the tiles of a TIFF export are compressed."""

    ZLIB = "zlib"  # deflate, with the predictor: lossless
    ZSTD = "zstd"  # Zstandard, with the predictor: lossless, faster and smaller than zlib
    JPEG = "jpeg"  # lossy (quality JPEG_QUALITY), 8-bit gray or RGB only
    NONE = "none"  # uncompressed


TIFF_TILE_MIN, TIFF_TILE_MAX = 16, 4096
JPEG_QUALITY = 90


def tiff_options(compression: str | TiffCompression | None, tile: int, dtype: np.dtype, channels: int) -> dict:
    """tifffile's keyword arguments for the tiles of an (H, W, C) TIFF: ``tile`` (a multiple
    of 16 in [16, 4096]), ``compression`` (a :class:`TiffCompression` value; ``None`` means
    ``"none"``) with the predictor for the lossless codecs (``predictor=True``: horizontal
    differencing, TIFF predictor 2, for integers; the floating-point predictor, 3, for
    float32) and JPEG's quality.  Bad values raise :class:`ParameterError` naming the option;
    JPEG is refused for anything but 8-bit gray/RGB."""
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or not (
            TIFF_TILE_MIN <= tile <= TIFF_TILE_MAX and tile % 16 == 0):
        raise ParameterError(f"tile={tile!r}: must be a multiple of 16 in [{TIFF_TILE_MIN}, {TIFF_TILE_MAX}]")
    comp = TiffCompression.parse("none" if compression is None else compression, "compression")
    if comp is TiffCompression.JPEG and np.dtype(dtype) != np.uint8:
        raise ParameterError(f"compression='jpeg': JPEG holds 8-bit pixels, not {np.dtype(dtype)}; use zlib, zstd "
                             f"or none")
    if comp is TiffCompression.JPEG and channels == 4:
        raise ParameterError("compression='jpeg': JPEG has no alpha channel (the image is RGBA); use zlib, zstd or none")
    options: dict = {"tile": (int(tile), int(tile)), "compression": None if comp is TiffCompression.NONE else comp.value}
    if comp in (TiffCompression.ZLIB, TiffCompression.ZSTD):
        options["predictor"] = True
    elif comp is TiffCompression.JPEG:
        options["compressionargs"] = {"level": JPEG_QUALITY}
    return options


def check_tiff_pixels(path: str | os.PathLike[str], channels: int, dtype: np.dtype) -> None:
    """Refuse what a TIFF export cannot hold (1/3/4 channels of uint8, uint16 or float32)."""
    if channels not in (1, 3, 4) or str(dtype) not in ("uint8", "uint16", "float32"):
        raise OutputError(f"output={str(path)!r}: cannot write {channels} channels of {dtype} (1/3/4 channels of "
                          f"uint8, uint16 or float32)")


def _given_levels(levels: Sequence[np.ndarray | Raster], shape: tuple[int, int, int]) -> list[Raster]:
    pyramid, prev, c = [], shape[:2], shape[2]
    for i, given in enumerate(levels, 1):
        lev = as_raster(given)
        if lev.shape[2] != c or lev.shape[0] > prev[0] or lev.shape[1] > prev[1]:
            raise ParameterError(f"levels[{i - 1}]: shape {lev.shape} is not a smaller level of {prev + (c,)}")
        pyramid.append(lev)
        prev = lev.shape[:2]
    return pyramid


def write_pyramidal_tiff(
    path: str | os.PathLike[str],
    array: np.ndarray | Raster,
    *,
    tile: int = 256,
    levels: int | Sequence[np.ndarray | Raster] | None = None,
    pixel_size: dict | None = None,
    channel_names: Sequence[str] | None = None,
    overwrite: bool = False,
    compression: str | TiffCompression | None = "zlib",
) -> Path:
    """Write an (H, W, C) image as a tiled, pyramidal BigTIFF with OME-XML (QuPath, napari,
    Bio-Formats open it); returns the path.

    The reduced levels go into SubIFDs of the first page.  ``levels``: a sequence gives ready
    levels (e.g. an NGFF store's), each (h, w, C) and smaller than the one before; for a numpy
    ``array``, ``None`` halves until the longer side fits in one tile and an int gives that
    many levels (0: no pyramid), 2x area means computed in memory.  A :class:`Raster` too big
    for memory takes its levels from :func:`urst_dask.pipeline.export.write_tiff`.  Every level
    is written tile by tile, one band of tile rows at a time.  C = 1 -> minisblack, 3 -> RGB,
    4 -> RGB + unassociated alpha.  ``pixel_size`` ({"y": (0.25, "micrometer"), ...}) goes
    into OME-XML and the resolution tags.  ``compression`` and ``tile`` as in
    :func:`tiff_options` (zlib with the predictor, 256 px tiles by default).
    """
    import tifffile

    p = Path(path)
    check_target(p, overwrite)
    arr = as_raster(array)
    h, w, c = arr.shape
    check_tiff_pixels(path, c, arr.dtype)
    tile_options = tiff_options(compression, tile, arr.dtype, c)
    if isinstance(levels, Sequence):
        pyramid = _given_levels(levels, arr.shape)
    else:
        n = halving.level_count(h, w, tile) if levels is None else int(levels)
        if n < 0:
            raise ParameterError(f"levels={levels!r}: must be >= 0")
        if n and not isinstance(array, np.ndarray):
            raise ParameterError(f"levels={levels!r}: a Raster needs its reduced levels given; "
                                 "urst_dask.pipeline.export.write_tiff computes them")
        pyramid = _halves(arr, n)
    tmp = _partial(p)
    try:
        photometric = "minisblack" if c == 1 else "rgb"
        options = {**tile_options, "photometric": photometric, "extrasamples": ("unassalpha",) if c == 4 else None}
        meta = _ome_metadata(p.stem, c, pixel_size, channel_names)
        with tifffile.TiffWriter(tmp, bigtiff=True, ome=True) as tw:
            shape0 = (h, w) if c == 1 else (h, w, c)
            tw.write(_tiles(arr, tile), shape=shape0, dtype=arr.dtype, subifds=len(pyramid), metadata=meta,
                     **_resolution(pixel_size, 1), **options)
            for i, lev in enumerate(pyramid, 1):
                lh, lw = lev.shape[:2]
                tw.write(_tiles(lev, tile), shape=(lh, lw) if c == 1 else (lh, lw, c), dtype=arr.dtype,
                         subfiletype=1, **_resolution(pixel_size, 2**i), **options)
        os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)
    return p
