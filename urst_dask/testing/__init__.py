"""Helpers for urst-dask's tests and for people testing code built on it (needs the ``test``
extra): tiny synthetic images, the weights lookup, and toy networks that prove tiling is exact.

* :mod:`.toys` - toy networks (``identity``, ``identity-fails``, ``localmean``, ``pool16``),
  registered by :func:`.toys.register`;
* :mod:`.slow` - ``identity-slow``, with slow, counted windows (kill/resume tests);
* :mod:`.tensors` - synthetic NCHW tensors and per-network assertions;
* :mod:`.preload` - a Dask worker preload registering the toy networks in worker processes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

# the folder holding the urst_dask package (the repository root in a source checkout)
REPO = Path(__file__).resolve().parents[2]


def weights_dir() -> Path | None:
    """``$URST_DASK_WEIGHTS``, else ``../shared/weights`` beside the repository, if it exists."""
    env = os.environ.get("URST_DASK_WEIGHTS")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "weights"]:
        if cand.is_dir():
            return cand
    return None


def random_image(h: int, w: int, seed: int = 0, dtype: type | np.dtype = np.uint8) -> np.ndarray:
    """Uniform noise, (H, W, 3), in the full range of ``dtype`` (float32: [0, 1))."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == np.float32:
        return rng.random((h, w, 3), dtype=np.float32)
    return rng.integers(0, np.iinfo(dtype).max + 1, size=(h, w, 3), dtype=dtype)


__all__ = ["REPO", "random_image", "weights_dir"]
