"""Folders of training images: listing them and decoding one image into memory.

Training reads many small pictures (photographs, paintings) whole, not one huge image in
chunks, so this sits beside the lazy readers: :func:`list_images` checks a folder once (every
file must be an image Pillow can identify), :func:`read_rgb` decodes one file to an
(H, W, 3) uint8 array with Pillow's decompression-bomb limit kept.  Errors are one-line
:class:`~urst_dask.errors.InputImageError`\\ s naming the argument and the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")


def _identify(path: Path, arg: str) -> None:
    """Raise unless Pillow recognises ``path`` as an image (reads the header only) and, for a
    JPEG or PNG, the file ends as a whole one does."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.size  # noqa: B018 - the header is parsed on open
            fmt = im.format
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputImageError(f"{arg}={str(path)!r}: not an image ({' '.join(str(exc).split())[:160]})") from exc
    end = _END_MARKERS.get(fmt or "")
    if end is not None and end not in _tail(path):
        raise InputImageError(f"{arg}={str(path)!r}: a truncated {fmt} (its end marker is missing); training "
                              "would stop when it is drawn")


# The marker a whole file ends with: a truncated copy (an interrupted download) lacks it.  A
# check of the file's end instead of a decode of every image of a large folder at the start.
_END_MARKERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND"}
_TAIL_BYTES = 64 << 10  # cameras may append a few kB after a JPEG's end marker


def _tail(path: Path) -> bytes:
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - _TAIL_BYTES))
        return f.read()


def list_images(path: str | os.PathLike[str], arg: str) -> list[Path]:
    """The image files of a folder (sorted; hidden files skipped), or ``[path]`` for one file.

    Raises :class:`InputImageError` for a missing path, an empty folder, or any file in it
    that is not an image (by suffix, then by Pillow identifying its header).
    """
    p = Path(path)
    if not p.exists():
        raise InputImageError(f"{arg}={str(path)!r}: no such file or directory")
    if p.is_file():
        files = [p]
    else:
        files = sorted(f for f in p.iterdir() if not f.name.startswith("."))
        if not files:
            raise InputImageError(f"{arg}={str(path)!r}: the folder is empty; it must hold image files")
    for f in files:
        if f.is_dir():
            raise InputImageError(f"{arg}={str(f)!r}: a folder inside the image folder (subfolders are not read)")
        if f.suffix.lower() not in IMAGE_SUFFIXES:
            raise InputImageError(f"{arg}={str(f)!r}: not an image file (suffix {f.suffix or 'none'!r}; "
                                  f"expected one of {', '.join(IMAGE_SUFFIXES)})")
        _identify(f, arg)
    return files


def read_rgb(path: str | os.PathLike[str], arg: str) -> np.ndarray:
    """Decode one image file whole as (H, W, 3) uint8 RGB (EXIF orientation applied; gray
    repeated; alpha dropped).  Pillow's decompression-bomb limit applies."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            im.load()
            oriented = ImageOps.exif_transpose(im)
            rgb = np.asarray(oriented.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InputImageError(f"{arg}={str(path)!r}: cannot be decoded ({' '.join(str(exc).split())[:160]})") from exc
    if rgb.ndim != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise InputImageError(f"{arg}={str(path)!r}: empty image")
    return rgb
