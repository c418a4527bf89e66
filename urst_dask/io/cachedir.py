"""Where urst-dask keeps what it can rebuild: ``$URST_DASK_CACHE``, else
``$XDG_CACHE_HOME/urst-dask`` (``~/.cache/urst-dask``).  Its folders: ``openvino/`` (converted
networks, :mod:`urst_dask.engine.backends`) and ``styles/`` (:mod:`urst_dask.io.stylecache`)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    base = os.environ.get("URST_DASK_CACHE")
    if base:
        return Path(base)
    return Path(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")) / "urst-dask"
