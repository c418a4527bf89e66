"""16-bit PNG decoding that keeps 16 bits.

Pillow decodes 16-bit RGB, RGBA and gray+alpha PNGs to 8 bits per sample, silently.  For
PNGs whose header says 16 bits per sample, :func:`decode_png16` decodes with ``imagecodecs``
(libpng) instead, to uint16, and then does what the 8-bit path does: the orientation
(``eXIf`` chunk, EXIF text or XMP, as Pillow reads it) is applied and gray+alpha becomes RGBA (gray repeated).  A ``tRNS`` colour
key is ignored, as for 8-bit gray/RGB PNGs.  Other PNGs keep going through Pillow.

:func:`read_png_header` reads only the chunk headers (``IHDR``, ``eXIf``, the XMP and EXIF text chunks), seeking over the
image data, so it costs a few reads whatever the file's size.  It also sums the ``IDAT``
lengths: a header that claims more pixels than its compressed data could inflate to
(:meth:`PngHeader.cannot_hold_its_pixels`) is a truncated or forged file, refused before
anything is allocated.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from ..errors import InputImageError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFLATE_MAX_RATIO = 1100  # deflate inflates at most ~1032:1 (zlib on zeros: 1029:1), with slack


@dataclass(frozen=True)
class PngHeader:
    """What the chunk headers of a PNG say (nothing decoded)."""

    width: int
    height: int
    depth: int  # bits per sample: 1, 2, 4, 8 or 16
    color_type: int  # 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA
    interlaced: bool  # Adam7
    orientation: int = 1  # EXIF orientation 1-8 from the eXIf chunk (1: as stored)
    idat_bytes: int = 0  # compressed image data: the IDAT chunks' lengths, summed

    @property
    def pixel_bytes(self) -> int:
        """Bytes of pixel data the header claims (filter bytes and interlacing not counted)."""
        samples = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(self.color_type, 4)
        return self.height * -(-self.width * samples * self.depth // 8)

    def cannot_hold_its_pixels(self) -> bool:
        """True when the compressed data is too small to inflate to the claimed pixels even at
        deflate's best ratio (:data:`DEFLATE_MAX_RATIO`): a truncated or forged file, such as a
        decompression bomb's header over a few bytes."""
        return self.pixel_bytes > DEFLATE_MAX_RATIO * self.idat_bytes + (64 << 10)


