"""What a TIFF's stored samples mean: its photometric interpretation and its Orientation tag.

tifffile hands back the samples as stored.  A photograph viewer (and Pillow, which reads the
PNG/JPEG inputs) shows them interpreted: white-is-zero grey inverted, palette indices looked
up in the colour map, and the image turned as its Orientation tag says.  These functions do
the same lazily, on the Dask arrays of every pyramid level, so a TIFF stylizes the picture a
viewer shows.  Interpretations that need colour management (CMYK, CIE L*a*b*) or decoding
tifffile does not do (uncompressed YCbCr) are refused with a one-line error.  An associated
(premultiplied) alpha sample is divided out, so the colours are the straight ones a PNG holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np

from ...errors import InputImageError
from . import icc as icc_module

# tifffile.PHOTOMETRIC values
MINISWHITE, MINISBLACK, RGB, PALETTE, SEPARATED, YCBCR = 0, 1, 2, 3, 5, 6
GREY_ALPHA = -1  # min-is-black with one extra (alpha) sample: shown as RGBA, as a grey+alpha PNG is
JPEG_COMPRESSIONS = {6, 7}  # tifffile decodes these YCbCr tiles to RGB
SUPPORTED = "grey (min-is-black or min-is-white; grey+alpha), RGB(A), palette, or JPEG-compressed YCbCr"


def check_photometric(page: Any, where: str) -> int:
    """The page's photometric interpretation, refused unless this module can show it."""
    photometric = int(page.photometric)
    if photometric in (MINISWHITE, MINISBLACK) and int(page.samplesperpixel) == 2 and len(page.extrasamples) == 1:
        if photometric == MINISWHITE:
            raise InputImageError(f"{where}: min-is-white TIFF with an alpha sample; supported: {SUPPORTED}")
        return GREY_ALPHA
    if photometric in (MINISWHITE, MINISBLACK, RGB, PALETTE):
        return photometric
    if photometric == YCBCR and int(page.compression) in JPEG_COMPRESSIONS:
        return RGB
    name = getattr(page.photometric, "name", str(photometric))
    hint = " (a print-ready CMYK file: convert it to RGB first, with its ICC profile)" if photometric == SEPARATED else ""
    raise InputImageError(f"{where}: TIFF photometric interpretation {name}{hint}; supported: {SUPPORTED}")


def premultiplied(page: Any) -> bool:
    """Whether the page's alpha sample is associated (ExtraSamples 1: the colours are premultiplied)."""
    extra = tuple(int(e) for e in page.extrasamples)
    return int(page.samplesperpixel) in (2, 4) and len(extra) == 1 and extra[0] == 1


def _unpremultiply(block: np.ndarray, axis: int) -> np.ndarray:
    """Colours divided by their alpha (the last sample along ``axis``), rounded and clipped to
    the dtype; where alpha is 0 the colours are 0."""
    alpha = np.take(block, [-1], axis=axis).astype(np.float64)
    colour = np.take(block, range(block.shape[axis] - 1), axis=axis).astype(np.float64)
    full = float(np.iinfo(block.dtype).max) if block.dtype.kind in "ui" else 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        straight = np.where(alpha > 0, colour * full / alpha, 0.0)
    if block.dtype.kind in "ui":
        straight = np.clip(np.rint(straight), 0, full)
    else:
        straight = np.minimum(straight, full)
    return np.concatenate([straight.astype(block.dtype), np.take(block, [-1], axis=axis)], axis=axis)


def _lookup(block: np.ndarray, table: np.ndarray) -> np.ndarray:
    return table[block]


@dataclass(frozen=True)
class TiffView:
    """How a TIFF's stored samples become the picture: ``view(arr)`` for a Dask array of a
    level (lazily) or a NumPy array read whole (a style), in the stored layout ``axes``."""

    photometric: int
    colormap: np.ndarray | None  # (3, entries) uint16, for a palette image
    orientation: int  # the Orientation tag, 1-8
    premultiplied: bool = False  # the alpha sample is associated: colours are divided by it
    icc: bytes | None = None  # an 8-bit RGB(A) image's colour profile, other than sRGB: converted to sRGB

    @property
    def identity(self) -> bool:
        return self.photometric in (MINISBLACK, RGB) and self.orientation not in range(2, 9) \
            and not self.premultiplied and self.icc is None

    def axes(self, stored: str) -> str:
        """The axes of the picture: a palette image gains its RGB samples last."""
        return stored + "S" if self.photometric == PALETTE else stored

    def __call__(self, arr: Any, axes: str, where: str) -> Any:
        if self.premultiplied and "S" in axes:
            arr = _straight_alpha(arr, axes.index("S"), where)
        if self.photometric == GREY_ALPHA:  # grey repeated into RGB, the alpha kept: RGBA
            arr = np.take(arr, [0, 0, 0, 1], axis=axes.index("S")) if "S" in axes else arr
        arr = orient(interpret(arr, self.photometric, self.colormap, where), self.axes(axes), self.orientation)
        return arr if self.icc is None else _to_srgb(arr, self.axes(axes).index("S"), self.icc)


