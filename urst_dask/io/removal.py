"""Deleting an old store so that an interruption never leaves it looking complete.

``shutil.rmtree`` deletes in directory order, so a Ctrl-C or kill during the delete of an
``--overwrite`` could leave the ``zarr.json`` that holds the completion marker with chunks gone
around it: a store that reads as complete, and a rerun that says there is nothing to do.  The
old store is renamed aside first (atomic), as ``.<name>.removing-<pid>-<token>``, then deleted;
a rerun, holding the output's lock, removes what a killed delete left.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
from pathlib import Path

REMOVING = ".removing-"


def remove_aside(p: Path) -> None:
    """Delete the store (a folder) at ``p``: renamed aside, then removed; where it cannot be
    renamed (another file system below it...), its root ``zarr.json`` goes first."""
    aside = p.with_name(f".{p.name}{REMOVING}{os.getpid()}-{secrets.token_hex(4)}")
    try:
        os.rename(p, aside)
    except OSError:
        (p / "zarr.json").unlink(missing_ok=True)
        aside = p
    _remove(aside)


def _remove(p: Path, ignore_errors: bool = False) -> None:
    """Remove ``p``, a folder or a file."""
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=ignore_errors)
    elif ignore_errors:
        p.unlink(missing_ok=True)
    else:
        p.unlink()


def clear_leftovers(p: Path) -> None:
    """Remove what killed deletes of the store at ``p`` left beside it (call holding the
    output's lock: no other run can be deleting it now)."""
    for left in p.parent.glob(f".{glob.escape(p.name)}{REMOVING}*"):
        _remove(left, ignore_errors=True)
