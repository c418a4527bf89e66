"""Opening content and style images lazily as (H, W, C) Dask arrays.

Formats.  Zarr v2/v3 arrays and groups (a group's ``"0"`` array); OME-Zarr (NGFF 0.4/0.5,
also bioformats2raw's ``"0"`` subgroup): levels, axes, pixel sizes and channel labels from the
metadata; a chunk that cannot be decoded (truncated, garbage) is named, with its index, when
its block is read (:class:`ZarrBlocks`).  Zarr stores may be at a URL (s3://, gs://, https://,
memory://, read through fsspec: :mod:`.remote`); other formats are read from local files.  A
symbolic link that leads nowhere (dangling, or a loop) is refused as such.  TIFF/BigTIFF/OME-TIFF through tifffile's Zarr view, never read whole: pyramid
levels (SubIFDs or series levels), axes from ``series.axes``, pixel sizes and channel names
from OME-XML; a file whose tiles point past its end is refused as truncated.  The TIFF reader
is picklable (each worker process reopens the file), unlike tifffile's store.  PNG/JPEG (and
other Pillow formats) are decoded once and streamed band by band into a temporary Zarr
(``tempfile.mkdtemp(prefix="urst-dask-")`` in ``scratch_dir``, by default in ``TMPDIR``;
removed at interpreter exit by ``atexit``; reused while the file is unchanged), so the graph
reads from disk and never embeds the pixels.  The temporary Zarr is on this machine's disk:
for a cluster on other machines, convert the PNG to Zarr first.  16-bit PNGs (gray,
gray+alpha, RGB, RGBA) are decoded by :mod:`.png` (imagecodecs' libpng) and stay uint16,
where Pillow would give 8 bits.  EXIF orientation is applied.  Images above Pillow's
``Image.MAX_IMAGE_PIXELS`` are refused unless ``allow_large=True`` (``--allow-large-images``),
which lifts the limit for that read only.

Axes.  Given (``axes="TCZYX"``, letters from TCZYXS, S = samples = C, each once, one per
dimension) or detected: from metadata (NGFF axes, Zarr ``dimension_names`` or
``_ARRAY_DIMENSIONS``, tifffile's series axes), else from the shape after dropping up to two
leading singleton dimensions: (H, W) -> YX; (H, W, c) with c <= 4 < H -> YXC; (c, H, W) with
c <= 4 < W -> CYX; anything else (such as (3, 4, 3) or (4, 100, 4)) is ambiguous and asks for
``--axes``.  T and Z must be singleton; they are dropped and C moves last.

Channels.  1 (``gray``), 3 (``rgb``) or 4 (``rgba``, alpha passed through untouched by the
pipeline); any other count is an error.  Palette images become RGB(A), gray+alpha becomes
RGBA (gray repeated).  Dtypes: uint8, uint16, float32 (float in [0, 1]); float input is
checked for NaN/inf lazily, block by block as it is read (:func:`check_finite`), and, with
the dtype intensity mapping, for values outside [0, 1] (:func:`require_unit_range`).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import threading
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize

from ..errors import InputImageError
from . import ome, png, remote, remote_store, scratch, validate

TIFF_SUFFIXES = {".tif", ".tiff", ".btf", ".tf8", ".tf2"}
SUPPORTED_DTYPES = ("uint8", "uint16", "float32")
AXES_LETTERS = "TCZYXS"
CHANNELS = {1: "gray", 3: "rgb", 4: "rgba"}
ALLOW_LARGE_FLAG = "--allow-large-images"


@dataclass(frozen=True)
class ImageSource:
    """A lazily opened image, normalised to (H, W, C), and what is known about it."""

    array: da.Array  # (H, W, C), C in {1, 3, 4}
    path: str
    format: str  # "zarr" | "ome-zarr" | "tiff" | "png" | "jpeg" | ... | "array"
    axes_in: str = "YXC"  # the source's axes, as detected or given
    channels: str = "rgb"  # "gray" | "rgb" | "rgba"
    levels: tuple[da.Array, ...] = ()  # lower-resolution (h, w, C) levels, largest first
    pixel_size: dict[str, tuple[float, str | None]] | None = None
    channel_names: tuple[str, ...] | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.array.shape)

    def level_for(self, min_short_side: int) -> da.Array:
        """The smallest level (the image itself if none fits) whose shorter side is >= ``min_short_side``."""
        best = self.array
        for level in self.levels:
            if min(int(s) for s in level.shape[:2]) >= min_short_side:
                best = level
        return best


@dataclass
class _Raw:
    array: da.Array  # as stored, any layout
    format: str
    axes: str | None = None
    levels: tuple[da.Array, ...] = ()
    pixel_size: dict | None = None
    channel_names: tuple[str, ...] | None = None


def _where(path: Any, arg: str) -> str:
    return f"{arg}={str(path)!r}"


# ----------------------------------------------------------------------------- axes


def parse_axes(axes: str, shape: tuple[int, ...], where: str) -> str:
    """Validate an explicit axes string for ``shape``; return it upper-case."""
    if not isinstance(axes, str) or not axes:
        raise InputImageError(f"{where}: axes={axes!r}: expected letters from {AXES_LETTERS}, e.g. 'YXC'")
    ax = axes.upper()
    unknown = [a for a in ax if a not in AXES_LETTERS]
    if unknown:
        raise InputImageError(f"{where}: axes={axes!r}: unknown letter {unknown[0]!r}; use letters from "
                              f"{AXES_LETTERS} (S = samples, same as C)")
    repeated = [a for a in ax if ax.count(a) > 1]
    if repeated:
        raise InputImageError(f"{where}: axes={axes!r}: letter {repeated[0]!r} repeated")
    if len(ax) != len(shape):
        raise InputImageError(f"{where}: axes={axes!r} has {len(ax)} letters but the image has {len(shape)} "
                              f"dimensions, shape {shape}")
    if "Y" not in ax or "X" not in ax:
        raise InputImageError(f"{where}: axes={axes!r}: must include Y and X")
    return ax


def guess_axes(shape: tuple[int, ...], where: str) -> str:
    """Axes of a plain array from its shape alone (see the module docstring)."""
    lead = 0
    while len(shape) - lead > 3 and shape[lead] == 1 and lead < 2:
        lead += 1
    core, prefix = shape[lead:], "TZ"[2 - lead :]
    if len(core) == 2:
        return prefix + "YX"
    if len(core) == 3:
        first, last = core[0], core[-1]
        if last <= 4 < first:
            return prefix + "YXC"
        if first <= 4 < last:
            return prefix + "CYX"
    raise InputImageError(f"{where}: cannot tell the axes of shape {shape}; pass --axes "
                          f"(e.g. YXC for height, width, channels; CYX for channels first; TCZYX)")


def _metadata_axes(axes: str | None, shape: tuple[int, ...]) -> str | None:
    """Metadata axes if usable: one letter per dimension, each once; unknown letters
    (tifffile's Q, I...) of size 1 become T/Z, otherwise the metadata is ignored."""
    if not axes or len(axes) != len(shape):
        return None
    out, spare = [], [a for a in "TZ" if a not in axes]
    for a, n in zip(axes.upper(), shape):
        if a in AXES_LETTERS:
            out.append(a)
        elif n == 1 and spare:
            out.append(spare.pop())
        else:
            return None
    ax = "".join(out)
    if len(set(ax)) != len(ax) or "Y" not in ax or "X" not in ax:
        return None
    return ax


def to_yxc(arr: da.Array, axes: str, where: str) -> da.Array:
    """Drop singleton T/Z, merge S into C, move C last (added when absent)."""
    shape = tuple(int(s) for s in arr.shape)
    if "S" in axes and "C" in axes:
        nc, ns = shape[axes.index("C")], shape[axes.index("S")]
        if nc > 1 and ns > 1:
            raise InputImageError(f"{where}: {nc} channels of {ns} samples each (axes {axes}, shape {shape}); "
                                  f"only one channel axis is supported")
        drop = axes.index("C") if nc == 1 else axes.index("S")
        arr = arr[tuple(0 if i == drop else slice(None) for i in range(arr.ndim))]
        axes = axes[:drop] + axes[drop + 1 :]
        shape = shape[:drop] + shape[drop + 1 :]
    axes = axes.replace("S", "C")
    for a, n in zip(axes, shape):
        if a in "TZ" and n != 1:
            raise InputImageError(f"{where}: dimension {a} has size {n} (axes {axes}, shape {shape}); only Y, X "
                                  f"and C may be larger than 1: select one plane first")
    arr = arr[tuple(0 if a in "TZ" else slice(None) for a in axes)]
    axes = "".join(a for a in axes if a not in "TZ")
    if "C" not in axes:
        arr, axes = arr[..., None], axes + "C"
    return arr.transpose([axes.index(a) for a in "YXC"])


# ------------------------------------------------------------------------ validation


def _finite_block(block: np.ndarray, where: str, block_info: dict | None = None) -> np.ndarray:
    finite = np.isfinite(block)
    if not finite.all():
        loc = block_info[0]["array-location"][:2] if block_info else None
        at = f" in rows {loc[0][0]}:{loc[0][1]}, columns {loc[1][0]}:{loc[1][1]}" if loc else ""
        n = int(finite.size - np.count_nonzero(finite))
        raise InputImageError(f"{where}: {n} non-finite values (NaN or inf){at}; float input must be finite, in [0, 1]")
    return block


def check_finite(array: da.Array, path: str, arg: str) -> da.Array:
    """``array`` with every block checked for NaN/inf as it is computed (lazily: nothing is
    scanned now).  The first non-finite block raises :class:`InputImageError` naming ``arg``,
    the file and the block's rows and columns.  Integer arrays are returned unchanged."""
    if array.dtype.kind != "f":
        return array
    return array.map_blocks(_finite_block, where=_where(path, arg), dtype=array.dtype, meta=array._meta)


PERCENTILE_HINT = "--intensity percentile:0.5,99.5"


def _unit_block(block: np.ndarray, where: str, block_info: dict | None = None) -> np.ndarray:
    lo, hi = float(np.min(block)), float(np.max(block))  # NaN/inf were reported by check_finite
    if lo < 0.0 or hi > 1.0:
        loc = block_info[0]["array-location"][:2] if block_info else None
        at = f" in rows {loc[0][0]}:{loc[0][1]}, columns {loc[1][0]}:{loc[1][1]}" if loc else ""
        raise InputImageError(f"{where}: float values from {lo:.6g} to {hi:.6g}{at}; with the default intensity "
                              f"mapping float input must be in [0, 1] (it would be clipped): pass {PERCENTILE_HINT} "
                              "to map the image's own range, or rescale it")
    return block


def check_unit_range(array: da.Array, path: str, arg: str) -> da.Array:
    """``array`` with every block checked to lie in [0, 1] as it is computed (lazily, like
    :func:`check_finite`).  The first block outside raises :class:`InputImageError` naming
    ``arg``, the file, the values found and the block's rows and columns, and suggesting
    ``--intensity percentile:...``.  Integer arrays are returned unchanged."""
    if array.dtype.kind != "f":
        return array
    return array.map_blocks(_unit_block, where=_where(path, arg), dtype=array.dtype, meta=array._meta)


def require_unit_range(src: ImageSource, arg: str = "content") -> ImageSource:
    """``src`` with its image and pyramid levels wrapped by :func:`check_unit_range`: for the
    dtype intensity mapping, where float pixels outside [0, 1] cannot be represented."""
    if src.array.dtype.kind != "f":
        return src
    return dataclasses.replace(src, array=check_unit_range(src.array, src.path, arg),
                               levels=tuple(check_unit_range(lv, src.path, arg) for lv in src.levels))


def check_image(array: da.Array, path: str, arg: str, *, axes: str | None = None,
                shape_in: tuple[int, ...] | None = None) -> tuple[da.Array, str]:
    """Validate an (H, W, C) array: not empty, 1/3/4 channels, a supported dtype.  Returns the
    array (float wrapped by :func:`check_finite`) and its channels ("gray" | "rgb" | "rgba")."""
    where = _where(path, arg)
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


def check_rgb(arr: da.Array, path: str, arg: str) -> da.Array:
    """Validate layout and dtype of an (H, W, 3) RGB array (strict: gray/RGBA refused).

    Kept for callers that need exactly RGB; :func:`open_image` and :func:`as_source`
    accept gray and RGBA too.
    """
    where = _where(path, arg)
    if any(int(s) == 0 for s in arr.shape):
        raise InputImageError(f"{where}: empty image, shape {tuple(arr.shape)}")
    if arr.ndim == 2:
        raise InputImageError(f"{where}: grayscale image, shape {tuple(arr.shape)}; only RGB (H, W, 3) is supported")
    if arr.ndim != 3:
        raise InputImageError(f"{where}: {arr.ndim}-D array, shape {tuple(arr.shape)}; expected (H, W, 3) RGB")
    if arr.shape[2] != 3:
        hint = " (channels first? store it as H, W, C)" if arr.shape[0] in (3, 4) and arr.shape[2] > 4 else ""
        raise InputImageError(
            f"{where}: {arr.shape[2]} channels, shape {tuple(arr.shape)}; only RGB (H, W, 3) is supported{hint}"
        )
    if str(arr.dtype) not in SUPPORTED_DTYPES:
        raise InputImageError(f"{where}: dtype {arr.dtype}; supported: {', '.join(SUPPORTED_DTYPES)}")
    return arr


def _build(raw: _Raw, path: str, arg: str, axes: str | None) -> ImageSource:
    where = _where(path, arg)
    shape = tuple(int(s) for s in raw.array.shape)
    if 0 in shape:
        raise InputImageError(f"{where}: empty image, shape {shape}")
    if axes is not None:
        ax = parse_axes(axes, shape, where)
    else:
        ax = _metadata_axes(raw.axes, shape) or guess_axes(shape, where)
    arr, channels = check_image(to_yxc(raw.array, ax, where), path, arg, axes=ax, shape_in=shape)
    validate.check_pixel_size(raw.pixel_size, where)
    levels, prev = [], arr.shape
    for level in raw.levels:
        if level.ndim != len(ax):
            continue
        lv = to_yxc(level, ax, where)
        if lv.shape[2] == arr.shape[2] and lv.shape[0] <= prev[0] and lv.shape[1] <= prev[1] and lv.shape != prev:
            levels.append(check_finite(lv, path, arg))
            prev = lv.shape
    names = raw.channel_names if raw.channel_names and len(raw.channel_names) == arr.shape[2] else None
    return ImageSource(arr, path, raw.format, ax, channels, tuple(levels), raw.pixel_size, names)


# ---------------------------------------------------------------------------- Zarr


def _is_zarr(path: Path) -> bool:
    markers = ("zarr.json", ".zarray", ".zgroup")
    return path.suffix == ".zarr" or (path.is_dir() and any((path / m).exists() for m in markers))


def _zarr_axes(arr: Any) -> str | None:
    names = getattr(arr.metadata, "dimension_names", None)
    if names is None:
        names = arr.attrs.get("_ARRAY_DIMENSIONS")
    if not names or any(n is None for n in names):
        return None
    letters = [ome.NAME_TO_LETTER.get(str(n).lower()) for n in names]
    return "".join(letters) if all(letters) else None


class ZarrBlocks:
    """Picklable array-like over a Zarr array, for ``da.from_array``: a chunk that cannot be
    read (truncated, garbage bytes, a missing codec) becomes an :class:`InputImageError`
    naming the file, the chunk's key and the block, when that block is read."""

    def __init__(self, array: Any, where: str) -> None:
        self.array, self.where = array, where
        self.shape, self.dtype, self.ndim = tuple(array.shape), array.dtype, array.ndim

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            return np.asarray(self.array[key])
        except Exception as exc:  # noqa: BLE001 - codecs report damaged chunks with many types
            raise InputImageError(f"{self.where}: cannot read {self._describe(key)} ({type(exc).__name__}: "
                                  f"{_flat(exc)}); the store is damaged: restore that chunk file") from exc

    def _describe(self, key: Any) -> str:
        """``chunk 'c/1/0/0' (index [20:40, 0:25, 0:3])``: the chunk file under the store
        holding the block's first pixel, and the block's index."""
        slices = key if isinstance(key, tuple) else (key,)
        starts = [s.start or 0 if isinstance(s, slice) else int(s) for s in slices]
        grid = self.array.shards or self.array.chunks
        try:
            name = self.array.metadata.encode_chunk_key(tuple(a // c for a, c in zip(starts, grid)))
        except Exception:  # noqa: BLE001 - an exotic key encoding: the index still says where
            name = None
        name = f"{self.array.path}/{name}" if name and self.array.path else name
        shown = ", ".join(f"{s.start or 0}:{s.stop if s.stop is not None else n}" if isinstance(s, slice) else str(s)
                          for s, n in zip(slices, self.shape))
        return (f"chunk {name!r} " if name else "a chunk ") + f"(index [{shown}])"


def _flat(exc: BaseException, limit: int = 200) -> str:
    """``exc``'s message on one line, at most ``limit`` characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _from_zarr(array: Any, where: str) -> da.Array:
    """A Zarr array as Dask, chunked as stored, with damaged chunks reported (:class:`ZarrBlocks`)."""
    return da.from_array(ZarrBlocks(array, where), chunks=array.chunks, lock=False,
                         name=f"from-zarr-{tokenize(array, 'checked')}", meta=np.empty((0,) * array.ndim, array.dtype))


def _read_zarr(path: Path | remote.RemotePath, where: str) -> _Raw:
    import zarr

    try:
        node = zarr.open(remote.zarr_target(path, read_only=True), mode="r")
    except FileNotFoundError as exc:  # locally, a missing path was refused before: a URL with nothing there
        if not isinstance(path, remote.RemotePath):
            raise InputImageError(f"{where}: not a readable Zarr store ({exc})") from exc
        raise InputImageError(f"{where}: no Zarr store at this URL (no zarr.json, .zarray or .zgroup found)") from exc
    except Exception as exc:  # noqa: BLE001 - zarr raises many types for broken stores
        raise InputImageError(f"{where}: not a readable Zarr store ({type(exc).__name__}: {_flat(exc)})") from exc
    if isinstance(node, zarr.Array):
        return _Raw(_from_zarr(node, where), "zarr", _zarr_axes(node))
    validate.check_ngff_group(node, where)
    found = ome.find_ngff(node)
    if found is not None:
        group, image = found
        try:
            arrays = [group[p] for p in image.paths]
        except KeyError as exc:
            raise InputImageError(f"{where}: NGFF dataset {exc} listed in the metadata is missing") from exc
        for p, a in zip(image.paths, arrays):
            if not isinstance(a, zarr.Array):
                raise InputImageError(f"{where}: NGFF dataset {p!r} listed in the metadata is a group, not an array")
        base = arrays[0]
        axes = image.axes or _zarr_axes(base)
        return _Raw(_from_zarr(base, where), "ome-zarr", axes, tuple(_from_zarr(a, where) for a in arrays[1:]),
                    image.pixel_size, image.channel_names)
    arrays = dict(node.arrays())
    if "0" in arrays:
        return _Raw(_from_zarr(arrays["0"], where), "zarr", _zarr_axes(arrays["0"]))
    if len(arrays) == 1:
        only = next(iter(arrays.values()))
        return _Raw(_from_zarr(only, where), "zarr", _zarr_axes(only))
    raise InputImageError(f"{where}: Zarr group with arrays {sorted(arrays)}; expected one array or an array named '0'")


# ---------------------------------------------------------------------------- TIFF

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


def _read_tiff(path: Path, where: str) -> _Raw:
    import tifffile

    st = path.stat()
    stamp = (st.st_size, st.st_mtime_ns)
    try:
        with tifffile.TiffFile(str(path)) as tif:
            series = tif.series[0]
            _check_complete(tif, series, st.st_size, where)
            ome_xml = tif.ome_metadata if tif.is_ome else None
    except InputImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated/corrupt TIFFs raise many types
        raise InputImageError(f"{where}: not a readable TIFF ({type(exc).__name__}: {exc})") from exc
    arrays, axes = [], None
    for level in range(len(series.levels)):
        try:
            z = _tiff_zarr(str(path), stamp, 0, level)
            if level == 0:  # decode one pixel now: a missing codec fails here, not mid-run
                z[tuple(slice(0, 1) for _ in z.shape)]
        except Exception as exc:  # noqa: BLE001
            raise InputImageError(f"{where}: not a readable TIFF level {level} ({type(exc).__name__}: {exc})") from exc
        level_axes = "".join(z.attrs.get("_ARRAY_DIMENSIONS", ())) or None
        axes = axes or level_axes
        reader = TiffLevel(str(path), stamp, 0, level, tuple(z.shape), str(z.dtype), where)
        chunks = _tiff_chunks(tuple(z.shape), tuple(z.chunks), level_axes or "", z.dtype.itemsize) \
            if level_axes and len(level_axes) == z.ndim else "auto"
        arrays.append(da.from_array(reader, chunks=chunks, name=f"tiff-{tokenize(str(path), stamp, level)}",
                                    lock=False, meta=np.empty((0,) * z.ndim, z.dtype)))
    pixel_size, names = ome.parse_ome_xml(ome_xml) if ome_xml else (None, None)
    return _Raw(arrays[0], "ome-tiff" if ome_xml else "tiff", axes, tuple(arrays[1:]), pixel_size, names)


# --------------------------------------------------------------------- PNG / JPEG

_PIL_LOCK = threading.Lock()
_RASTER_CACHE: dict[tuple[Any, ...], str] = {}
_TEMP_DIRS: list[str] = []


@atexit.register
def _remove_temp_stores() -> None:
    for d in _TEMP_DIRS:
        shutil.rmtree(d, ignore_errors=True)


def _normalise_mode(im: Any, where: str) -> Any:
    mode = im.mode
    if mode == "1":
        return im.convert("L")
    if mode in ("P", "PA"):
        return im.convert("RGBA" if mode == "PA" or "transparency" in im.info else "RGB")
    if mode in ("LA", "La", "RGBa"):
        return im.convert("RGBA")
    if mode in ("RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        return im.convert("RGB")
    if mode in ("L", "RGB", "RGBA", "I", "F") or mode.startswith("I;16"):
        return im
    raise InputImageError(f"{where}: unsupported image mode {mode!r}")


def _band(im: Any, y0: int, y1: int, where: str) -> np.ndarray:
    if isinstance(im, np.ndarray):  # a 16-bit PNG decoded by png.decode_png16: (H, W, C) uint16
        return im[y0:y1]
    band = np.asarray(im.crop((0, y0, im.size[0], y1)))
    if band.ndim == 2:
        band = band[..., None]
    if band.dtype.kind in "iu" and band.dtype.itemsize > 1:  # I;16 (any byte order) or I (int32)
        if band.dtype.itemsize > 2 and (band.min() < 0 or band.max() > 65535):
            raise InputImageError(f"{where}: 32-bit integer pixels outside the uint16 range")
        band = band.astype(np.uint16)
    return band.astype(np.float32) if band.dtype.kind == "f" else band


def _read_raster(path: Path, where: str, allow_large: bool, scratch_dir: Path | None = None) -> _Raw:
    import zarr
    from PIL import Image, ImageOps

    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, str(scratch_dir))
    fmt = "jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else (path.suffix.lower().lstrip(".") or "raster")
    cached = _RASTER_CACHE.get(key)
    if cached and os.path.isdir(cached):
        return _Raw(da.from_zarr(zarr.open_array(cached, mode="r")), fmt, "YXC")
    with _PIL_LOCK:
        limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None  # our own check below, with the flag that lifts it
        try:
            im = Image.open(path)
            w, h = im.size
            if limit is not None and w * h > limit and not allow_large:
                im.close()
                raise InputImageError(
                    f"{where}: {w} x {h} = {w * h} pixels exceeds Pillow's decompression-bomb limit of {limit} "
                    f"pixels; if you trust this file pass {ALLOW_LARGE_FLAG} (allow_large=True), or convert it to "
                    f"a tiled TIFF or Zarr")
            if limit is not None and w * h <= limit:
                Image.MAX_IMAGE_PIXELS = limit
            fmt = (im.format or fmt).lower() if fmt == "raster" else fmt
            head = png.read_png_header(path) if im.format == "PNG" else None
            if head is not None and head.cannot_hold_its_pixels():  # before decoding allocates the pixels
                im.close()
                raise InputImageError(
                    f"{where}: PNG header claims {w} x {h} pixels ({head.pixel_bytes} bytes) but the file holds "
                    f"{head.idat_bytes} bytes of compressed image data, too few to inflate to that: truncated or "
                    f"forged (a decompression bomb); refused even with {ALLOW_LARGE_FLAG}")
            if head is not None and head.depth == 16:  # Pillow would decode RGB(A) to 8 bits
                im.close()
                im = png.decode_png16(path, head, where)
            else:
                im.load()
                ImageOps.exif_transpose(im, in_place=True)
                im = _normalise_mode(im, where)
        except InputImageError:
            raise
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise InputImageError(f"{where}: not a readable image ({exc})") from exc
        finally:
            Image.MAX_IMAGE_PIXELS = limit
    h, w = im.shape[:2] if isinstance(im, np.ndarray) else im.size[::-1]
    step = 1024
    first = _band(im, 0, min(h, step), where)
    tmp = tempfile.mkdtemp(prefix="urst-dask-", dir=str(scratch.make(scratch_dir)) if scratch_dir else None)
    _TEMP_DIRS.append(tmp)
    store = os.path.join(tmp, path.name + ".zarr")
    z = zarr.create_array(store, shape=(h, w, first.shape[2]), dtype=first.dtype, fill_value=0,
                          chunks=(min(h, step), min(w, step), first.shape[2]), dimension_names=("y", "x", "c"))
    z[: first.shape[0]] = first
    for y0 in range(step, h, step):
        z[y0 : y0 + step] = _band(im, y0, min(h, y0 + step), where)
    if not isinstance(im, np.ndarray):
        im.close()
    _RASTER_CACHE[key] = store
    return _Raw(da.from_zarr(zarr.open_array(store, mode="r")), fmt, "YXC")


# ---------------------------------------------------------------------------- public


HEAD_BYTES = 64 << 10  # bytes of a single-file image hashed into its identity


def input_identity(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A cheap fingerprint of an input on disk or at a URL, for deciding whether a resumed run
    reads the same pixels as the run that started the output.

    * A directory (Zarr, OME-Zarr): the sha256 of the sorted list of every file under it with
      its size and ``st_mtime_ns`` (one ``stat`` per file, no pixel read: fast even for
      thousands of chunks).  Any chunk rewritten, added or removed changes it, as does any
      metadata change.
    * A single file (TIFF, PNG, JPEG...): its size, ``st_mtime_ns`` and the sha256 of its first
      64 KiB (the header, IFDs and the first strips/tiles).

    It cannot see a rewrite that keeps every changed file's size and mtime (a same-size copy
    with ``cp -p``/``rsync -t``, or an mtime set back by hand), nor, for a single file, a change
    beyond the first 64 KiB that keeps size and mtime.  Hashing every byte would see those,
    at the cost of reading the whole image once more per run.

    * A store at a URL: the sorted listing of every key with its size and what the backend
      reports of its version (ETag, generation, modification time), see
      :func:`.remote_store.identity`; it sees every rewrite that changes an ETag (S3, GCS) or
      a modification time, and nothing when the server lists no keys (plain HTTP without
      directory listings: then only the root metadata documents are hashed).
    """
    rp = remote.as_remote(path)
    if rp is not None:
        return remote_store.identity(rp)
    p = Path(path).resolve()
    if p.is_dir():
        digest, count, total = hashlib.sha256(), 0, 0
        for root, dirs, files in os.walk(p):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(root, name)
                st = os.stat(full)
                rel = os.path.relpath(full, p)
                digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
                count, total = count + 1, total + st.st_size
        return {"path": str(p), "files": count, "bytes": total, "listing_sha256": digest.hexdigest()}
    st = p.stat()
    with open(p, "rb") as fh:
        head = hashlib.sha256(fh.read(HEAD_BYTES)).hexdigest()
    return {"path": str(p), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "head_sha256": head}


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
    where = _where(path, arg)
    if remote.is_url(path):
        got = remote.attach(path, None, arg)
        if isinstance(got, remote.RemotePath):
            return _build(_read_url(got, where), str(path), arg, axes)
        path = got  # file:///...: a local path, with the checks below
    p = Path(path)
    broken_link = validate.link_problem(p)
    if broken_link:
        raise InputImageError(f"{where}: {broken_link}")
    if not p.exists():
        raise InputImageError(f"{where}: no such file or directory")
    if _is_zarr(p):
        raw = _read_zarr(p, where)
    elif p.is_dir():
        raise InputImageError(f"{where}: is a directory but not a Zarr store")
    elif not os.access(p, os.R_OK):
        raise InputImageError(f"{where}: not readable (permission denied)")
    elif p.suffix.lower() in TIFF_SUFFIXES:
        raw = _read_tiff(p, where)
    else:
        raw = _read_raster(p, where, allow_large, Path(scratch_dir) if scratch_dir else None)
    return _build(raw, str(path), arg, axes)


URL_FILE_SUFFIXES = TIFF_SUFFIXES | {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


def _read_url(rp: remote.RemotePath, where: str) -> _Raw:
    """A Zarr/OME-Zarr store at a URL, read through fsspec (single-file images are not)."""
    if Path(rp.rstrip("/")).suffix.lower() in URL_FILE_SUFFIXES:
        raise InputImageError(f"{where}: only Zarr and OME-Zarr stores are read from URLs; download the file "
                              "and give its local path")
    return _read_zarr(rp, where)


def as_source(array: np.ndarray | da.Array, path: str = "<array>", arg: str = "content", *,
              axes: str | None = None, chunk: int = 1000) -> ImageSource:
    """An in-memory numpy/Dask array as an :class:`ImageSource` (same axes and checks as
    files).  A numpy array is normalised first (a view) and then chunked ``chunk`` a side."""
    where = _where(path, arg)
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
    read whole (a 20000 x 20000 RGB uint8 style takes 1.2 GB).
    """
    src = open_image(path, arg, axes=axes, allow_large=allow_large, scratch_dir=scratch_dir)
    return as_rgb(np.asarray(src.array.compute()))
