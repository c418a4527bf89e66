"""Where a run keeps its scratch data (the decoded copies of PNG/JPEG inputs), and how a
leftover is cleaned up.

A run's scratch folder is ``<root>/run-<host>-<pid>-<token>``, where ``<root>`` is, in
order: the folder given (``--scratch DIR``, ``stylize(scratch=...)``), ``$URST_DASK_SCRATCH``,
or ``<output>.scratch`` beside the output store.  Scratch data is always local: for an output
at a URL (s3://, gs://, memory://) the last fallback is ``<system temp>/urst-dask-scratch``.
The run folder is made when the first image is decoded into it and removed when the run
ends: at the end of ``stylize``, and at interpreter exit (``atexit``: Ctrl-C, and SIGTERM,
which the CLI turns into the same interrupt).  The root is removed when it is left empty, if
urst-dask made it (a folder of yours given as the root is never removed).  A run killed outright (``kill -9``,
a power cut) leaves its folder; the next run with the same root removes every run folder
of this host whose process is gone (:func:`clean_stale`).  Folders of other hosts cannot be
checked and are left alone.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import OutputError
from .lock import pid_alive, reused_since
from .remote import as_remote

ENV_VAR = "URST_DASK_SCRATCH"
REMOTE_ROOT = "urst-dask-scratch"  # under the system's temporary folder, for outputs at a URL
SUFFIX = ".scratch"
PREFIX = "run-"
MADE_HERE = ".made-by-urst-dask"  # in a root urst-dask created: only such a root is removed when empty


def scratch_root(output: str | os.PathLike[str], given: str | os.PathLike[str] | None = None) -> Path:
    """The scratch root of a run writing ``output``: ``given``, else ``$URST_DASK_SCRATCH``,
    else ``<output>.scratch`` beside the resolved output path (for an output at a URL:
    ``<system temp>/urst-dask-scratch``).  Nothing is created."""
    if given is not None and str(given):
        return Path(given).resolve()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).resolve()
    if as_remote(output) is not None:
        return Path(tempfile.gettempdir()).resolve() / REMOTE_ROOT
    p = Path(output).resolve()
    return p.with_name(p.name + SUFFIX)


def run_dir(root: Path) -> Path:
    """A new run folder's path under ``root`` (not created): ``run-<host>-<pid>-<token>``."""
    return root / f"{PREFIX}{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


def owner(folder: Path) -> tuple[str, int] | None:
    """(host, pid) of the run that made ``folder``, from its name; ``None`` if the name is not
    a run folder's."""
    name = folder.name
    if not name.startswith(PREFIX):
        return None
    parts = name[len(PREFIX):].rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def clean_stale(root: Path) -> list[Path]:
    """Remove the run folders under ``root`` left by processes of this host that are gone,
    and ``root`` itself if that leaves it empty; return the folders removed."""
    if not root.is_dir():
        return []
    host, removed = socket.gethostname(), []
    for folder in sorted(root.iterdir()):
        who = owner(folder)
        if folder.is_dir() and who is not None and who[0] == host and _gone(who[1], folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    _remove_if_empty(root)
    return removed


def _gone(pid: int, folder: Path) -> bool:
    """Whether the run that made ``folder`` is gone: no process ``pid``, or one that started
    after the folder was last changed (the pid was reused: a reboot, a restarted container,
    this very process)."""
    if not pid_alive(pid):
        return True
    try:
        return reused_since(pid, folder.stat().st_mtime)
    except OSError:
        return False


def _remove_if_empty(root: Path) -> None:
    """Remove ``root`` if urst-dask made it (it holds the marker) and nothing else is in it."""
    try:
        if {p.name for p in root.iterdir()} != {MADE_HERE}:
            return
        (root / MADE_HERE).unlink()
        root.rmdir()
    except OSError:  # already gone, or another run's folder appeared meanwhile
        pass


def remove(folder: Path) -> None:
    """Remove a run folder and its root if that leaves the root empty (idempotent)."""
    shutil.rmtree(folder, ignore_errors=True)
    _remove_if_empty(folder.parent)


def make(folder: Path) -> Path:
    """Create the run folder ``folder`` and its root (the root's parent must exist: a missing
    output folder is not created here); return it.  Failures are :class:`OutputError`."""
    root = folder.parent
    try:
        if not root.is_dir():
            root.mkdir(exist_ok=True)
            (root / MADE_HERE).touch()
        folder.mkdir(exist_ok=True)
    except FileNotFoundError:
        raise OutputError(f"scratch={str(root)!r}: folder {str(root.parent)!r} does not exist") from None
    except OSError as exc:
        raise OutputError(f"scratch={str(root)!r}: cannot create the scratch folder ({exc.strerror}); pass "
                          f"--scratch DIR or set {ENV_VAR}") from None
    return folder


def start(output: str | os.PathLike[str], given: str | os.PathLike[str] | None = None) -> Path:
    """The scratch folder of a new run writing ``output`` (not created yet): stale folders of
    dead runs under the same root are removed first, and the new folder is removed at
    interpreter exit whatever happens (call :func:`remove` to remove it sooner)."""
    root = scratch_root(output, given)
    beside = not (given is not None and str(given)) and not os.environ.get(ENV_VAR) and as_remote(output) is None
    if beside and not root.parent.is_dir():
        # the default root sits beside the output: name the output's missing folder, not a scratch the user never chose
        raise OutputError(f"output={str(output)!r}: folder {str(root.parent)!r} does not exist")
    clean_stale(root)
    folder = run_dir(root)
    atexit.register(remove, folder)
    return folder


@contextlib.contextmanager
def removed(folder: Path) -> Iterator[Path]:
    """Remove the run folder ``folder`` (see :func:`remove`) when the body ends, also on error."""
    try:
        yield folder
    finally:
        remove(folder)


@contextlib.contextmanager
def beside(target: Path, purpose: str) -> Iterator[Path]:
    """A hidden scratch folder next to ``target`` (``.<name>.<purpose>-XXXX``: on the same disk,
    so what is written there costs the space the output would), removed when the body ends."""
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.{purpose}-", dir=target.parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def zarr_array(folder: Path, name: str, shape: tuple[int, ...], dtype: np.dtype, chunks: tuple[int, ...]) -> Any:
    """A new zero-filled Zarr array ``folder/name`` for intermediate results (a TIFF export's
    reduced levels), to be filled with :func:`dask.array.store` and read back lazily."""
    import zarr

    return zarr.create_array(str(folder / name), shape=shape, dtype=dtype, fill_value=0, chunks=chunks)
