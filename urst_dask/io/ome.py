"""OME metadata and pyramids: reading OME-XML / NGFF attributes, writing NGFF multiscales.

Pixel sizes travel as ``{"y": (0.25, "micrometer"), "x": (0.25, "micrometer")}`` (NGFF/UDUNITS
unit names; the unit may be ``None`` when a scale is known but not its unit).

NGFF layout.  A Zarr v3 group gets OME-Zarr 0.5 metadata (``attributes["ome"]``), a Zarr v2
group OME-Zarr 0.4 metadata (``multiscales``/``omero`` at the top level): each version is
defined for that Zarr format only.  The NGFF specification orders axes time, channel, space,
so only a ``(c, y, x)`` image array is a valid NGFF image that napari (ome-zarr-py) and QuPath
open.  :func:`urst_dask.pipeline.pyramid.write_pyramid` writes levels in the layout of the existing ``"0"``: with a
``(c, y, x)`` ``"0"`` the result is conformant; with the legacy ``(y, x, c)`` ``"0"`` the
metadata lists the axes as they are (``y, x, c``), which our reader and Zarr-level tools
understand but ome-zarr-py rejects ("'space' axes must come after 'channel'").
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import dask.array as da
import numpy as np

from ..errors import InputImageError, OutputError
from .remote import zarr_target

PixelSize = dict[str, tuple[float, str | None]]

OME_TO_UNIT = {
    "pm": "picometer", "Å": "angstrom", "nm": "nanometer", "µm": "micrometer", "μm": "micrometer",
    "um": "micrometer", "mm": "millimeter", "cm": "centimeter", "m": "meter", "km": "kilometer",
    "in": "inch", "ft": "foot",
}
UNIT_TO_OME = {v: k for k, v in OME_TO_UNIT.items() if k not in ("μm", "um")}
UNIT_IN_CM = {"picometer": 1e-10, "angstrom": 1e-8, "nanometer": 1e-7, "micrometer": 1e-4, "millimeter": 0.1,
              "centimeter": 1.0, "meter": 100.0, "kilometer": 1e5, "inch": 2.54, "foot": 30.48}
NAME_TO_LETTER = {"t": "T", "time": "T", "c": "C", "channel": "C", "channels": "C", "z": "Z", "y": "Y",
                  "x": "X", "s": "S", "sample": "S", "samples": "S"}
TYPE_TO_LETTER = {"time": "T", "channel": "C"}
CHANNELS_BY_COUNT = {1: "gray", 3: "rgb", 4: "rgba"}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml_char_ok(ch: str) -> bool:
    """Whether XML 1.0 allows ``ch`` (the ``Char`` production: tab, newline, carriage
    return, and U+0020-U+D7FF, U+E000-U+FFFD, U+10000-U+10FFFF)."""
    o = ord(ch)
    return o in (0x9, 0xA, 0xD) or 0x20 <= o <= 0xD7FF or 0xE000 <= o <= 0xFFFD or 0x10000 <= o <= 0x10FFFF


def xml_text(value: object) -> str:
    """``str(value)`` without the characters XML 1.0 forbids (C0 controls other than tab,
    newline and carriage return, lone surrogates, U+FFFE/U+FFFF), so it can go into OME-XML.

    Only characters that no XML 1.0 document may contain, even escaped, are dropped; markup
    characters (``<``, ``&``, quotes) are kept and escaped by the XML writer (tifffile's
    ``OmeXml`` escapes them).  Every string an export puts into OME-XML (image name, channel
    names, units) goes through this function.
    """
    text = str(value)
    return text if all(_xml_char_ok(ch) for ch in text) else "".join(ch for ch in text if _xml_char_ok(ch))


def from_resolution(x: float, y: float, unit: str) -> PixelSize | None:
    """The pixel size of ``x``/``y`` pixels per ``unit`` (``"inch"`` or ``"centimeter"``: a
    photograph's dpi, a TIFF's resolution tags), in micrometres; ``None`` for a missing, zero
    or non-finite resolution, or no unit (an aspect ratio only)."""
    um = {"inch": 25400.0, "centimeter": 10000.0}.get(unit)
    try:
        x, y = float(x), float(y)
    except (TypeError, ValueError):
        return None
    if um is None or not (math.isfinite(x) and math.isfinite(y) and x > 0 and y > 0):
        return None
    return {"y": (um / y, "micrometer"), "x": (um / x, "micrometer")}


def dots_per_inch(pixel_size: PixelSize | None) -> tuple[float, float] | None:
    """(x, y) dots per inch of a pixel size with a length unit (for PNG/JPEG exports), or None."""
    if not pixel_size or not all(ax in pixel_size and pixel_size[ax][1] in UNIT_IN_CM for ax in ("x", "y")):
        return None
    x, y = (2.54 / (float(pixel_size[ax][0]) * UNIT_IN_CM[str(pixel_size[ax][1])]) for ax in ("x", "y"))
    return x, y


def parse_ome_xml(xml: str) -> tuple[PixelSize | None, tuple[str, ...] | None]:
    """Pixel size (y, x) and channel names of the first OME ``Image`` (``None`` where absent)."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None, None
    pixels = next((el for el in root.iter() if _local(el.tag) == "Pixels"), None)
    if pixels is None:
        return None, None
    size: PixelSize = {}
    for ax in ("Y", "X"):
        value = pixels.attrib.get(f"PhysicalSize{ax}")
        if value is None:
            continue
        unit = pixels.attrib.get(f"PhysicalSize{ax}Unit", "µm")
        size[ax.lower()] = (float(value), OME_TO_UNIT.get(unit, unit))
    names = tuple(ch.attrib.get("Name", "") for ch in pixels if _local(ch.tag) == "Channel")
    return (size or None), (names if names and all(names) else None)


