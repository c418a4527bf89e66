"""Embedded ICC colour profiles: colours converted to sRGB when an image is read.

The networks were trained on sRGB photographs, and the output store and its exports carry no
profile, which viewers take as sRGB.  A photograph tagged with another profile (Adobe RGB,
Display P3, a print CMYK profile) is therefore converted to sRGB as it is read, as a
colour-managed viewer shows it, where reading its numbers as they are gave washed-out colours
(an Adobe RGB photograph's mean saturation fell from 96.6 to 76.0).  Profiles that describe
sRGB itself are left alone, so that such files read byte for byte as stored.  8-bit RGB(A)
and CMYK are converted (perceptual intent, alpha kept); grey images keep their values; 16-bit
and float images cannot be converted here, and a warning says their colours are read as stored.
"""

from __future__ import annotations

import functools
import io
import logging
from typing import Any

import numpy as np

log = logging.getLogger("urst_dask")


def _profile(icc: bytes) -> Any:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(io.BytesIO(icc))


def description(icc: bytes) -> str:
    """The profile's own name (``"Adobe RGB (1998)"``); ``"unnamed"`` if it has none."""
    from PIL import ImageCms

    try:
        return " ".join(ImageCms.getProfileDescription(_profile(icc)).split()) or "unnamed"
    except (ImageCms.PyCMSError, OSError, TypeError, ValueError):
        return "unreadable"


def needs_conversion(icc: bytes | None) -> bool:
    """Whether an embedded profile describes colours other than sRGB's."""
    return bool(icc) and "srgb" not in description(icc).lower().replace(" ", "")  # type: ignore[arg-type]


def unconverted(icc: bytes, mode: str, where: str) -> None:
    """Warn that ``where``'s colours are read as stored, its profile not applied."""
    log.warning("%s: its colour profile %r is not applied to %s pixels: the colours are read as stored "
                "(convert the file to sRGB first for the colours a viewer shows)", where, description(icc), mode)


def pil_to_srgb(im: Any, where: str) -> Any:
    """A Pillow image in sRGB: ``im`` converted with its embedded profile where it has one
    that is not sRGB and its mode can be converted (RGB, RGBA, CMYK -> RGB); else ``im``."""
    from PIL import ImageCms

    icc = im.info.get("icc_profile")
    if not needs_conversion(icc):
        return im
    if im.mode not in ("RGB", "RGBA", "CMYK"):
        if im.mode not in ("L", "1", "P", "PA", "LA"):  # grey keeps its values; a palette is converted after
            unconverted(icc, im.mode, where)
        return im
    try:
        out = ImageCms.profileToProfile(im, _profile(icc), ImageCms.createProfile("sRGB"),
                                        outputMode="RGBA" if im.mode == "RGBA" else "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        log.warning("%s: its colour profile %r cannot be applied (%s): the colours are read as stored",
                    where, description(icc), exc)
        return im
    if out is None:  # (profileToProfile returns None only when told to convert in place)
        return im
    if im.mode == "RGBA":  # the transform keeps colours only: the alpha as stored
        out.putalpha(im.getchannel("A"))
    out.info = {k: v for k, v in im.info.items() if k != "icc_profile"}
    log.debug("%s: colours converted from %r to sRGB", where, description(icc))
    return out


@functools.lru_cache(maxsize=8)
def _transform(icc: bytes, mode: str) -> Any:
    from PIL import ImageCms

    return ImageCms.buildTransform(_profile(icc), ImageCms.createProfile("sRGB"), mode, mode)


def block_to_srgb(block: np.ndarray, icc: bytes) -> np.ndarray:
    """One (h, w, 3 or 4) uint8 block converted from ``icc`` to sRGB (alpha kept): a colour
    transform works pixel by pixel, so blocks convert independently."""
    from PIL import Image

    h, w, c = block.shape
    if h == 0 or w == 0:
        return block
    rgb = np.ascontiguousarray(block[..., :3])
    out = np.asarray(_transform(icc, "RGB").apply(Image.fromarray(rgb, "RGB")))
    return np.concatenate([out, block[..., 3:]], axis=2) if c == 4 else out
