"""A napari reader (npe2 contribution, see ``urst_dask/napari.yaml``) for urst-dask output stores
and OME-Zarr images: ``napari out.zarr`` or File > Open shows the result as a multiscale layer,
every level a lazy Dask array (napari reads the tiles it shows).

napari is not imported here: the reader returns plain layer data, ``[(levels, kwargs, "image")]``.
Install the ``napari`` extra (``pip install "urst-dask[napari]"``) to get napari itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from ..errors import UrstError
from . import store
from .readers import open_image
from .readers.zarrstore import is_zarr

LayerData = tuple[list[Any], dict[str, Any], str]
CONTRAST = {"uint8": (0, 255), "uint16": (0, 65535), "float32": (0.0, 1.0)}


def _local_zarr(path: Any) -> str | None:
    """The one local Zarr folder ``path`` names (napari may pass a list of paths), else None."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    if not isinstance(path, (str, os.PathLike)):
        return None
    p = Path(path)
    return str(p) if p.is_dir() and is_zarr(p) else None


def _is_output(folder: str) -> bool:
    try:
        return bool(store.read_attrs(folder))
    except UrstError:
        return False


def read_layers(path: str | os.PathLike[str]) -> list[LayerData]:
    """The image of a urst-dask output store or an OME-Zarr (or plain Zarr) image as napari
    layer data: its levels largest first (an output store's full resolution refused while the
    run is incomplete, as :func:`urst_dask.io.store.open_output` does), gray as (H, W), RGB(A)
    as (H, W, C) with ``rgb``, the pixel size as ``scale`` when the store records one."""
    try:
        attrs = store.read_attrs(path)
    except UrstError:
        attrs = {}
    is_output = bool(attrs)
    full = store.open_output(path) if is_output else None  # an unfinished run's store: refused here, by name
    src = open_image(path, "path")
    base = full if full is not None else src.array
    levels = [base, *src.levels]
    rgb = src.channels != "gray"
    if not rgb:
        levels = [lv[..., 0] for lv in levels]
    kwargs: dict[str, Any] = {"multiscale": True, "rgb": rgb, "name": Path(path).name.removesuffix(".zarr")}
    # the range the store's pixels are in: the dtype's, or the one recorded by --intensity percentile
    recorded = (attrs.get("intensity") or {}).get("range_in_dtype")
    if str(base.dtype) == "float32" and isinstance(recorded, list) and len(recorded) == 2 and recorded[1] > recorded[0]:
        kwargs["contrast_limits"] = (float(recorded[0]), float(recorded[1]))
    elif str(base.dtype) in CONTRAST:
        kwargs["contrast_limits"] = CONTRAST[str(base.dtype)]
    size = src.pixel_size or {}
    if "y" in size and "x" in size:
        kwargs["scale"] = (float(size["y"][0]), float(size["x"][0]))
    return [(levels, kwargs, "image")]


def napari_get_reader(path: Any) -> Callable[[Any], list[LayerData]] | None:
    """napari's reader hook: a function reading ``path`` when it is a local Zarr folder holding
    an image urst-dask can open, else None (so napari tries its other readers)."""
    folder = _local_zarr(path)
    if folder is None:
        return None
    try:
        open_image(folder, "path")  # lazy: the metadata and one check, no pixels read
    except UrstError:
        if not _is_output(folder):
            return None  # an unfinished output of ours is read by the reader below, which says why it cannot

    def reader(given: Any) -> list[LayerData]:
        return read_layers(_local_zarr(given) or folder)

    return reader