def view_of(page: Any, where: str) -> TiffView:
    """How the samples of ``page`` (a series' key frame) become the picture; refuses what this
    module cannot show, and a reduced-resolution first image (a camera raw file's preview)."""
    if page.is_reduced:  # NewSubfileType bit 0: a preview, the real image elsewhere
        raw = " (a camera raw file: develop it to a TIFF first)" if 50706 in page.tags else ""  # DNGVersion
        raise InputImageError(f"{where}: its first image is a reduced-resolution preview "
                              f"({page.shape[1]} x {page.shape[0]}), not the picture{raw}")
    photometric = check_photometric(page, where)
    tag, profile = page.tags.get(274), page.tags.get(34675)  # Orientation, InterColorProfile
    colormap = None if page.colormap is None else np.array(page.colormap)
    icc = bytes(profile.value) if profile is not None else None
    if icc is not None:
        eight_bit = np.dtype(page.dtype) == np.uint8 and (
            (photometric == RGB and int(page.samplesperpixel) in (3, 4))
            or (photometric == PALETTE and colormap is not None and bool(np.all(colormap % 257 == 0))))
        if not (eight_bit and icc_module.describe(icc)[0] == "rgb"):
            what = (("8-bit" if eight_bit else "16-bit") + " palette" if photometric == PALETTE
                    else f"{np.dtype(page.dtype)} x {int(page.samplesperpixel)}")
            icc_module.unconverted(icc, what, where)  # silent for sRGB and grey profiles
            icc = None
    return TiffView(photometric, colormap, int(tag.value) if tag is not None else 1, premultiplied(page), icc)


def _to_srgb(arr: Any, axis: int, icc: bytes) -> Any:
    """``arr``'s colours (samples along ``axis``, whole in every block) converted to sRGB."""
    def convert(block: np.ndarray) -> np.ndarray:
        return np.moveaxis(icc_module.block_to_srgb(np.moveaxis(block, axis, -1), icc), -1, axis)

    if isinstance(arr, da.Array):
        return arr.rechunk({axis: -1}).map_blocks(convert, dtype=arr.dtype)
    return convert(np.asarray(arr))


def _straight_alpha(arr: Any, axis: int, where: str) -> Any:
    if arr.dtype.kind not in "uif":
        raise InputImageError(f"{where}: premultiplied-alpha TIFF of dtype {arr.dtype}; supported: integers or floats")
    if isinstance(arr, da.Array):
        return arr.map_blocks(_unpremultiply, axis, dtype=arr.dtype)
    return _unpremultiply(np.asarray(arr), axis)


def interpret(arr: Any, photometric: int, colormap: np.ndarray | None, where: str) -> Any:
    """``arr`` (as stored; Dask or NumPy) as the picture: inverted for min-is-white, an
    (..., 3) RGB array for a palette image (8-bit when the map holds 8-bit values scaled by
    257, else 16-bit)."""
    if photometric == MINISWHITE:
        if arr.dtype.kind != "u":
            raise InputImageError(f"{where}: min-is-white TIFF of dtype {arr.dtype}; supported: unsigned integers")
        return np.iinfo(arr.dtype).max - arr
    if photometric == PALETTE:
        if colormap is None or arr.dtype.kind != "u":
            raise InputImageError(f"{where}: palette TIFF without a usable colour map (dtype {arr.dtype})")
        table = np.ascontiguousarray(np.asarray(colormap).T)  # (entries, 3) uint16
        if np.all(table % 257 == 0):
            table = (table // 257).astype(np.uint8)
        if isinstance(arr, da.Array):
            return arr.map_blocks(_lookup, table, dtype=table.dtype, new_axis=arr.ndim, chunks=(*arr.chunks, (3,)))
        return _lookup(np.asarray(arr), table)
    return arr


def orient(arr: Any, axes: str, orientation: int) -> Any:
    """``arr`` turned as the TIFF/EXIF Orientation tag says (1-8; as Pillow's
    ``ImageOps.exif_transpose``).  ``axes`` names ``arr``'s dimensions (``Y`` and ``X`` among
    them); orientations 5-8 swap Y and X."""
    if orientation not in range(2, 9) or "Y" not in axes or "X" not in axes:
        return arr
    y, x = axes.index("Y"), axes.index("X")
    if orientation >= 5:  # transposed first: the stored rows become columns
        perm = list(range(arr.ndim))
        perm[y], perm[x] = x, y
        arr = arr.transpose(perm)
    flip_y = orientation in (3, 4, 7, 8)
    flip_x = orientation in (2, 3, 6, 7)
    index = [slice(None)] * arr.ndim
    if flip_y:
        index[y] = slice(None, None, -1)
    if flip_x:
        index[x] = slice(None, None, -1)
    return arr[tuple(index)] if flip_y or flip_x else arr
