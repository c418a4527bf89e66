"""Prepared style codes kept on disk, so that a style used again (the next frame of an archive
stylized one command at a time, the next photograph of a batch) skips its encoding.

A code is stored as ``<cache>/styles/<key>.npz`` (``<cache>``: ``$URST_DASK_CACHE``, default
``$XDG_CACHE_HOME/urst-dask``, i.e. ``~/.cache/urst-dask``), where the key is a sha256 of
everything the code depends on: the network and its weights, the style size, and the style
pixels.  The cache is best effort: an unwritable folder or a damaged file only costs an
encoding.  ``URST_DASK_STYLE_CACHE=0`` turns it off.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from pathlib import Path

import numpy as np

from ..stats import StyleCode
from .cachedir import cache_root

ENV_OFF = "URST_DASK_STYLE_CACHE"


def enabled() -> bool:
    return os.environ.get(ENV_OFF, "1").strip().lower() not in ("0", "false", "no", "off")


def style_key(network: str, style_size: int, image: np.ndarray) -> str:
    """The cache key of a style code: ``network`` identifies the network and its weights (see
    :func:`urst_dask.pipeline.conditioning`), ``image`` is the (H, W, C) style as given."""
    arr = np.ascontiguousarray(image)
    h = hashlib.sha256(f"{network}|{style_size}|{arr.dtype.str}|{arr.shape}|".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def _path(key: str) -> Path:
    return cache_root() / "styles" / f"{key}.npz"


def load(key: str) -> StyleCode | None:
    """The stored code for ``key``, or ``None`` (absent, damaged, or the cache is off)."""
    if not enabled():
        return None
    path = _path(key)
    try:
        with np.load(path, allow_pickle=False) as z:
            method = str(z["__method__"])
            return StyleCode.from_flat(method, {k: z[k] for k in z.files if k != "__method__"})
    except Exception:  # noqa: BLE001 - absent or damaged: encode again
        return None


def save(key: str, code: StyleCode) -> None:
    """Store ``code`` under ``key`` (atomically: a reader never sees half a file)."""
    if not enabled():
        return
    path = _path(key)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npz")
        arrays = {"__method__": np.array(code.method), **code.to_flat()}
        np.savez(tmp, **arrays)  # type: ignore[arg-type]  # numpy types **kwds with allow_pickle
        os.replace(tmp, path)
