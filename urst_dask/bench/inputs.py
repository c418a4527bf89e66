"""Inputs of the memory sweep: one content image per side, cached on disk.

Generated content is the synthetic image of :mod:`urst_dask.synthetic` (detail at every
scale, computed block by block); ``--image`` content is a photograph scaled to cover the
square and centre-cropped.  Either is written once per side as an uncompressed tiled BigTIFF
(through :func:`urst_dask.pipeline.export.write_tiff`, one band of tiles computed at a time) under the scratch folder
and reused by every method and mode, so the sweep measures the pipeline, not the generator.
Generated sides above ``FRESH_MAX`` (the gigapixel points) repeat a 2000 x 2000 synthetic
block: fresh content for one gigapixel takes over an hour to generate on 2 cores, and what
is measured (memory, throughput of the pipeline) does not depend on the content.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputImageError

if TYPE_CHECKING:
    import dask.array as da

SCRATCH_ENV = "URST_BENCH_SCRATCH"
TILE = 512
FRESH_MAX = 10000
PERIOD = 2000


def default_scratch() -> Path:
    """``$URST_BENCH_SCRATCH/memory`` or ``/tmp/urst-bench/memory``."""
    return Path(os.environ.get(SCRATCH_ENV, "/tmp/urst-bench")) / "memory"


def _photo_tag(image: Path) -> str:
    st = image.stat()
    return hashlib.sha256(f"{image.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:10]


def _cover_square(photo: np.ndarray, side: int) -> np.ndarray:
    """(side, side, 3) uint8: the photograph scaled to cover the square, centre-cropped."""
    from PIL import Image

    h, w = photo.shape[:2]
    scale = side / min(h, w)
    nh, nw = max(side, round(h * scale)), max(side, round(w * scale))
    im = Image.fromarray(photo).resize((nw, nh), Image.Resampling.LANCZOS)
    y0, x0 = (nh - side) // 2, (nw - side) // 2
    return np.asarray(im.crop((x0, y0, x0 + side, y0 + side)))


def _periodic(side: int) -> da.Array:
    """(side, side, 3) uint8: the synthetic image's top-left PERIOD x PERIOD block, repeated."""
    from ..synthetic import synthetic_block

    base = synthetic_block(0, 0, PERIOD, PERIOD)

    def block(block_info: dict | None = None) -> np.ndarray:
        (y0, y1), (x0, x1), _ = (block_info or {})[None]["array-location"]
        return base[np.arange(y0, y1) % PERIOD][:, np.arange(x0, x1) % PERIOD]

    import dask.array as da  # here: the command line's parser imports this module before the cluster starts

    chunks = da.core.normalize_chunks((1000, 1000, 3), (side, side, 3))
    return da.map_blocks(block, dtype=np.uint8, chunks=chunks, meta=np.empty((0, 0, 0), np.uint8))


def content_path(side: int, scratch: Path, image: Path | None = None) -> Path:
    """The cached (side, side, 3) uint8 content TIFF, written on first use."""
    import dask.array as da

    from ..pipeline.export import write_tiff
    from ..pipeline.synthetic import synthetic_array

    periodic = image is None and side > FRESH_MAX
    name = (f"photo-{_photo_tag(image)}-{side}.tif" if image is not None else
            f"synthetic-periodic-{side}.tif" if periodic else f"synthetic-{side}.tif")
    path = scratch / name
    if path.is_file():
        return path
    scratch.mkdir(parents=True, exist_ok=True)
    if periodic:
        arr = _periodic(side)
    elif image is None:
        arr = synthetic_array((side, side), chunk=1000)
    else:
        from ..io.readers import read_style

        photo = read_style(image, "image", allow_large=True)
        if photo.dtype != np.uint8:
            raise InputImageError(f"image={str(image)!r}: {photo.dtype} photograph; the sweep takes 8-bit images")
        arr = da.from_array(_cover_square(photo, side), chunks=(1000, 1000, 3))
    write_tiff(path, arr, tile=TILE, levels=0, compression=None)  # written to a temporary name, then renamed
    return path
