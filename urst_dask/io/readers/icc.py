"""Embedded ICC colour profiles: colours converted to sRGB when an image is read.

The networks were trained on sRGB photographs, and the output store and its exports carry no
profile, which viewers take as sRGB.  A photograph tagged with another profile (Adobe RGB,
Display P3, a print CMYK profile) is therefore converted to sRGB as it is read, as a
colour-managed viewer shows it, where reading its numbers as they are gave washed-out colours
(an Adobe RGB photograph's mean saturation fell from 96.6 to 76.0).

A profile is judged by what it does, not by its name: one whose colorimetric transform to sRGB
leaves 216 test colours within 2 levels is sRGB, and such files read byte for byte as stored
(a "Linear sRGB" profile is not sRGB, and is converted).  8-bit RGB(A) and CMYK are converted
(perceptual intent, alpha kept); grey images, and grey profiles, keep their values; a 16-bit or
float image, or a profile that cannot be read, keeps its numbers, with one warning per profile
and process (a video's frames share theirs).
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import threading
from typing import Any

import numpy as np

log = logging.getLogger("urst_dask")

SRGB_TOLERANCE = 2  # levels of 255: lcms's rounding, and sRGB profiles' slightly different tone curves
_WARNED: set[tuple[str, str]] = set()
_WARNED_LOCK = threading.Lock()


def _profile(icc: bytes) -> Any:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(io.BytesIO(icc))


def _srgb() -> Any:
    from PIL import ImageCms

    return ImageCms.createProfile("sRGB")


@functools.lru_cache(maxsize=16)
def describe(icc: bytes) -> tuple[str, str]:
    """(kind, name) of a profile: kind ``"srgb"``, ``"rgb"`` (to convert), ``"cmyk"``,
    ``"gray"``, ``"other"`` or ``"broken"`` (cannot be read, or no transform to sRGB)."""
    from PIL import Image, ImageCms

    try:
        prof = _profile(icc)
        name = " ".join(ImageCms.getProfileDescription(prof).split()) or "unnamed"
        space = prof.profile.xcolor_space.strip().upper()
    except (ImageCms.PyCMSError, OSError, TypeError, ValueError, AttributeError):
        return "broken", "unreadable"
    if space == "GRAY":
        return "gray", name
    if space == "CMYK":
        return "cmyk", name
    if space != "RGB":
        return "other", name
    levels = np.array([0, 32, 64, 128, 192, 255], np.uint8)
    probe = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(1, -1, 3)
    try:
        exact = ImageCms.buildTransform(prof, _srgb(), "RGB", "RGB", renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
        shown = np.asarray(exact.apply(Image.fromarray(probe, "RGB")))
    except (ImageCms.PyCMSError, OSError, ValueError):
        return "broken", name
    same = int(np.abs(shown.astype(int) - probe).max()) <= SRGB_TOLERANCE
    return ("srgb" if same else "rgb"), name


def _warn_once(icc: bytes, why: str, where: str) -> None:
    key = (hashlib.sha256(icc).hexdigest(), why)  # by the bytes: unreadable profiles all share one name
    with _WARNED_LOCK:
        if key in _WARNED:
            return
        _WARNED.add(key)
    log.warning("%s: its colour profile %r %s: the colours are read as stored (convert the file to sRGB first for "
                "the colours a viewer shows; said once per profile)", where, describe(icc)[1], why)


def unconverted(icc: bytes, mode: str, where: str) -> None:
    """Warn (once per profile and ``mode``) that ``where``'s colours are read as stored."""
    kind = describe(icc)[0]
    if kind in ("srgb", "gray"):
        return
    _warn_once(icc, "cannot be read" if kind == "broken" else f"is not applied to {mode} pixels", where)


def pil_to_srgb(im: Any, where: str) -> Any:
    """A Pillow image in sRGB: ``im`` converted with its embedded profile where that is an RGB
    profile other than sRGB on an RGB(A) image, or a CMYK profile on a CMYK image; else ``im``
    (grey and palette images as they are: a palette is converted once it is RGB)."""
    from PIL import ImageCms

    icc = im.info.get("icc_profile")
    if not icc:
        return im
    kind, name = describe(icc)
    wanted = {"rgb": ("RGB", "RGBA"), "cmyk": ("CMYK",)}.get(kind, ())
    if im.mode not in wanted:
        if kind in ("broken", "other") or (kind in ("rgb", "cmyk") and im.mode not in ("L", "1", "P", "PA", "LA")):
            unconverted(icc, im.mode, where)
        return im
    try:
        out = ImageCms.profileToProfile(im, _profile(icc), _srgb(), outputMode="RGBA" if im.mode == "RGBA" else "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        _warn_once(icc, f"cannot be applied ({exc})", where)
        return im
    if out is None:  # (profileToProfile returns None only when told to convert in place)
        return im
    if im.mode == "RGBA":  # the transform keeps colours only: the alpha as stored
        out.putalpha(im.getchannel("A"))
    out.info = {k: v for k, v in im.info.items() if k != "icc_profile"}
    log.debug("%s: colours converted from %r to sRGB", where, name)
    return out


@functools.lru_cache(maxsize=8)
def _transform(icc: bytes) -> Any:
    from PIL import ImageCms

    return ImageCms.buildTransform(_profile(icc), _srgb(), "RGB", "RGB")


def block_to_srgb(block: np.ndarray, icc: bytes) -> np.ndarray:
    """One (h, w, 3 or 4) uint8 block converted from ``icc`` (an RGB profile, other than sRGB:
    :func:`describe` says ``"rgb"``) to sRGB, alpha kept: a colour transform works pixel by
    pixel, so blocks convert independently."""
    from PIL import Image

    h, w, c = block.shape
    if h == 0 or w == 0:
        return block
    rgb = np.ascontiguousarray(block[..., :3])
    out = np.asarray(_transform(icc).apply(Image.fromarray(rgb, "RGB")))
    return np.concatenate([out, block[..., 3:]], axis=2) if c == 4 else out