# ------------------------------------------------------------------------------ NGFF read


@dataclass(frozen=True)
class NgffImage:
    """What a reader needs from NGFF ``multiscales``/``omero`` attributes."""

    paths: tuple[str, ...]  # dataset paths, full resolution first
    axes: str | None  # letters from TCZYX, or None when the axes are not given or not understood
    pixel_size: PixelSize | None
    channel_names: tuple[str, ...] | None
    version: str


def _ngff_sections(attrs: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any] | None, str] | None:
    ns = attrs.get("ome")
    if isinstance(ns, Mapping) and ns.get("multiscales"):
        return ns["multiscales"][0], ns.get("omero"), str(ns.get("version", "0.5"))
    if attrs.get("multiscales"):
        ms = attrs["multiscales"][0]
        return ms, attrs.get("omero"), str(ms.get("version", "0.4"))
    return None


def _scale(transforms: Sequence[Mapping[str, Any]] | None, ndim: int) -> list[float]:
    out = [1.0] * ndim
    for t in transforms or ():
        if t.get("type") == "scale" and len(t.get("scale", ())) == ndim:
            out = [a * float(b) for a, b in zip(out, t["scale"])]
    return out


def parse_ngff(attrs: Mapping[str, Any]) -> NgffImage | None:
    """The image described by NGFF 0.4 (``multiscales``) or 0.5 (``ome``) attributes, or ``None``."""
    found = _ngff_sections(attrs)
    if found is None:
        return None
    ms, omero, version = found
    paths = tuple(str(d["path"]) for d in ms.get("datasets", ()))
    if not paths:
        return None
    axes_meta = [a if isinstance(a, Mapping) else {"name": str(a)} for a in ms.get("axes", ())]
    letters = [NAME_TO_LETTER.get(str(a.get("name", "")).lower()) or TYPE_TO_LETTER.get(str(a.get("type")))
               for a in axes_meta]
    axes = "".join(x or "" for x in letters) if axes_meta and all(letters) and len(set(letters)) == len(letters) else None
    pixel_size = None
    if axes and "Y" in axes and "X" in axes:
        first = ms["datasets"][0].get("coordinateTransformations")
        whole = _scale(ms.get("coordinateTransformations"), len(axes))
        scale = [a * b for a, b in zip(_scale(first, len(axes)), whole)]
        size = {}
        for ax in ("y", "x"):
            i = axes.index(ax.upper())
            unit = axes_meta[i].get("unit")
            if unit is not None or scale[i] != 1.0:
                size[ax] = (scale[i], unit)
        pixel_size = size or None
    names = None
    if isinstance(omero, Mapping) and omero.get("channels"):
        labels = tuple(str(ch.get("label", "")) for ch in omero["channels"])
        names = labels if all(labels) else None
    return NgffImage(paths, axes, pixel_size, names, version)


