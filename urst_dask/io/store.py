"""The output store: a Zarr v3 group written chunk by chunk, completed last.

Layout of ``out.zarr``::

    zarr.json                      group; attributes["urst_dask"] = provenance + status
    0/                             the image as (C, H, W) (NGFF axis order: channel before
                                   space, so napari/QuPath open it), chunks (C, stride, stride)
                                   clamped to the image (C, min(stride, H), min(stride, W));
    1/, 2/, ...                    the NGFF multiscale pyramid, written after the tiles
    urst/stats/<point>/<field>     the thumbnail statistics, one small array each
    urst/style/<point>/<field>     the prepared style code (reused by a resumed run)

``attributes["urst_dask"]["status"]`` is ``"running"`` from creation and becomes
``"complete"`` only after every chunk is written: an interrupted run never leaves a store
that claims completeness, and readers refuse incomplete stores by default.  Chunks are
written atomically (temporary file + rename; one PUT at s3://, gs://), so a chunk present is
a finished one: a rerun lists them (the disk, or the keys at a URL, :mod:`.remote_store`)
and computes only the missing chunks (see :func:`prepare_output`; the chunks themselves:
:mod:`.chunkio`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any, Mapping

import dask.array as da
import numpy as np

from ..errors import OutputError
from ..stats import NormStats, StyleCode, style_conditions
from . import remote, remote_store, removal, validate
from .failed import write_failed
from .remote import RemotePath, as_remote, local_or_remote, zarr_target
from .targets import check_folder

IMAGE = "0"
STATS = "urst/stats"
STYLE = "urst/style"
ATTR = "urst_dask"


NOT_A_STORE_HINT = "remove it or choose another path (--overwrite replaces only Zarr stores)"


def zarr_node_type(path: str | os.PathLike[str]) -> str | None:
    """``"array"`` or ``"group"`` for a Zarr v2/v3 node on disk or at a URL (a ``zarr.json``
    that does not say ``"array"`` counts as a group), ``None`` for anything else."""
    rp = as_remote(path)
    if rp is not None:
        return remote_store.node_type(rp)
    p = Path(path)
    if not p.is_dir():
        return None
    if (p / "zarr.json").is_file():
        try:
            meta = json.loads((p / "zarr.json").read_text())
        except (OSError, ValueError):
            meta = {}
        return "array" if isinstance(meta, dict) and meta.get("node_type") == "array" else "group"
    if (p / ".zarray").is_file():
        return "array"
    if (p / ".zgroup").is_file():
        return "group"
    return None


def exists(path: str | os.PathLike[str]) -> bool:
    """Whether anything exists at ``path`` (a file, folder, or any key under a URL prefix)."""
    return Path(path).exists() if (rp := as_remote(path)) is None else remote_store.exists(rp)


def check_output_link(path: str | os.PathLike[str]) -> None:
    """Refuse an output ``path`` that is a dangling symbolic link or a link loop: writing
    through it would create the store (and its scratch folder) wherever the link points.
    A URL has no links; a read-only one (http/https) or a missing bucket is refused here."""
    rp = as_remote(path)
    if rp is not None:
        remote.require_writable(rp)
        remote_store.check_bucket(rp)
        return
    broken_link = validate.link_problem(Path(path))
    if broken_link:
        raise OutputError(f"output={str(path)!r}: {broken_link}; remove the link or choose another path")


def check_output_path(path: str | os.PathLike[str], overwrite: bool) -> Path | RemotePath:
    """Validate that ``path`` can become the output store (before any work is done).

    ``overwrite`` replaces an existing Zarr store (array or group), never anything else, and
    never through a symbolic link: deleting the link's target would remove data that lives
    under another name, so a link is refused with its target named.  A dangling link (or a
    link loop) is refused with or without ``overwrite``: the store would be created wherever
    it points.  A URL must be writable (not http/https) and, for s3/gs, its bucket must exist."""
    rp = as_remote(path)
    if rp is not None:
        return remote_store.check_output(rp, overwrite, NOT_A_STORE_HINT)
    p = Path(path)
    check_output_link(p)
    if p.is_symlink() and overwrite:
        raise OutputError(f"output={str(path)!r}: is a symbolic link (to {os.readlink(p)!r}); --overwrite does not "
                          f"delete through links: give the store's real path {str(p.resolve())!r}, or remove the link")
    if p.exists():
        if zarr_node_type(p) is None:
            raise OutputError(f"output={str(path)!r}: already exists and is not a Zarr store; {NOT_A_STORE_HINT}")
        if not overwrite:
            raise OutputError(f"output={str(path)!r}: already exists; pass --overwrite to replace it")
    check_folder(p, str(path))
    return p


def output_path(path: str | os.PathLike[str]) -> Path | RemotePath:
    """The output store: an absolute :class:`Path` (workers of an existing cluster may run in
    another folder: a relative path would be theirs), or a :class:`~.remote.RemotePath` for a URL."""
    got = local_or_remote(path, "output")
    return got.absolute() if isinstance(got, Path) else got


def create_output(
    path: str | os.PathLike[str],
    shape: tuple[int, ...],  # (H, W, C), the pipeline's layout
    chunk: int,
    dtype: str,
    attrs: Mapping[str, Any],
    stats: NormStats | None,
    style: StyleCode | None = None,
    *,
    overwrite: bool = False,
) -> Path | RemotePath:
    """Create the store with status ``running``, its provenance, statistics and style code
    (the caller holds the output's lock: :func:`urst_dask.io.lock.output_lock`)."""

    p = check_output_path(path, overwrite)
    if not isinstance(p, RemotePath):  # the caller holds the output's lock: an old removal left here was killed
        removal.clear_leftovers(p)
    if exists(p):
        remote_store.remove(p) if isinstance(p, RemotePath) else removal.remove_aside(p)
    try:
        _create(p, shape, chunk, dtype, attrs, stats, style)
    except Exception as exc:  # disk full...: a half-made store would be refused by the rerun, so none is left
        remote_store.remove(p, missing_ok=True) if isinstance(p, RemotePath) else shutil.rmtree(p, ignore_errors=True)
        if isinstance(exc, OSError):
            raise write_failed(p, exc, "the store", resumes=False) from exc
        if isinstance(p, RemotePath):
            raise remote_store.failure("output", p, exc, "create the store") from exc
        raise
    return p


def _create(p: Path | RemotePath, shape: tuple[int, ...], chunk: int, dtype: str, attrs: Mapping[str, Any],
            stats: NormStats | None, style: StyleCode | None) -> None:
    """The writes of :func:`create_output`, into the (absent) folder ``p``."""
    import zarr

    root = zarr.open_group(zarr_target(p), mode="w", zarr_format=3)
    # write_empty_chunks: every written chunk exists on disk, so chunk presence == done.
    # Chunks are clamped to the image: a stride larger than the image would otherwise make
    # Zarr allocate (and the pyramid inherit) stride x stride chunks for a few pixels.
    h, w, c = shape
    chunks = (c, max(1, min(chunk, h)), max(1, min(chunk, w)))
    root.create_array(IMAGE, shape=(c, h, w), chunks=chunks, dtype=dtype, fill_value=0,
                      dimension_names=("c", "y", "x"), config={"write_empty_chunks": True})
    if stats is not None:
        write_stats(p, stats)
    if style is not None:
        _write_table(p, STYLE, style)
    root.attrs[ATTR] = {**attrs, "status": "running"}


def prepare_output(path: str | os.PathLike[str], fingerprint: str, overwrite: bool) -> str:
    """Decide what to do with ``path``: ``"new"`` (create it), ``"resume"`` (same run, not
    finished: compute the missing chunks) or ``"complete"`` (same run, already done).

    A store from a different run (fingerprint mismatch) is refused unless ``overwrite``.
    """
    p = local_or_remote(path, "output")
    if overwrite or not exists(p):
        check_output_path(p, overwrite)
        return "new"
    kind = zarr_node_type(p)
    if kind is None and isinstance(p, RemotePath) and remote_store.interrupted_removal(p):
        raise OutputError(f"output={str(path)!r}: {remote_store.LEFTOVER_HINT}")
    if kind is None:
        raise OutputError(f"output={str(path)!r}: already exists and is not a Zarr store; {NOT_A_STORE_HINT}")
    if kind == "array":
        raise OutputError(f"output={str(path)!r}: is a Zarr array, not a urst-dask output store (a Zarr group); "
                          "pass --overwrite to replace it, or choose another path")
    meta = read_attrs(p) if exists(p.child("zarr.json") if isinstance(p, RemotePath) else p / "zarr.json") else {}
    if not meta:
        raise OutputError(f"output={str(path)!r}: already exists and is not a urst-dask store; "
                          "pass --overwrite to replace it")
    if meta.get("fingerprint") != fingerprint:
        raise OutputError(f"output={str(path)!r}: already exists from a different run (input, style, weights or "
                          f"parameters differ: fingerprint {str(meta.get('fingerprint'))[:12]} != {fingerprint[:12]}); "
                          "pass --overwrite to replace it")
    return "complete" if meta.get("status") == "complete" else "resume"


def _write_table(path: Path | RemotePath, where: str, table: NormStats | StyleCode) -> None:
    import zarr

    root = zarr.open_group(zarr_target(path), mode="a")
    grp = root.require_group(where)
    grp.attrs["method"] = table.method
    grp.attrs["order"] = table.points()
    for key, value in table.to_flat().items():
        grp.create_array(key, data=np.ascontiguousarray(value), overwrite=True)


def _read_table(path: str | os.PathLike[str], where: str, cls):
    """Read a statistics or style-code table, refusing a malformed one: ``where`` missing or
    not a group, ``method``/``order`` attributes of the wrong type, a listed point without its
    group or arrays, non-numeric arrays, or (statistics) contents whose hash differs from the
    one recorded in the store's attributes when they were written."""
    import zarr

    what = "statistics" if cls is NormStats else "style code"
    at = f"stats={str(path)!r}"
    if zarr_node_type(path) == "array":
        raise OutputError(f"{at}: is a Zarr array, not a urst-dask output store with {what}")
    try:
        grp = zarr.open_group(zarr_target(path, read_only=True), mode="r")[where]
    except (KeyError, FileNotFoundError, zarr.errors.GroupNotFoundError, zarr.errors.NodeNotFoundError) as exc:
        raise OutputError(f"{at}: no {what} stored there") from exc
    except (ValueError, TypeError, zarr.errors.BaseZarrError) as exc:
        raise OutputError(f"{at}: not a readable Zarr store ({type(exc).__name__}: {exc})") from exc
    if not isinstance(grp, zarr.Group):
        raise OutputError(f"{at}: {where!r} is a Zarr array, not a group of {what}")
    method, order = grp.attrs.get("method"), grp.attrs.get("order")
    if not isinstance(method, str) or not isinstance(order, list) or not all(isinstance(p, str) for p in order):
        raise OutputError(f"{at}: malformed {what} in {where!r}: attributes method={method!r}, order={order!r}; "
                          "expected a method name and a list of point names")
    flat = {}
    for point in order:
        node = grp.get(point)
        # sorted: the store lists arrays in directory order, which varies between file systems
        arrays = dict(sorted(node.arrays())) if isinstance(node, zarr.Group) else {}
        if not arrays:
            raise OutputError(f"{at}: malformed {what} in {where!r}: point {point!r} is listed but has no arrays")
        for name, arr in arrays.items():
            if arr.dtype.kind not in "fiu":
                raise OutputError(f"{at}: malformed {what}: {where}/{point}/{name} has dtype {arr.dtype}")
            flat[f"{point}/{name}"] = arr[...]
    table = cls.build(method, {}) if not order else cls.from_flat(method, flat)
    recorded = (read_attrs(path).get("stats") or {}).get("sha256") if cls is NormStats else None
    if recorded and table.token() != recorded:
        shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in list(flat.items())[:3])
        raise OutputError(f"{at}: the statistics in {where!r} ({shapes}...) do not match the sha256 {recorded[:12]} "
                          "recorded when they were written; the store is damaged or was edited")
    return table


