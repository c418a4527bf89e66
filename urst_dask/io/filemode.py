"""File modes of what urst-dask writes through temporary files."""

from __future__ import annotations

import os


def as_umask_allows(path: str | os.PathLike[str]) -> None:
    """Give a file made by ``tempfile.mkstemp`` (always 0600) the mode a plain ``open`` would:
    0666 less the umask, so weights fetched into a shared folder are readable by its users."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)
