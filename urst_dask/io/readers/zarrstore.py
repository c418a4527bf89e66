"""Zarr v2/v3 arrays and groups (a group's ``"0"`` array) and OME-Zarr (NGFF 0.4/0.5, also
bioformats2raw's ``"0"`` subgroup): levels, axes, pixel sizes and channel labels from the
metadata.  A chunk that cannot be decoded (truncated, garbage) is named, with its index, when
its block is read (:class:`ZarrBlocks`).  Stores may be at a URL (read through fsspec:
:mod:`..remote`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize

from ...errors import InputImageError
from .. import ome, remote, validate
from .source import RawImage


def is_zarr(path: Path) -> bool:
    markers = ("zarr.json", ".zarray", ".zgroup")
    return path.suffix == ".zarr" or (path.is_dir() and any((path / m).exists() for m in markers))


def zarr_axes(arr: Any) -> str | None:
    names = getattr(arr.metadata, "dimension_names", None)
    if names is None:
        names = arr.attrs.get("_ARRAY_DIMENSIONS")
    if not names or any(n is None for n in names):
        return None
    letters = [ome.NAME_TO_LETTER.get(str(n).lower()) for n in names]
    return "".join(x or "" for x in letters) if all(letters) else None


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
                                  f"{flat(exc)}); the store is damaged: restore that chunk file") from exc

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


def flat(exc: BaseException, limit: int = 200) -> str:
    """``exc``'s message on one line, at most ``limit`` characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def checked_zarr(array: Any, where: str) -> da.Array:
    """A Zarr array as Dask, chunked as stored, with damaged chunks reported (:class:`ZarrBlocks`)."""
    return da.from_array(ZarrBlocks(array, where), chunks=array.chunks, lock=False,
                         name=f"from-zarr-{tokenize(array, 'checked')}", meta=np.empty((0,) * array.ndim, array.dtype))


# the attributes of urst-dask's own outputs (io.store.ATTR, io.framestore.ATTR), named here
# without importing them (the readers stay free of torch)
OUTPUT_ATTRS = ("urst_dask", "urst_dask_video")


def refuse_unfinished(node: Any, where: str) -> None:
    """Refuse a urst-dask output (a store, or a video's frame store) whose run did not finish:
    its chunks not yet written read as zeros, a black picture stylized as if it were the input."""
    for attr in OUTPUT_ATTRS:
        meta = node.attrs.get(attr)
        if isinstance(meta, dict) and meta.get("status") != "complete":
            raise InputImageError(f"{where}: an unfinished urst-dask output (status {meta.get('status')!r}): what its "
                                  "run did not write would be read as black; finish it by rerunning the command "
                                  "that made it")


def read_zarr(path: Path | remote.RemotePath, where: str) -> RawImage:
    import zarr

    try:
        node = zarr.open(remote.zarr_target(path, read_only=True), mode="r")
    except FileNotFoundError as exc:  # locally, a missing path was refused before: a URL with nothing there
        if not isinstance(path, remote.RemotePath):
            raise InputImageError(f"{where}: not a readable Zarr store ({exc})") from exc
        raise InputImageError(f"{where}: no Zarr store at this URL (no zarr.json, .zarray or .zgroup found)") from exc
    except Exception as exc:  # noqa: BLE001 - zarr raises many types for broken stores
        raise InputImageError(f"{where}: not a readable Zarr store ({type(exc).__name__}: {flat(exc)})") from exc
    refuse_unfinished(node, where)
    if isinstance(node, zarr.Array):
        return RawImage(checked_zarr(node, where), "zarr", zarr_axes(node), stored=ZarrBlocks(node, where))
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
        axes = image.axes or zarr_axes(base)
        return RawImage(checked_zarr(base, where), "ome-zarr", axes, tuple(checked_zarr(a, where) for a in arrays[1:]),
                        image.pixel_size, image.channel_names, ZarrBlocks(base, where))
    members = dict(node.arrays())
    if "0" in members:
        return RawImage(checked_zarr(members["0"], where), "zarr", zarr_axes(members["0"]),
                        stored=ZarrBlocks(members["0"], where))
    if len(members) == 1:
        only = next(iter(members.values()))
        return RawImage(checked_zarr(only, where), "zarr", zarr_axes(only), stored=ZarrBlocks(only, where))
    raise InputImageError(f"{where}: Zarr group with arrays {sorted(members)}; expected one array or an array named '0'")
