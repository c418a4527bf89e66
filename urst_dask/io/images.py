"""Image I/O: lazy readers (:mod:`.readers`), exports (:mod:`.writers`), OME metadata and
pyramids (:mod:`.ome`).  This module re-exports what the rest of the package uses.

``open_image`` returns an :class:`ImageSource` whose ``array`` is (H, W, C) Dask whatever the
source (Zarr v2/v3, OME-Zarr, TIFF/BigTIFF/OME-TIFF, PNG/JPEG), with C = 1 (gray), 3 (RGB) or
4 (RGBA), dtype uint8/uint16/float32.  Errors name the argument, the file and the value.
"""

from __future__ import annotations

from .ome import read_ngff_levels
from .readers import (
    ALLOW_LARGE_FLAG,
    SUPPORTED_DTYPES,
    ImageSource,
    as_rgb,
    as_source,
    check_finite,
    check_image,
    check_unit_pixels,
    open_image,
    read_style,
)
from .writers import write_pyramidal_tiff, write_raster

__all__ = [
    "ALLOW_LARGE_FLAG",
    "SUPPORTED_DTYPES",
    "ImageSource",
    "as_rgb",
    "as_source",
    "check_finite",
    "check_image",
    "check_unit_pixels",
    "open_image",
    "read_ngff_levels",
    "read_style",
    "write_pyramidal_tiff",
    "write_raster",
]
