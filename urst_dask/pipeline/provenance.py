"""What a run records about itself: every parameter, the input's identity and the fingerprint
a resumed run must match; the attributes written when the store is created."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
from typing import Any

import dask
import dask.array as da
import numpy as np

from .._version import __version__
from ..engine.probe import PrecisionChoice
from ..io import images, store
from ..io.readers import input_identity
from ..preprocess import dtype_scale
from ..settings import Intensity
from ..stats import NormStats
from ..tiling import TileGrid
from .config import RunConfig


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def plain(obj: Any) -> dict[str, Any]:
    """A frozen option object as plain values (enums as their strings, the intensity as the
    string it was given as: the fingerprints of earlier stores stay the same)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = str(v) if isinstance(v, Intensity) else v.value if hasattr(v, "value") else v
    return out


SAMPLE_SHARE = 0.25  # blocks whose tasks are this share of the whole graph (and more than a few) are dear,
SAMPLE_DEAR_BYTES = 64 << 20  # in an image larger than this (a share of a smaller one is read quickly)


def sample_digest(array: da.Array) -> str | None:
    """The sha256 of three of ``array``'s (H, W, C) blocks: the first, the middle and the last;
    ``None`` when they would cost about as much as the whole graph (more than a quarter of its
    tasks, beyond a small graph) of an image over 64 MB.  They are computed in this process, and a block of
    ``d / d.max()`` needs the whole image: a 71 MB lazy scan was computed here, single-threaded,
    before its run started on the cluster.  A rechunk of small chunks needs many tasks, but few
    of the graph's: sampled.  Counted on the culled high-level graph, without expanding it."""
    ny, nx = array.numblocks[:2]
    picked = sorted({(0, 0), (ny // 2, nx // 2), (ny - 1, nx - 1)})
    graph = array.__dask_graph__()
    keys = {(array.name, i, j, k) for i, j in picked for k in range(array.numblocks[2])}
    needed = len(graph.cull(keys))
    if needed > 64 and needed > SAMPLE_SHARE * len(graph) and array.nbytes > SAMPLE_DEAR_BYTES:
        return None
    picks = [array.blocks[i, j] for i, j in picked]
    blocks = dask.compute(*picks, scheduler="synchronous")
    h = hashlib.sha256(f"{array.shape}{array.dtype}".encode())
    for b in blocks:
        h.update(np.ascontiguousarray(b).tobytes())
    return h.hexdigest()


def content_identity(src: images.ImageSource) -> dict[str, Any]:
    """What identifies the input for the run fingerprint: for a file or Zarr store, its
    listing/size/mtime/header digest (see :func:`urst_dask.io.readers.input_identity` for what
    it can and cannot detect); for an array, its dask name and the digest of three of its
    blocks.  A numpy array's name is its content's hash, but dask names a file-backed array
    (``da.from_zarr``) by path: the blocks see it rewritten in place, unless the rewrite
    leaves those three blocks as they were.  An array whose blocks are dear to compute (a
    normalisation by the whole image's maximum) is known by its dask name alone."""
    if src.path == "<array>":
        return {"token": src.array.name, "sample_sha256": sample_digest(src.array)}
    return input_identity(src.path)


# what the fingerprint leaves out: the content's and the style image's paths as they were typed.
# The content's resolved identity and the style's sha256 identify them, so `photo.jpg` and
# `/home/me/photo.jpg` are the same run.  And the style's pixels' digest: its sha256 decides it
# (a file's is decoded the same way; an array's is the same digest), and the fingerprints of
# stores written before it was recorded stay the same.
LEFT_OUT = {"content": {"path"}, "style": {"path", "pixels_sha256"}}


def fingerprint(meta: dict[str, Any]) -> str:
    core = {k: {kk: vv for kk, vv in v.items() if kk not in LEFT_OUT.get(k, ())} if isinstance(v, dict) else v
            for k, v in meta.items()}
    return hashlib.sha256(json.dumps(core, sort_keys=True, default=str).encode()).hexdigest()


def provenance(src: images.ImageSource, style_meta: dict[str, Any], config: RunConfig, variant: str | None,
               weights: dict[str, str], stats: NormStats | None) -> dict[str, Any]:
    """Every parameter of the run, and its fingerprint (what a resumed run must match).
    ``weights``: ``{relpath: sha256}`` of the weight files as read now
    (:func:`urst_dask.io.weights.files_record`)."""
    meta = {
        "version": __version__,
        "method": config.method,
        "variant": variant,
        "content": {"path": src.path, "shape": list(src.shape), "dtype": str(src.array.dtype), "format": src.format,
                    "channels": src.channels, "axes_in": src.axes_in, "pixel_size": src.pixel_size,
                    "thumbnail_from_level_shape": list(src.level_for(config.style.thumb_size).shape),
                    "identity": content_identity(src)},
        "style": style_meta,
        "weights": weights,
        "options": plain(config.style),
        "tile_plan": plain(config.tiles),
        "compute": plain(config.compute),
        "stats_given": None if stats is None else stats.token(),
    }
    meta["fingerprint"] = fingerprint(meta)
    return meta


def store_attrs(meta: dict[str, Any], config: RunConfig, src: images.ImageSource, grid: TileGrid,
                stats: NormStats | None, intensity_range: tuple[float, float] | None,
                choice: PrecisionChoice | None = None) -> dict[str, Any]:
    """The attributes a new output store starts with: the provenance, the statistics' digest,
    the intensity mapping (mode and range), the resolved tile grid and, where
    ``precision="auto"`` was settled by a bf16 probe, that choice."""
    scale = dtype_scale(src.array.dtype)
    return {**meta, "stats": None if stats is None else {"group": store.STATS, "sha256": stats.token()},
            "intensity": {"mode": str(config.style.intensity), "range_unit": list(intensity_range) if intensity_range else None,
                          "range_in_dtype": [v * scale for v in intensity_range] if intensity_range else [0.0, scale]},
            "tile_grid": plain(grid), "started": now(),
            **({"precision_auto": choice.as_dict()} if choice is not None else {})}
