"""The output image's chunks (array ``"0"`` of the store, :mod:`.store`): which are written
(the resume scan), and writing one from a worker."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from . import remote, remote_store
from .remote import RemotePath, as_remote, zarr_target
from .store import IMAGE, write_failed


def present_chunks(path: str | os.PathLike[str], array: str = IMAGE) -> set[tuple[int, int]]:
    """(row, col) indices of the chunks of ``array`` (the image, ``"0"``, or a pyramid level)
    already written (each written atomically: a file renamed into place, or one object PUT).
    A store at a URL is listed through its filesystem (fsspec ``find``), never the local disk."""
    rp = as_remote(path)
    if rp is not None:
        return remote_store.present_chunks(rp, array)
    base = Path(path) / array / "c" / "0"  # chunk keys c/<channel block 0>/<row>/<col>
    done = set()
    if base.is_dir():
        for row in os.scandir(base):
            for col in os.scandir(row.path):
                if col.is_file() and col.name.isdigit():
                    done.add((int(row.name), int(col.name)))
    return done


def missing_chunks(path: str | os.PathLike[str], array: str = IMAGE) -> list[tuple[int, int]]:
    """(row, col) of the chunks of ``array`` not on disk (in the store's listing for a URL), in
    order: what :func:`present_chunks` does not find of the array's whole chunk grid."""
    import zarr

    arr = zarr.open_array(zarr_target(path, read_only=True), path=array, mode="r")
    return _absent(arr, present_chunks(path, array))


def _absent(arr: Any, present: set[tuple[int, int]]) -> list[tuple[int, int]]:
    (h, w), (ch, cw) = arr.shape[1:], arr.chunks[1:]  # (C, H, W): chunk keys c/0/<row>/<col>
    return [(r, c) for r in range(-(-h // ch)) for c in range(-(-w // cw)) if (r, c) not in present]


def require_stored(path: str | os.PathLike[str]) -> None:
    """Refuse to read a store marked complete whose chunks are not all there: a store copied in
    part, or damaged afterwards, reads a missing chunk as zeros, a black hole in whatever is
    made of it (a TIFF export reuses the pyramid's levels).  Every chunk of the image is
    written, even an empty one, and so is every chunk of a pyramid level now; the levels of
    earlier stores left their all-zero chunks out, so a level's missing chunk is accepted
    where reducing the level before it gives an all-zero chunk there."""
    import zarr

    from ..errors import OutputError

    def refuse(what: str, missing: list[tuple[int, int]]) -> None:
        shown = ", ".join(f"{r}:{c}" for r, c in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise OutputError(f"store={str(path)!r}: {what.format(len(missing))} missing (row:col {shown}), though "
                          "the store is marked complete: it was copied in part or damaged; copy it again, or rerun "
                          "its stylize command with --overwrite")

    missing = missing_chunks(path)
    if missing:
        refuse("{} image chunks are", missing)
    root = zarr.open_group(zarr_target(path, read_only=True), mode="r")
    levels = sorted(int(k) for k, _ in root.arrays() if k.isdigit() and k != IMAGE)
    prev = root[IMAGE]
    for level in levels:
        arr = root[str(level)]
        gaps = [rc for rc in _absent(arr, present_chunks(path, str(level))) if _nonzero_under(prev, arr, *rc)]
        if gaps:
            refuse("{} chunks of pyramid level %d are" % level, gaps)
        prev = arr


def _nonzero_under(prev: Any, arr: Any, row: int, col: int) -> bool:
    """Whether chunk (``row``, ``col``) of the 2x-reduced ``arr``, computed again from the
    previous level as the pyramid computes it, has a non-zero pixel: it cannot have been left
    out for being all zero, so its absence is damage.  (A dark region's 2 x 2 means can round
    to 0 where the level above is not quite black: only the reduction itself can tell.)"""
    from .halving import half_array

    ch, cw = arr.chunks[1:]
    rows = slice(2 * row * ch, min(2 * (row + 1) * ch, prev.shape[1]))
    cols = slice(2 * col * cw, min(2 * (col + 1) * cw, prev.shape[2]))
    region = np.moveaxis(np.asarray(prev[:, rows, cols]), 0, 2)  # (C, h, w) -> (h, w, C)
    return bool(np.any(half_array(region))) if np.any(region) else False


# zarr's local store writes ``<key>.<uuid4 hex>.partial`` and renames it into place
_PARTIAL = re.compile(r"\.[0-9a-f]{32}\.partial$")


def remove_partials(path: str | os.PathLike[str]) -> int:
    """Remove the half-written chunk files an interrupted run left in a local store (``kill -9``
    mid-write; the resume scan never counts them, but they would stay in the finished store);
    return how many.  A store at a URL writes each object whole: nothing to remove."""
    if as_remote(path) is not None or not Path(path).is_dir():
        return 0
    removed = 0
    for root, _, files in os.walk(path):
        for name in files:
            if _PARTIAL.search(name):
                Path(root, name).unlink(missing_ok=True)
                removed += 1
    return removed


def image_token(path: str | os.PathLike[str]) -> str:
    """A digest of the output's image array metadata (shape, chunks, dtype, codecs), read once
    by the client for :func:`write_region`: a worker reuses its open handle of the array only
    while the store has this metadata.  A store overwritten by another run of another shape,
    on the same long-lived worker, gets a new handle instead of a stale one (whose writes past
    the old shape were silently dropped)."""
    import zarr

    arr = zarr.open_array(zarr_target(path, read_only=True), path=IMAGE, mode="r")
    doc = json.dumps(arr.metadata.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=8)
def _image_array(path: str, options_json: str, token: str):
    import zarr

    target = RemotePath(path, options_json) if remote.is_url(path) else path
    # write_empty_chunks is a setting of the opened array, not stored with it: without it here, a
    # chunk equal to the fill value (black) would be skipped, and the resume scan, which counts
    # the chunks present as done, would take it for missing
    return zarr.open_array(zarr_target(target), path=IMAGE, mode="r+").with_config({"write_empty_chunks": True})


def _chunk_file(path: str, y0: int, x0: int, token: str) -> str:
    """`` (file <store>/0/c/0/r/c)``: the chunk file of image pixel ``(y0, x0)``, for a message
    (zarr's own errors of a full disk name no file); ``""`` where it cannot be told."""
    try:
        arr = _image_array(str.__str__(str(path)), getattr(path, "options_json", ""), token)
        key = arr.metadata.encode_chunk_key((0, y0 // arr.chunks[1], x0 // arr.chunks[2]))
    except Exception:  # noqa: BLE001 - only a message's detail
        return ""
    return f" (file {str(path).rstrip('/')}/{IMAGE}/{key})"


def write_region(path: str, y0: int, x0: int, block: np.ndarray, token: str = "") -> None:
    """Write an (h, w, C) ``block`` at ``(y0, x0)``; callers pass whole chunks, so no locking.
    ``token``: the store's :func:`image_token` (this process keeps one open handle per path and
    token; ``""`` for a store that no other run replaces meanwhile).

    An ``OSError`` (disk full, quota, read-only file system...) becomes an
    :class:`OutputError` naming the store and the chunk: the store stays ``running``, and
    rerunning the same command once the cause is fixed writes the missing chunks."""
    what = f"the chunk at rows {y0}:{y0 + block.shape[0]}, columns {x0}:{x0 + block.shape[1]}"
    try:
        arr = _image_array(str.__str__(str(path)), getattr(path, "options_json", ""), token)
        arr[:, y0 : y0 + block.shape[0], x0 : x0 + block.shape[1]] = np.moveaxis(block, 2, 0)
    except OSError as exc:
        raise write_failed(path, exc, what + _chunk_file(path, y0, x0, token)) from exc
    except Exception as exc:  # noqa: BLE001 - a store at a URL: credentials, network...: one line
        rp = as_remote(path)
        if rp is None:
            raise
        raise remote_store.failure("output", rp, exc, f"write {what}", resumes=True) from exc