def find_ngff(group: Any) -> tuple[Any, NgffImage] | None:
    """The NGFF image of a Zarr group: the group itself, or its ``"0"`` subgroup
    (bioformats2raw layout)."""
    import zarr

    image = parse_ngff(dict(group.attrs))
    if image is not None:
        return group, image
    try:
        sub = group["0"]
    except KeyError:
        return None
    if isinstance(sub, zarr.Group):
        image = parse_ngff(dict(sub.attrs))
        if image is not None:
            return sub, image
    return None


# --------------------------------------------------------------------------- NGFF write


def _layout(arr: Any) -> str:
    names = getattr(arr.metadata, "dimension_names", None) if hasattr(arr, "metadata") else None
    if names is None:
        names = arr.attrs.get("_ARRAY_DIMENSIONS")
    if names and [str(n).lower() for n in names] == ["c", "y", "x"]:
        return "cyx"
    if names and [str(n).lower() for n in names] == ["y", "x", "c"]:
        return "yxc"
    return "cyx" if arr.ndim == 3 and arr.shape[0] <= 4 < arr.shape[2] else "yxc"


def _order(values: Sequence[Any], layout: str) -> list[Any]:
    """(y, x, c)-ordered values in the array's layout."""
    y, x, c = values
    return [c, y, x] if layout == "cyx" else [y, x, c]


def as_yxc(arr: da.Array, layout: str) -> da.Array:
    return arr.transpose(1, 2, 0) if layout == "cyx" else arr


def display_window(dtype: np.dtype, display: Sequence[float] | None = None) -> dict[str, float]:
    """omero's window: the dtype's range (float: [0, 1]) shown whole, or ``display`` (the run's
    intensity range in the dtype's units, such as a percentile mapping's) shown; a float image's
    range is then ``display`` itself (it has no other)."""
    hi = float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0
    if display is None:
        return {"min": 0.0, "max": hi, "start": 0.0, "end": hi}
    start, end = (float(v) for v in display)
    if dtype.kind in "ui":
        return {"min": 0.0, "max": hi, "start": start, "end": end}
    return {"min": start, "max": end, "start": start, "end": end}