def write_stats(path: Path | RemotePath, stats: NormStats) -> None:
    _write_table(path, STATS, stats)


def read_stats(path: str | os.PathLike[str]) -> NormStats:
    """The statistics stored with an output (to reproduce a run or reuse its statistics), marked
    with the digest of the weight files the run recorded (:attr:`NormStats.network`) and with
    its style's (:attr:`NormStats.conditions`); ``None`` for a store without that record."""
    from .weights import network_digest

    stats = _read_table(path, STATS, NormStats)  # first: its errors name what is wrong with the store
    attrs = read_attrs(path)
    record, style, options = attrs.get("weights"), attrs.get("style"), attrs.get("options")
    known = isinstance(record, dict) and bool(record) and all(isinstance(v, str) for v in record.values())
    return dataclasses.replace(
        stats, network=network_digest(record) if known and record else None,
        conditions=style_conditions(style, options) if isinstance(style, dict) and isinstance(options, dict) else None)


def read_style_code(path: str | os.PathLike[str]) -> StyleCode:
    """The prepared style stored with an output (a resumed run reuses it unchanged)."""
    return _read_table(path, STYLE, StyleCode)


def mark_complete(path: str | os.PathLike[str], extra: Mapping[str, Any] | None = None) -> None:
    """Flip the status to ``complete``: the last write of a run.  An ``OSError`` (disk full...)
    becomes an :class:`OutputError` naming the store, which stays ``running``."""
    import zarr

    try:
        root = zarr.open_group(zarr_target(path), mode="r+")
        meta = dict(root.attrs[ATTR])
        meta.update(extra or {})
        meta["status"] = "complete"
        root.attrs[ATTR] = meta
    except OSError as exc:
        raise write_failed(path, exc, "the completion marker") from exc


