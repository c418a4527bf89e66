"""The synthetic test image (see :mod:`urst_dask.synthetic`) as a lazy dask array, any size."""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np


def _synthetic_chunk(*, seed: int, block_info: dict[Any, Any] | None = None) -> np.ndarray:
    from ..synthetic import synthetic_block

    assert block_info is not None  # dask passes it to every block
    (y0, y1), (x0, x1), _ = block_info[None]["array-location"]
    return synthetic_block(y0, x0, y1 - y0, x1 - x0, seed)


def synthetic_array(shape: tuple[int, int], *, seed: int = 0, chunk: int = 1000) -> da.Array:
    """Lazy (H, W, 3) uint8 synthetic image (see :mod:`urst_dask.synthetic`), any size."""
    h, w = shape
    chunks = da.core.normalize_chunks((chunk, chunk, 3), (h, w, 3))
    return da.map_blocks(_synthetic_chunk, seed=seed, dtype=np.uint8, chunks=chunks,
                         meta=np.empty((0, 0, 0), np.uint8))