def _exif_orientation(data: bytes) -> int:
    from PIL import Image

    exif = Image.Exif()
    try:
        exif.load(data)
        value = int(exif.get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a broken eXIf chunk is ignored, as Pillow's PNG reader does
        return 1
    return value if 1 <= value <= 8 else 1


TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
XMP_KEY, RAW_EXIF_KEY = b"XML:com.adobe.xmp", b"Raw profile type exif"
_XMP_ORIENTATION = re.compile(rb"tiff:Orientation(?:=\"|>)\s*([1-8])")


def _text_value(tag: bytes, body: bytes) -> tuple[bytes, bytes]:
    """(keyword, text) of a tEXt, zTXt or iTXt chunk (compressed text inflated; b"" if broken)."""
    key, _, rest = body.partition(b"\0")
    try:
        if tag == b"zTXt":
            return key, zlib.decompress(rest[1:])
        if tag == b"iTXt":
            compressed, rest = rest[0], rest[2:]
            rest = rest.split(b"\0", 2)[-1]  # past the language tag and the translated keyword
            return key, zlib.decompress(rest) if compressed else rest
    except (zlib.error, IndexError):
        return key, b""
    return key, rest


def _text_orientation(key: bytes, text: bytes) -> int | None:
    """The orientation an XMP packet or ImageMagick's hex "Raw profile type exif" gives."""
    if key == XMP_KEY:
        m = _XMP_ORIENTATION.search(text)
        return int(m.group(1)) if m else None
    try:  # "\nexif\n<length>\n<hex lines>": the EXIF block, with or without its "Exif\0\0" header
        data = bytes.fromhex("".join(t.decode("ascii") for t in text.split(b"\n")[3:]))
    except (ValueError, UnicodeDecodeError):
        return None
    return _exif_orientation(data[6:] if data.startswith(b"Exif\0\0") else data)


def read_png_header(path: str | os.PathLike[str]) -> PngHeader | None:
    """The header of a PNG file, or ``None`` if ``path`` is not a PNG (no signature, or no
    readable ``IHDR``).  Reads chunk headers up to ``IEND``, seeking over ``IDAT`` data.  The
    orientation is Pillow's: the ``eXIf`` chunk, else ImageMagick's "Raw profile type exif"
    text, else an XMP packet's ``tiff:Orientation``."""
    with open(path, "rb") as fh:
        if fh.read(8) != SIGNATURE:
            return None
        ihdr, found, idat = None, {}, 0
        while True:
            head = fh.read(8)
            if len(head) < 8:
                break
            length, tag = struct.unpack(">I4s", head)
            if tag in (b"IHDR", b"eXIf", *TEXT_CHUNKS):
                body = fh.read(length)
                fh.seek(4, os.SEEK_CUR)
                if tag == b"IHDR" and len(body) == 13:
                    ihdr = struct.unpack(">IIBBBBB", body)
                elif tag == b"eXIf":
                    found["exif"] = _exif_orientation(body)
                elif body.startswith((XMP_KEY + b"\0", RAW_EXIF_KEY + b"\0")):
                    key, text = _text_value(tag, body)
                    value = _text_orientation(key, text)
                    if value is not None:
                        found[key.decode()] = value
            elif tag == b"IEND":
                break
            else:
                idat += length if tag == b"IDAT" else 0
                fh.seek(length + 4, os.SEEK_CUR)
    if ihdr is None:
        return None
    width, height, depth, color_type, _, _, interlace = ihdr
    orientation = next((found[k] for k in ("exif", RAW_EXIF_KEY.decode(), XMP_KEY.decode()) if k in found), 1)
    return PngHeader(width, height, depth, color_type, bool(interlace), orientation, idat)


def orient(image: np.ndarray, orientation: int) -> np.ndarray:
    """(H, W, C) as displayed for an EXIF ``orientation`` (1-8), like Pillow's
    ``ImageOps.exif_transpose``; a view where numpy allows."""
    steps = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],  # mirrored left-right
        3: lambda a: a[::-1, ::-1],  # rotated 180
        4: lambda a: a[::-1],  # mirrored top-bottom
        5: lambda a: a.transpose(1, 0, 2),  # transposed
        6: lambda a: np.rot90(a, -1),  # rotated 90 clockwise to display
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # transversed
        8: lambda a: np.rot90(a, 1),  # rotated 90 counter-clockwise to display
    }
    return steps.get(orientation, steps[1])(image)


def decode_png16(path: str | os.PathLike[str], header: PngHeader, where: str) -> np.ndarray:
    """Decode a 16-bit PNG to an (H, W, C) uint16 array, C = 1 (gray), 3 (RGB) or 4 (RGBA;
    gray+alpha becomes RGBA with the gray repeated), EXIF orientation applied.  Decoded whole, in memory (as Pillow does); every failure is an
    :class:`InputImageError` naming ``where``."""
    import imagecodecs

    if header.depth != 16:
        raise InputImageError(f"{where}: {header.depth}-bit PNG given to the 16-bit decoder")
    try:
        with open(path, "rb") as fh:
            pixels = imagecodecs.png_decode(fh.read())
    except Exception as exc:  # noqa: BLE001 - libpng reports corrupt data with several types
        raise InputImageError(f"{where}: not a readable 16-bit PNG ({type(exc).__name__}: {exc})") from exc
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.dtype != np.uint16 or pixels.shape[:2] != (header.height, header.width):
        raise InputImageError(f"{where}: 16-bit PNG of {header.width} x {header.height} decoded as "
                              f"{pixels.dtype} {pixels.shape}")
    if pixels.shape[2] == 2:  # gray + alpha
        pixels = pixels[..., [0, 0, 0, 1]]
    return orient(pixels, header.orientation)