def ngff_attributes(
    paths: Sequence[str],
    layout: str,
    window: dict[str, float],
    channels: str,
    *,
    pixel_size: PixelSize | None = None,
    channel_names: Sequence[str] | None = None,
    name: str = "image",
    zarr_format: int = 3,
) -> dict[str, Any]:
    """The group attributes of an NGFF multiscale image with 2x levels ``paths``; ``window``:
    omero's display window of every channel (:func:`display_window`)."""
    pixel_size = pixel_size or {}
    unit = {ax: pixel_size[ax][1] for ax in ("y", "x") if ax in pixel_size and pixel_size[ax][1]}
    base = {ax: float(pixel_size[ax][0]) if ax in pixel_size else 1.0 for ax in ("y", "x")}
    space = [{"name": ax, "type": "space", **({"unit": unit[ax]} if ax in unit else {})} for ax in ("y", "x")]
    axes = _order(space + [{"name": "c", "type": "channel"}], layout)
    datasets = []
    for i, path in enumerate(paths):
        f = 2**i
        transforms = [{"type": "scale", "scale": _order([base["y"] * f, base["x"] * f, 1.0], layout)}]
        if f > 1:  # centre of a level pixel, in the coordinates of level 0
            transforms.append({"type": "translation",
                               "translation": _order([base["y"] * (f - 1) / 2, base["x"] * (f - 1) / 2, 0.0], layout)})
        datasets.append({"path": str(path), "coordinateTransformations": transforms})
    multiscale: dict[str, Any] = {"name": name, "axes": axes, "datasets": datasets, "type": "mean",
                                  "metadata": {"method": "urst_dask.io.ome.half", "description": "2 x 2 area mean"}}
    defaults = {"gray": [("gray", "FFFFFF")], "rgb": [("red", "FF0000"), ("green", "00FF00"), ("blue", "0000FF")],
                "rgba": [("red", "FF0000"), ("green", "00FF00"), ("blue", "0000FF"), ("alpha", "FFFFFF")]}[channels]
    labels = list(channel_names) if channel_names and len(channel_names) == len(defaults) else [d[0] for d in defaults]
    omero = {
        "name": name,
        "channels": [{"label": label, "color": color, "window": dict(window), "active": label_i < 3,
                      "coefficient": 1.0, "family": "linear", "inverted": False}
                     for label_i, (label, (_, color)) in enumerate(zip(labels, defaults))],
        "rdefs": {"model": "greyscale" if channels == "gray" else "color", "defaultT": 0, "defaultZ": 0},
    }
    if zarr_format == 3:
        return {"ome": {"version": "0.5", "multiscales": [multiscale], "omero": omero}}
    return {"multiscales": [{"version": "0.4", **multiscale}], "omero": omero}


@dataclass
class PyramidTarget:
    """An output group opened for its NGFF pyramid (see :func:`open_pyramid`)."""

    root: Any  # the zarr group
    base: Any  # its "0" array
    layout: str  # "yxc" or "cyx"
    channels: str  # "gray" | "rgb" | "rgba"
    chunk: int  # spatial chunk of the reduced levels
    name: str

    @property
    def shape(self) -> tuple[int, int, int]:
        """``"0"``'s (H, W, C)."""
        s = tuple(int(v) for v in self.base.shape)
        return s if self.layout == "yxc" else (s[1], s[2], s[0])  # type: ignore[return-value]