def read_attrs(path: str | os.PathLike[str]) -> dict[str, Any]:
    import zarr

    try:
        return dict(zarr.open_group(zarr_target(path, read_only=True), mode="r").attrs.get(ATTR, {}))
    except zarr.errors.ContainsArrayError as exc:
        raise OutputError(f"store={str(path)!r}: is a Zarr array, not a urst-dask output store (a Zarr group)") from exc
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
        raise OutputError(f"store={str(path)!r}: not a urst-dask output store") from exc
    except Exception as exc:  # noqa: BLE001 - at a URL: an unreachable endpoint, no credentials...
        rp = as_remote(path)
        if rp is None:
            raise
        raise remote_store.failure("store", rp, exc, "read zarr.json") from exc


def open_output(path: str | os.PathLike[str], *, allow_incomplete: bool = False) -> da.Array:
    """The stylized image of a finished run as a Dask array (H, W, C)."""
    import zarr

    meta = read_attrs(path)
    if not meta:
        raise OutputError(f"store={str(path)!r}: not a urst-dask output store (no '{ATTR}' attributes)")
    if meta.get("status") != "complete" and not allow_incomplete:
        raise OutputError(f"store={str(path)!r}: incomplete (status {meta.get('status')!r}); the run did not finish")
    from .readers.zarrstore import checked_zarr

    arr = zarr.open_array(zarr_target(path, read_only=True), path=IMAGE, mode="r")
    image = checked_zarr(arr, f"store={str(path)!r}")  # a damaged chunk: one line naming it, when read
    if tuple(arr.metadata.dimension_names or ()) == ("c", "y", "x"):
        image = image.transpose(1, 2, 0)
    return image
