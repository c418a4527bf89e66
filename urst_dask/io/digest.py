"""The sha256 of a file, read in 1 MiB blocks (weights checks, style files, training checkpoint records)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: Path) -> str:
    """Hex sha256 of the file at ``path``, never holding more than 1 MiB of it in memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_if_file(path: Path) -> str | None:
    """:func:`sha256_file` of ``path`` when it is a regular file, else ``None`` (a URL, a Zarr
    folder: a style read from those is identified by its pixels)."""
    return sha256_file(path) if path.is_file() else None