def open_pyramid(store_path: str | os.PathLike[str], *, channels: str | None = None, chunk: int | None = None,
                 name: str | None = None) -> PyramidTarget:
    """Open the group whose image array ``"0"`` gets 2x-reduced levels: its layout (``(y, x, c)``
    or ``(c, y, x)``), ``channels`` ("gray" | "rgb" | "rgba", default from C, for the ``omero``
    colours) and the levels' ``chunk`` (default: ``"0"``'s spatial chunk).  Refuses a store
    that is not such a group."""
    import zarr

    try:
        root = zarr.open_group(zarr_target(store_path), mode="r+")
        base = root["0"]
    except (KeyError, FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
        raise OutputError(f"store={str(store_path)!r}: not a Zarr group with an image array '0'") from exc
    if not isinstance(base, zarr.Array) or base.ndim != 3:
        raise OutputError(f"store={str(store_path)!r}: '0' is not an (H, W, C) or (C, H, W) array")
    layout = _layout(base)
    c = int(base.shape[2] if layout == "yxc" else base.shape[0])
    channels = channels or CHANNELS_BY_COUNT.get(c)
    if channels not in ("gray", "rgb", "rgba") or {"gray": 1, "rgb": 3, "rgba": 4}[channels] != c:
        raise OutputError(f"store={str(store_path)!r}: channels={channels!r} does not fit {c} channels")
    spatial = _order((0, 1, 2), layout)
    # the levels' square chunk: level 0's larger one (its y chunk alone is the height of a thin
    # strip, which gave a 1 x 600 image's next level 1 x 1-pixel chunks)
    nominal = max(base.chunks[spatial.index(0)], base.chunks[spatial.index(1)])
    return PyramidTarget(root, base, layout, channels, int(chunk or nominal),
                         name or os.path.basename(os.path.normpath(str(store_path))))


def level_yxc(arr: Any, layout: str) -> da.Array:
    """A stored level as a lazy (h, w, C) array (nothing is read until computed)."""
    return as_yxc(da.from_zarr(arr), layout)


def create_level(target: PyramidTarget, level: int, height: int, width: int) -> tuple[Any, tuple[int, int, int]]:
    """Create (or replace) the empty array of pyramid ``level`` (``height`` x ``width``) in
    ``"0"``'s layout and dtype; returns it and its (y, x, c) chunks.  Every chunk written
    through it is stored, an all-zero one too, so that a missing chunk shows damage
    (:func:`urst_dask.io.chunkio.require_stored`)."""
    c = target.shape[2]
    chunks_yxc = (min(target.chunk, height), min(target.chunk, width), c)
    extra = ({"dimension_names": _order(("y", "x", "c"), target.layout)}
             if target.root.metadata.zarr_format == 3 else {})
    arr = target.root.create_array(str(level), shape=_order((height, width, c), target.layout),
                                   chunks=_order(chunks_yxc, target.layout), dtype=target.base.dtype, fill_value=0,
                                   overwrite=True, config={"write_empty_chunks": True}, **extra)
    return arr, chunks_yxc


def read_level(arr: Any, layout: str) -> np.ndarray:
    """A stored level, read whole, as an (h, w, C) numpy array."""
    data = np.asarray(arr[...])
    return data if layout == "yxc" else np.moveaxis(data, 0, 2)


def write_level(arr: Any, image: np.ndarray, layout: str) -> None:
    """Write a whole level ((h, w, C) ``image``) into its array (from :func:`create_level`)."""
    arr[...] = image if layout == "yxc" else np.moveaxis(image, 2, 0)


def finish_pyramid(target: PyramidTarget, paths: Sequence[str], *, pixel_size: PixelSize | None = None,
                   channel_names: Sequence[str] | None = None) -> tuple[str, ...]:
    """Remove stale deeper levels of an earlier pyramid and write the NGFF multiscales metadata
    for ``paths`` (other attributes, ``urst_dask``, are kept); returns the dataset paths."""
    root = target.root
    for key in [k for k, _ in root.arrays() if k.isdigit() and int(k) >= len(paths)]:
        del root[key]
    # a run's own intensity range (a percentile mapping of float data: 0..4000, not 0..1), where recorded
    recorded = ((root.attrs.get("urst_dask") or {}).get("intensity") or {}).get("range_in_dtype")
    window = display_window(np.dtype(target.base.dtype),
                            recorded if isinstance(recorded, list) and len(recorded) == 2 else None)
    attrs = ngff_attributes(list(paths), target.layout, window, target.channels, pixel_size=pixel_size,
                            channel_names=channel_names, name=target.name, zarr_format=root.metadata.zarr_format)
    root.attrs.update(attrs)
    return tuple(paths)


def read_ngff_levels(store_path: str | os.PathLike[str]) -> tuple[da.Array, ...]:
    """The reduced levels (``"1"``, ``"2"``...) of an NGFF store as lazy (h, w, C) arrays,
    largest first; ``()`` when the store has no NGFF metadata."""
    import zarr

    try:
        found = find_ngff(zarr.open_group(zarr_target(store_path, read_only=True), mode="r"))
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
        raise InputImageError(f"store={str(store_path)!r}: not a Zarr group") from exc
    if found is None:
        return ()
    group, image = found
    out = []
    for path in image.paths[1:]:
        arr = group[path]
        layout = image.axes.lower() if image.axes in ("CYX", "YXC") else _layout(arr)
        out.append(as_yxc(da.from_zarr(arr), layout))
    return tuple(out)
