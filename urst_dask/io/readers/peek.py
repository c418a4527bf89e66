"""What an image will be once opened, (H, W, C) and dtype, read from its header alone.

For checks that must come before a run, such as whether ``stylize --export x.jpg`` can hold
the result (the output keeps the input's channels and dtype): a PNG/JPEG is decoded only by
the run, so its header is read here with Pillow (lazily: no pixels) and, for a 16-bit PNG, with
:func:`..png.read_png_header`.  TIFF and Zarr open lazily anyway, so they go through
:func:`~urst_dask.io.readers.open_image` itself.  The answer agrees with what the readers give
(tests/io/test_peek.py compares the two for every Pillow mode they take).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...errors import InputImageError
from .. import png, remote
from .source import where_of

# Pillow mode -> channels and dtype after raster._normalise_mode and raster._band
_MODE_PIXELS: dict[str, tuple[int, str]] = {
    "1": (1, "uint8"), "L": (1, "uint8"),
    "PA": (4, "uint8"), "LA": (4, "uint8"), "La": (4, "uint8"), "RGBa": (4, "uint8"), "RGBA": (4, "uint8"),
    "RGB": (3, "uint8"), "RGBX": (3, "uint8"), "CMYK": (3, "uint8"), "YCbCr": (3, "uint8"), "LAB": (3, "uint8"),
    "HSV": (3, "uint8"),
    "I": (1, "uint16"), "F": (1, "float32"),
}
_PNG16_CHANNELS = {0: 1, 2: 3, 4: 4, 6: 4}  # colour type -> channels (gray+alpha becomes RGBA)
_TRANSPOSED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def _raster_pixels(path: Path, where: str) -> tuple[tuple[int, int, int], np.dtype] | None:
    from PIL import Image, UnidentifiedImageError

    head = png.read_png_header(path)
    if head is not None and head.depth == 16:
        channels = _PNG16_CHANNELS.get(head.color_type)
        if channels is None:
            return None
        h, w = (head.width, head.height) if head.orientation in _TRANSPOSED else (head.height, head.width)
        return (h, w, channels), np.dtype("uint16")
    from .raster import _PIL_LOCK

    # no pixel limit for a header (it allocates nothing): the run applies it, with its flag.  The
    # limit is Pillow's global: set under the reader's lock, as the reader sets it
    with _PIL_LOCK:
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(path) as im:  # the header only: no pixels decoded
                mode, info, (w, h) = im.mode, dict(im.info), im.size
                orientation = int(im.getexif().get(0x0112, 1) or 1)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise InputImageError(f"{where}: not a readable image ({exc})") from exc
        finally:
            Image.MAX_IMAGE_PIXELS = limit
    if mode == "P":
        pixels: tuple[int, str] | None = (4 if "transparency" in info else 3, "uint8")
    elif mode.startswith("I;16"):
        pixels = (1, "uint16")
    else:
        pixels = _MODE_PIXELS.get(mode)
    if pixels is None:  # a mode the reader refuses: the run says so
        return None
    if orientation in _TRANSPOSED:
        h, w = w, h
    return (h, w, pixels[0]), np.dtype(pixels[1])


def image_pixels(path: str | os.PathLike[str], arg: str = "content", *,
                 axes: str | None = None) -> tuple[tuple[int, int, int], np.dtype] | None:
    """The (H, W, C) shape and dtype that :func:`~urst_dask.io.readers.open_image` will give
    for ``path``, without decoding a PNG/JPEG; ``None`` when only the run can tell (a Pillow
    mode the reader refuses, an unusual PNG, and a URL, whose storage options the run has).
    Pillow's decompression-bomb limit is the run's to apply, with its flag.  A file that cannot
    be opened at all raises :class:`InputImageError`, as the run would."""
    from . import _reader_for, open_image

    if remote.is_url(path):
        return None
    p = Path(path)
    if p.is_file() and _reader_for(p, where_of(path, arg)).name == "raster":
        return _raster_pixels(p, where_of(path, arg))
    src = open_image(path, arg, axes=axes)  # TIFF and Zarr: lazy, no pixels read; errors as the run's
    h, w, c = (int(n) for n in src.shape)
    return (h, w, c), np.dtype(src.array.dtype)
