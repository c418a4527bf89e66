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
    arr = array[..., None] if array.ndim == 2 else array
    h, w, c = (int(s) for s in arr.shape)
    writers.check_target(p, overwrite)
    writers.check_tiff_pixels(path, c, arr.dtype)
    writers.tiff_options(compression, tile, arr.dtype, c)
    with contextlib.ExitStack() as stack:
        if isinstance(levels, Sequence):
            pyramid: list[Any] = list(levels)
        else:
            n = halving.level_count(h, w, tile) if levels is None else int(levels)
            if n < 0:
                raise ParameterError(f"levels={levels!r}: must be >= 0")
            dask_arr = arr if isinstance(arr, da.Array) else da.from_array(np.asarray(arr), chunks=(1024, 1024, -1))
            folder = stack.enter_context(scratch.beside(p, "levels")) if n else None
            pyramid = _scratch_levels(dask_arr, n, folder, 4 * tile) if folder else []
        return writers.write_pyramidal_tiff(p, as_raster(arr), tile=tile, levels=[as_raster(lev) for lev in pyramid],
                                            pixel_size=pixel_size, channel_names=channel_names, overwrite=overwrite,
                                            compression=compression)


def export(store_path: str | os.PathLike[str], out: str | os.PathLike[str], *, overwrite: bool = False,
           compression: str | None = None, tile: int | None = None,
           storage_options: dict[str, Any] | None = None) -> Path:
    """Export a finished output store: ``.tif`` (pyramidal tiled BigTIFF with OME metadata,
    written tile by tile) or ``.png``/``.jpg`` (PNG streamed band by band, 8 or 16 bits as
    stored; JPEG uint8 RGB/gray up to 65500 px).

    ``.tif`` only: ``compression`` ``"zlib"`` (default) or ``"zstd"`` (lossless, with the
    predictor), ``"jpeg"`` (uint8 gray/RGB only) or ``"none"``; ``tile`` the tile side, a
    multiple of 16 in [16, 4096] (default 256).  ``store_path`` may be a URL (with fsspec
    ``storage_options``); the export itself is a local file."""
    require_path("store", store_path)
    require_path("output", out)
    require_bool("overwrite", overwrite)
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
        if tiff:
            src = open_image(store_path, "store")
            write_tiff(p, arr, levels=list(src.levels) or None, pixel_size=src.pixel_size,
                       channel_names=src.channel_names, overwrite=overwrite,
                       compression="zlib" if compression is None else compression, tile=256 if tile is None else tile)
        else:
            dpi = ome.dots_per_inch(open_image(store_path, "store").pixel_size)  # an input's dpi, for printing
            writers.write_raster(p, as_raster(arr), overwrite=overwrite, dpi=dpi)
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
