"""Checks of input metadata before it is used: NGFF attributes and physical pixel sizes.

A reader trusts nothing a file says.  :func:`check_ngff_group` walks the NGFF ``multiscales``
and ``omero`` attributes of an OME-Zarr group (and of its ``"0"`` subgroup, bioformats2raw's
layout) and refuses, with one :class:`~urst_dask.errors.InputImageError` naming the argument,
the file, the attribute and its value: a ``multiscales``, ``datasets``, ``axes``,
``coordinateTransformations`` or ``omero.channels`` that is not a list, a scale or translation
that is not a list of numbers, and a dataset path that is empty, absolute or has ``.``/``..``
segments (it could name an array outside the store), a multiscale without datasets, and a
scale or translation without one value per axis.  :func:`link_problem` describes a symbolic
link that leads nowhere (dangling, or a loop), for inputs and outputs alike.
:func:`check_pixel_size` refuses a physical pixel size that is not a finite number > 0,
whatever format it came from.
"""

from __future__ import annotations

import errno
import math
import numbers
import os
from pathlib import Path
from typing import Any, Mapping

from ..errors import InputImageError

PixelSize = Mapping[str, tuple[Any, Any]]


def _bad(where: str, name: str, value: Any, why: str) -> InputImageError:
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return InputImageError(f"{where}: malformed NGFF metadata: {name}={shown}: {why}")


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _list_of_mappings(where: str, name: str, value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise _bad(where, name, value, "expected a list of objects")
    return value


def _check_transforms(where: str, name: str, value: Any, ndim: int | None = None) -> None:
    """Refuse transforms that are not a list of objects, a scale or translation that is not a
    list of numbers, or (``ndim`` known from the axes) one without a value per axis."""
    if value is None:
        return
    for i, t in enumerate(_list_of_mappings(where, name, value)):
        for key in ("scale", "translation"):
            if key in t:
                nums = t[key]
                if not isinstance(nums, list) or not all(_is_number(v) for v in nums):
                    raise _bad(where, f"{name}[{i}].{key}", nums, "expected a list of numbers")
                if ndim is not None and len(nums) != ndim:
                    raise _bad(where, f"{name}[{i}].{key}", nums, f"{len(nums)} values for {ndim} axes")


def _check_dataset_path(where: str, name: str, path: Any) -> None:
    if not isinstance(path, str) or not path:
        raise _bad(where, name, path, "expected a non-empty relative path")
    parts = path.replace("\\", "/").split("/")
    if path.startswith(("/", "\\")) or any(p in ("", ".", "..") for p in parts):
        raise _bad(where, name, path, "a dataset path must stay inside the store (no '.', '..', empty or "
                                      "absolute segments)")


def check_ngff_attrs(attrs: Mapping[str, Any], where: str) -> None:
    """Refuse malformed NGFF 0.4 (top-level) or 0.5 (``"ome"``) attributes; accept any
    attributes that carry no NGFF image (nothing to check)."""
    sections: list[tuple[str, Mapping[str, Any]]] = []
    ome = attrs.get("ome")
    if isinstance(ome, Mapping):
        sections.append(("ome.", ome))
    if "multiscales" in attrs or "omero" in attrs:
        sections.append(("", attrs))
    for prefix, sec in sections:
        if "multiscales" in sec and sec["multiscales"] is not None:
            scales = _list_of_mappings(where, f"{prefix}multiscales", sec["multiscales"])
            for m, ms in enumerate(scales):
                at = f"{prefix}multiscales[{m}]"
                axes = ms.get("axes")
                if axes is not None and (not isinstance(axes, list)
                                         or not all(isinstance(a, (str, Mapping)) for a in axes)):
                    raise _bad(where, f"{at}.axes", axes, "expected a list of axis names or objects")
                ndim = len(axes) if axes else None
                if ms.get("datasets") is None or ms.get("datasets") == []:
                    raise _bad(where, f"{at}.datasets", ms.get("datasets"),
                               "no datasets: expected at least one {'path': ...} naming the image array")
                datasets = _list_of_mappings(where, f"{at}.datasets", ms["datasets"])
                for i, ds in enumerate(datasets):
                    _check_dataset_path(where, f"{at}.datasets[{i}].path", ds.get("path"))
                    _check_transforms(where, f"{at}.datasets[{i}].coordinateTransformations",
                                      ds.get("coordinateTransformations"), ndim)
                _check_transforms(where, f"{at}.coordinateTransformations", ms.get("coordinateTransformations"),
                                  ndim)
        omero = sec.get("omero")
        if omero is not None:
            if not isinstance(omero, Mapping):
                raise _bad(where, f"{prefix}omero", omero, "expected an object")
            if omero.get("channels") is not None:
                _list_of_mappings(where, f"{prefix}omero.channels", omero["channels"])


def check_ngff_group(group: Any, where: str) -> None:
    """:func:`check_ngff_attrs` on a Zarr group and on its ``"0"`` subgroup, if it has one."""
    import zarr

    check_ngff_attrs(dict(group.attrs), where)
    try:
        sub = group["0"]
    except KeyError:
        return
    if isinstance(sub, zarr.Group):
        check_ngff_attrs(dict(sub.attrs), where)


def link_problem(path: Path) -> str | None:
    """What is wrong with ``path`` if it is a symbolic link that leads nowhere: ``"is a
    symbolic link loop (...)"`` or ``"is a dangling symbolic link (to ..., which does not
    exist)"``; ``None`` for anything else (a working link, a plain file, a missing path)."""
    if not path.is_symlink() or path.exists():
        return None
    target = os.readlink(path)
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"is a symbolic link loop (to {target!r}, which leads back to itself)"
    return f"is a dangling symbolic link (to {target!r}, which does not exist)"


def check_pixel_size(pixel_size: PixelSize | None, where: str) -> None:
    """Refuse a physical pixel size (``{"y": (value, unit), "x": ...}``) that is not a finite
    number > 0: a zero, negative or NaN size would be carried into the output's NGFF scales
    and break every later step that divides by it (a TIFF export's resolution, for one)."""
    for ax, entry in (pixel_size or {}).items():
        value, unit = entry
        ok = _is_number(value) and math.isfinite(float(value)) and float(value) > 0
        if not ok:
            raise InputImageError(f"{where}: physical pixel size {ax}={value!r}" + (f" {unit}" if unit else "")
                                  + " in the image's metadata: must be a finite number > 0; fix the metadata "
                                    "(the NGFF scale or the OME PhysicalSize) or drop it")


def min_side(size_multiple: int) -> int:
    """The smallest image side a network with ``size_multiple`` (2 ** poolings) accepts: its
    input is padded up to a multiple of ``size_multiple`` and halved that many times, and the
    reflection padding of its deepest convolutions needs at least 2 px left there."""
    return size_multiple + 1 if size_multiple > 1 else 1


def check_min_side(method: str, size_multiple: int, *, shape: tuple[int, ...], where: str, thumb_size: int,
                   style_size: int | None) -> None:
    """Refuse a content image, thumbnail or style side too small for the network ``method``
    (see :func:`min_side`); ``style_size`` ``None``: the method takes no style image."""
    need = min_side(size_multiple)
    h, w = int(shape[0]), int(shape[1])
    why = f"{method} needs at least {need} px on each side (it pads to a multiple of {size_multiple} and halves " \
          f"that {size_multiple.bit_length() - 1} times)"
    if min(h, w) < need:
        raise InputImageError(f"{where}: {h} x {w} px (height x width) is too small: {why}; upscale it first")
    if min(h, w) > thumb_size and thumb_size < need:
        raise InputImageError(f"thumb_size={thumb_size}: too small for the thumbnail: {why}")
    # the style is not padded: floor-halved that many times it must still leave 2 px
    style_need = 2 * size_multiple if size_multiple > 1 else 1
    if style_size is not None and style_size < style_need:
        raise InputImageError(f"style_size={style_size}: too small: {method} needs a style of at least {style_need} "
                              f"px (it is not padded, and is halved {size_multiple.bit_length() - 1} times)")
