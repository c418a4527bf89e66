"""Exports of a finished output store: the reading and computing side of :mod:`urst_dask.io.writers`.

The writers compute nothing; here a Dask array becomes a :class:`~urst_dask.io.writers.Raster`
whose bands are computed one at a time with the threaded scheduler (never the whole image in
memory), and the reduced levels of a TIFF pyramid are computed into a scratch Zarr beside the
output (so the full resolution is read once for all of them).
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import Any, Sequence

import dask.array as da
import numpy as np

from ..errors import OutputError, ParameterError, UrstError, require_bool, require_path
from ..io import chunkio, halving, ome, remote, scratch, store, writers
from ..io.readers import open_image
from ..io.targets import check_export_target, check_not_input
from ..io.writers import Raster, TiffCompression
from .progress import WindowBar


def as_raster(image: np.ndarray | da.Array | Raster) -> Raster:
    """A writer's :class:`Raster` of ``image``: a Dask array is read band by band, each band
    computed with the threaded scheduler when the writer asks for it."""
    if not isinstance(image, da.Array):
        return writers.as_raster(image)
    arr = image[..., None] if image.ndim == 2 else image
    h, w, c = (int(s) for s in arr.shape)

    def read(y0: int, y1: int) -> np.ndarray:
        return np.asarray(arr[y0:y1].compute(scheduler="threads"))

    return Raster((h, w, c), arr.dtype, int(arr.chunks[0][0]) if arr.chunks[0] else 1, read)


def write_raster(path: str | os.PathLike[str], image: np.ndarray | da.Array, *, overwrite: bool = False,
                 quality: int = 95) -> None:
    """:func:`urst_dask.io.writers.write_raster` (PNG or JPEG) of a numpy or Dask array."""
    writers.write_raster(path, as_raster(image), overwrite=overwrite, quality=quality)


def _scratch_levels(array: da.Array, n: int, folder: Path, chunk: int) -> list[da.Array]:
    """Levels 1..n, each the 2x area mean of the previous, stored in a scratch Zarr (so the
    full resolution is read once for all of them)."""
    out, prev = [], array
    for i in range(1, n + 1):
        nxt = halving.half(prev, chunk)
        h, w, c = (int(s) for s in nxt.shape)
        z = scratch.zarr_array(folder, f"{i}.zarr", (h, w, c), nxt.dtype, (min(chunk, h), min(chunk, w), c))
        da.store(nxt.rechunk(z.chunks), z, lock=False, scheduler="threads")
        prev = da.from_zarr(z)
        out.append(prev)
    return out


def write_tiff(
    path: str | os.PathLike[str],
    array: np.ndarray | da.Array,
    *,
    tile: int = 256,
    levels: int | Sequence[np.ndarray | da.Array] | None = None,
    pixel_size: dict | None = None,
    channel_names: Sequence[str] | None = None,
    overwrite: bool = False,
    compression: str | TiffCompression | None = "zlib",
) -> Path:
    """:func:`urst_dask.io.writers.write_pyramidal_tiff` of a numpy or Dask array: ``levels``
    ``None`` halves until the longer side fits in one tile, an int gives that many levels (0:
    no pyramid), a sequence gives ready levels.  Computed levels are 2x area means kept in a
    scratch Zarr beside the output (removed at the end)."""
    p = Path(path)
    arr = _checked_tiff(p, array, overwrite, compression, tile)
    with contextlib.ExitStack() as stack:
        pyramid = _pyramid(arr, levels, tile, p, stack)
        return writers.write_pyramidal_tiff(p, as_raster(arr), tile=tile, levels=[as_raster(lev) for lev in pyramid],
                                            pixel_size=pixel_size, channel_names=channel_names, overwrite=overwrite,
                                            compression=compression)


def _checked_tiff(p: Path, array: Any, overwrite: bool, compression: Any, tile: int) -> Any:
    """``array`` as (H, W, C), once the target, the pixels and the TIFF options are checked
    (before any level is computed)."""
    arr = array[..., None] if array.ndim == 2 else array
    writers.check_target(p, overwrite)
    writers.check_tiff_pixels(p, int(arr.shape[2]), arr.dtype)
    writers.tiff_options(compression, tile, arr.dtype, int(arr.shape[2]))
    return arr


def _pyramid(arr: Any, levels: int | Sequence[Any] | None, tile: int, target: Path,
             stack: contextlib.ExitStack) -> list[Any]:
    """The reduced levels of (H, W, C) ``arr`` (see :func:`write_tiff`'s ``levels``); computed
    ones live in a scratch folder beside ``target`` until ``stack`` closes."""
    if isinstance(levels, Sequence):
        return list(levels)
    h, w = (int(s) for s in arr.shape[:2])
    n = halving.level_count(h, w, tile) if levels is None else int(levels)
    if n < 0:
        raise ParameterError(f"levels={levels!r}: must be >= 0")
    if not n:
        return []
    dask_arr = arr if isinstance(arr, da.Array) else da.from_array(np.asarray(arr), chunks=(1024, 1024, -1))
    return _scratch_levels(dask_arr, n, stack.enter_context(scratch.beside(target, "levels")), 4 * tile)


def _counted(image: Any, bar: WindowBar) -> Raster:
    """:func:`as_raster` of ``image``, each band read advancing ``bar`` by its rows."""
    raster = as_raster(image)

    def read(y0: int, y1: int) -> np.ndarray:
        rows = raster.read(y0, y1)
        bar.advance(y1 - y0)
        return rows

    return Raster(raster.shape, raster.dtype, raster.chunk_rows, read)


def _write(p: Path, store_path: Any, arr: da.Array, options: dict[str, Any], progress: bool) -> None:
    """Write the export ``p`` of the store's image ``arr``, with one progress line counting the
    rows written over every level (``options``: overwrite, compression, tile)."""
    src = open_image(store_path, "store")
    if p.suffix.lower() not in (".tif", ".tiff"):
        bar = WindowBar(int(arr.shape[0]), unit="rows", enabled=progress)
        writers.write_raster(p, _counted(arr, bar), overwrite=options["overwrite"],
                             dpi=ome.dots_per_inch(src.pixel_size))  # an input's dpi, for printing
        bar.close()
        return
    compression = "zlib" if options["compression"] is None else options["compression"]
    tile = 256 if options["tile"] is None else options["tile"]
    arr = _checked_tiff(p, arr, options["overwrite"], compression, tile)
    with contextlib.ExitStack() as stack:
        levels = _pyramid(arr, list(src.levels) or None, tile, p, stack)
        bar = WindowBar(sum(int(x.shape[0]) for x in (arr, *levels)), unit="rows", enabled=progress)
        bar.step(f"{p.name}, {len(levels) + 1} levels")
        writers.write_pyramidal_tiff(p, _counted(arr, bar), tile=tile, levels=[_counted(x, bar) for x in levels],
                                     pixel_size=src.pixel_size, channel_names=src.channel_names,
                                     overwrite=options["overwrite"], compression=compression)
        bar.close()


def export(store_path: str | os.PathLike[str], out: str | os.PathLike[str], *, overwrite: bool = False,
           compression: str | None = None, tile: int | None = None,
           storage_options: dict[str, Any] | None = None, progress: bool = False) -> Path:
    """Export a finished output store: ``.tif`` (pyramidal tiled BigTIFF with OME metadata,
    written tile by tile) or ``.png``/``.jpg`` (PNG streamed band by band, 8 or 16 bits as
    stored; JPEG uint8 RGB/gray up to 65500 px).

    ``.tif`` only: ``compression`` ``"zlib"`` (default) or ``"zstd"`` (lossless, with the
    predictor), ``"jpeg"`` (uint8 gray/RGB only) or ``"none"``; ``tile`` the tile side, a
    multiple of 16 in [16, 4096] (default 256).  ``store_path`` may be a URL (with fsspec
    ``storage_options``); the export itself is a local file.  ``progress``: one line on stderr
    counting the rows written (over every level of a TIFF), with the rate and an ETA."""
    require_path("store", store_path)
    require_path("output", out)
    require_bool("overwrite", overwrite)
    require_bool("progress", progress)
    store_path = remote.attach(store_path, storage_options, "store")
    p = Path(out)
    suffix = p.suffix.lower()
    tiff = suffix in (".tif", ".tiff")
    for arg, value in (("compression", compression), ("tile", tile)):
        if value is not None and not tiff:
            raise ParameterError(f"{arg}={value!r}: applies to .tif exports only, not {suffix or 'no suffix'}")
    check_export_target(out, overwrite=overwrite)
    arr = store.open_output(store_path)
    before = store.read_attrs(store_path)  # a run replacing the store meanwhile changes these
    chunkio.require_stored(store_path)
    source = _content_of(before)
    if source is not None:  # the image the store was made from (stylize --export IMG --overwrite)
        check_not_input(out, source)
    try:
        _write(p, store_path, arr, {"overwrite": overwrite, "compression": compression, "tile": tile}, progress)
    except OSError as exc:
        if isinstance(exc, UrstError):
            raise
        full = " (disk full: free some space and export again)" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        left = "the file that was there is kept" if p.exists() else "nothing is left under that name"
        raise OutputError(f"output={str(out)!r}: cannot write the export: {exc.strerror or exc}{full}; {left}") from exc
    _check_unchanged(store_path, before, p)
    return p


def _check_unchanged(store_path: Any, before: dict[str, Any], written: Path) -> None:
    """Remove the export and refuse it if the store was replaced while it was read (another run
    with ``--overwrite``: its missing chunks would have been read as black)."""
    try:
        same = store.read_attrs(store_path) == before
    except UrstError:
        same = False
    if not same:
        written.unlink(missing_ok=True)
        raise OutputError(f"store={str(store_path)!r}: was replaced or changed by another run while it was exported; "
                          f"{str(written)!r} was removed: export again when that run has finished")


def _content_of(attrs: dict[str, Any]) -> str | None:
    """The resolved path of the local image a store was made from (its recorded identity, in
    its attributes ``attrs``), or ``None`` (an in-memory array, a URL, an older store)."""
    content = attrs.get("content")
    identity = content.get("identity") if isinstance(content, dict) else None
    path = identity.get("path") if isinstance(identity, dict) else None
    return path if isinstance(path, str) and not remote.is_url(path) else None
