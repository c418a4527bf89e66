"""The disk side of the OpenVINO backend (:mod:`urst_dask.engine.backends`): converted networks
kept under ``<cache>/openvino`` (see :mod:`.cachedir`), and the digest of the source files
that define a network (a network converted by other code is converted again)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import threading
from pathlib import Path
from typing import Any

from .cachedir import cache_root


def folder() -> Path:
    """Converted OpenVINO networks and compiled blobs: ``$URST_DASK_CACHE/openvino``, default
    ``$XDG_CACHE_HOME/urst-dask/openvino`` (``~/.cache/urst-dask/openvino``)."""
    return cache_root() / "openvino"


@functools.lru_cache(maxsize=16)
def files_digest(files: tuple[str, ...], salt: str) -> str:
    """A short sha256 of ``salt`` and the bytes of ``files`` (an unreadable one counts as empty)."""
    h = hashlib.sha256(salt.encode())
    for f in files:
        with contextlib.suppress(OSError):
            h.update(Path(f).read_bytes())
    return h.hexdigest()[:16]


def read(key: str, ov: Any) -> Any | None:
    """The network kept under ``key`` (``ov``: the openvino module), or ``None`` when there is
    none or it cannot be read (a damaged entry is converted again)."""
    path = folder() / f"{key}.xml"
    if not (path.exists() and path.with_suffix(".bin").exists()):
        return None
    try:
        return ov.Core().read_model(str(path))
    except Exception:  # noqa: BLE001 - whatever OpenVINO raises for a damaged file
        return None


def write(key: str, ov: Any, model: Any) -> None:
    """Keep ``model`` under ``key``: its ``.xml`` and ``.bin`` are written under a temporary
    name and moved into place whole.  A read-only or full cache only costs the next run a
    conversion."""
    path = folder() / f"{key}.xml"
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.xml")
        ov.save_model(model, str(tmp), compress_to_fp16=False)
        os.replace(tmp.with_suffix(".bin"), path.with_suffix(".bin"))
        os.replace(tmp, path)
