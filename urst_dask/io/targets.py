"""Checks of output paths made before any work: the folder that will hold an output, an output
that is (or contains, or lies inside) the content image, and an export target.

No torch here (tests/pipeline/test_early_cluster.py checks it): the command line checks ``stylize
--export`` with these before it starts the cluster and imports the network code, so a bad
target is refused in a moment.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from ..errors import OutputError, ParameterError
from . import remote, remote_store
from .readers.peek import image_pixels
from .remote import as_remote
from .writers import check_raster_holds

EXPORT_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
PICTURE_SUFFIXES = (*EXPORT_SUFFIXES, ".gif", ".bmp", ".webp")  # single pictures: never a store's or folder's name


def check_not_picture(out: str | os.PathLike[str], writes: str) -> None:
    """Refuse an output named like a picture (``-o out.png``) where the run ``writes`` a folder:
    it made a directory called out.png, silently."""
    if remote.is_url(out):
        return
    suffix = Path(out).suffix.lower()
    if suffix in PICTURE_SUFFIXES:
        raise OutputError(f"output={str(out)!r}: named like a picture ({suffix}), but this run writes {writes}")


def check_folder(p: Path, given: str, arg: str = "output") -> None:
    """The folder that will hold the output ``p`` exists and is writable (``given``: the
    path as the user wrote it, and ``arg`` its option, for the message).  Exports are local
    files: a URL is refused."""
    if remote.is_url(given):
        raise OutputError(f"{arg}={given!r}: exports are written to local files; export to a local path and copy "
                          "it (the store itself may be at a URL)")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{arg}={given!r}: folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{arg}={given!r}: folder {str(parent)!r} is not writable")


def check_not_input(output: str | os.PathLike[str], content: str | os.PathLike[str]) -> None:
    """Refuse an output that is the content image, contains it or lies inside it.

    Paths are compared resolved (symlinks followed, so ``-o`` being a link to the input is
    caught) and, where both exist, by device and inode (hard links).  Called before anything
    is written: ``--overwrite`` deletes the old store first, and the content is read lazily
    afterwards, so such a run would destroy its own input.  ``"<array>"`` (in-memory input)
    is never refused.
    """
    if str(content) == "<array>":
        return
    out_r, in_r = as_remote(output), as_remote(content)
    if out_r is not None or in_r is not None:
        remote_store.check_not_input(output, content, out_r, in_r)
        return
    out_p, in_p = Path(output).resolve(), Path(content).resolve()
    same = out_p == in_p or (out_p.exists() and in_p.exists() and os.path.samefile(out_p, in_p))
    if same:
        how = "is the content image"
    elif out_p in in_p.parents:
        how = "contains the content image"
    elif in_p in out_p.parents:
        how = "is inside the content image"
    else:
        return
    raise OutputError(f"output={str(output)!r}: {how} {str(content)!r} (resolved: {str(in_p)!r}); writing there "
                      "would destroy the input before it is read: choose an output path outside the input")


def check_export_target(out: str | os.PathLike[str], *, overwrite: bool = False,
                        content: str | os.PathLike[str] | None = None, axes: str | None = None,
                        arg: str = "output", store: str | os.PathLike[str] | None = None) -> Path:
    """Refuse an export target before any work is done (``stylize --export`` checks it before
    the run): an unknown suffix, a directory (``overwrite`` replaces files only), an existing
    file without ``overwrite``, a missing or unwritable folder, and the ``content`` image
    itself (or a path inside it), which ``overwrite`` would destroy.  With ``content`` (read
    with ``axes``), a PNG or JPEG target must also hold the run's output, which keeps the
    content's channels and dtype: a JPEG of an RGBA or 16-bit image is refused now, from the
    content's header, not after the run.  ``arg`` names the option in messages (``"export"``
    for ``stylize --export``); ``store`` (the run's output store, with ``stylize --export``)
    adds to the refusal of an existing file how to write the picture alone again."""
    p = Path(out)
    suffix = p.suffix.lower()
    if not str(out):
        raise ParameterError(f"{arg}='': an empty path; give a file name ending .png, .jpg or .tif")
    if p.is_dir():
        raise OutputError(f"{arg}={str(out)!r}: is a directory; --overwrite replaces files only: give a file "
                          f"name, e.g. {str(p / ('image' + (suffix or '.png')))!r}, or remove the directory")
    if suffix not in EXPORT_SUFFIXES:
        raise ParameterError(f"{arg}={str(out)!r}: unknown format {suffix!r}; use .png, .jpg or .tif")
    if content is not None:
        check_not_input(out, content)
    if p.exists() and not overwrite:
        options = " with this run's --storage-options" if store is not None and remote.is_url(store) else ""
        alone = ("" if store is None else
                 f" (and the store, which the run then computes again), or write the picture alone again from a "
                 f"finished store: urst-dask export {shlex.quote(str(store))} {shlex.quote(str(out))} --overwrite"
                 f"{options}")
        raise OutputError(f"{arg}={str(out)!r}: already exists; pass --overwrite to replace it{alone}")
    check_folder(p, str(out), arg)
    if content is not None and suffix not in (".tif", ".tiff"):
        pixels = image_pixels(content, "content", axes=axes)
        if pixels is not None:
            check_raster_holds(out, *pixels, arg=arg)
    return p
