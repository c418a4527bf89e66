"""What a reader returns, and the axes rules that turn any layout into (H, W, C).

Axes.  Given (``axes="TCZYX"``, letters from TCZYXS, S = samples = C, each once, one per
dimension) or detected: from metadata (NGFF axes, Zarr ``dimension_names`` or
``_ARRAY_DIMENSIONS``, tifffile's series axes), else from the shape after dropping up to two
leading singleton dimensions: (H, W) -> YX; (H, W, c) with c <= 4 < H -> YXC; (c, H, W) with
c <= 4 < W -> CYX; anything else (such as (3, 4, 3) or (4, 100, 4)) is ambiguous and asks for
``--axes``.  T and Z must be singleton; they are dropped and C moves last.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import dask.array as da

from ...errors import InputImageError

SUPPORTED_DTYPES = ("uint8", "uint16", "float32")
AXES_LETTERS = "TCZYXS"
CHANNELS = {1: "gray", 3: "rgb", 4: "rgba"}
ALLOW_LARGE_FLAG = "--allow-large-images"


@dataclass(frozen=True)
class ImageSource:
    """A lazily opened image, normalised to (H, W, C), and what is known about it."""

    array: da.Array  # (H, W, C), C in {1, 3, 4}
    path: str
    format: str  # "zarr" | "ome-zarr" | "tiff" | "png" | "jpeg" | ... | "array"
    axes_in: str = "YXC"  # the source's axes, as detected or given
    channels: str = "rgb"  # "gray" | "rgb" | "rgba"
    levels: tuple[da.Array, ...] = ()  # lower-resolution (h, w, C) levels, largest first
    pixel_size: dict[str, tuple[float, str | None]] | None = None
    channel_names: tuple[str, ...] | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.array.shape)

    def level_for(self, min_short_side: int) -> da.Array:
        """The smallest level (the image itself if none fits) whose shorter side is >= ``min_short_side``."""
        best = self.array
        for level in self.levels:
            if min(int(s) for s in level.shape[:2]) >= min_short_side:
                best = level
        return best


@dataclass
class RawImage:
    """An image as a format reader found it: any layout, with what its metadata says."""

    array: da.Array  # as stored, any layout
    format: str
    axes: str | None = None
    levels: tuple[da.Array, ...] = ()
    pixel_size: dict | None = None
    channel_names: tuple[str, ...] | None = None
    stored: Any = None  # the array-like behind ``array`` (numpy when indexed): a small image read whole, no Dask
    shown: Callable[[Any], Any] | None = None  # stored samples -> ``array``'s picture (a TIFF's)


def where_of(path: Any, arg: str) -> str:
    return f"{arg}={str(path)!r}"



def parse_axes(axes: str, shape: tuple[int, ...], where: str) -> str:
    """Validate an explicit axes string for ``shape``; return it upper-case."""
    if not isinstance(axes, str) or not axes:
        raise InputImageError(f"{where}: axes={axes!r}: expected letters from {AXES_LETTERS}, e.g. 'YXC'")
    ax = axes.upper()
    unknown = [a for a in ax if a not in AXES_LETTERS]
    if unknown:
        raise InputImageError(f"{where}: axes={axes!r}: unknown letter {unknown[0]!r}; use letters from "
                              f"{AXES_LETTERS} (S = samples, same as C)")
    repeated = [a for a in ax if ax.count(a) > 1]
    if repeated:
        raise InputImageError(f"{where}: axes={axes!r}: letter {repeated[0]!r} repeated")
    if len(ax) != len(shape):
        raise InputImageError(f"{where}: axes={axes!r} has {len(ax)} letters but the image has {len(shape)} "
                              f"dimensions, shape {shape}")
    if "Y" not in ax or "X" not in ax:
        raise InputImageError(f"{where}: axes={axes!r}: must include Y and X")
    return ax


def guess_axes(shape: tuple[int, ...], where: str) -> str:
    """Axes of a plain array from its shape alone (see the module docstring)."""
    lead = 0
    while len(shape) - lead > 3 and shape[lead] == 1 and lead < 2:
        lead += 1
    core, prefix = shape[lead:], "TZ"[2 - lead :]
    if len(core) == 2:
        return prefix + "YX"
    if len(core) == 3:
        first, last = core[0], core[-1]
        if last <= 4 < first:
            return prefix + "YXC"
        if first <= 4 < last:
            return prefix + "CYX"
    raise InputImageError(f"{where}: cannot tell the axes of shape {shape}; pass --axes "
                          f"(e.g. YXC for height, width, channels; CYX for channels first; TCZYX)")


def metadata_axes(axes: str | None, shape: tuple[int, ...], where: str) -> str | None:
    """Metadata axes if usable: one letter per dimension, each once; unknown letters
    (tifffile's Q, I...) of size 1 become T/Z.  An unknown letter larger than 1 (the pages of a
    multi-page TIFF) is refused: it is not channels, whatever its size, and only ``--axes``
    can say otherwise."""
    if not axes or len(axes) != len(shape):
        return None
    out, spare = [], [a for a in "TZ" if a not in axes]
    for a, n in zip(axes.upper(), shape):
        if a in AXES_LETTERS:
            out.append(a)
        elif n == 1:
            if not spare:
                return None
            out.append(spare.pop())
        else:
            raise InputImageError(f"{where}: dimension {a} has size {n} (axes {axes}, shape {shape}): "
                                  f"{n} pages or planes, not channels; select one page first, or pass --axes "
                                  f"(e.g. CYX) if they are the channels of one image")
    ax = "".join(out)
    if len(set(ax)) != len(ax) or "Y" not in ax or "X" not in ax:
        return None
    return ax


def to_yxc(arr: Any, axes: str, where: str) -> Any:
    """Drop singleton T/Z, merge S into C, move C last (added when absent); a Dask array's
    channels in one chunk.  NumPy in, NumPy out (a view)."""
    shape = tuple(int(s) for s in arr.shape)
    if "S" in axes and "C" in axes:
        nc, ns = shape[axes.index("C")], shape[axes.index("S")]
        if nc > 1 and ns > 1:
            raise InputImageError(f"{where}: {nc} channels of {ns} samples each (axes {axes}, shape {shape}); "
                                  f"only one channel axis is supported")
        drop = axes.index("C") if nc == 1 else axes.index("S")
        arr = arr[tuple(0 if i == drop else slice(None) for i in range(arr.ndim))]
        axes = axes[:drop] + axes[drop + 1 :]
        shape = shape[:drop] + shape[drop + 1 :]
    axes = axes.replace("S", "C")
    for a, n in zip(axes, shape):
        if a in "TZ" and n != 1:
            raise InputImageError(f"{where}: dimension {a} has size {n} (axes {axes}, shape {shape}); only Y, X "
                                  f"and C may be larger than 1: select one plane first")
    arr = arr[tuple(0 if a in "TZ" else slice(None) for a in axes)]
    axes = "".join(a for a in axes if a not in "TZ")
    if "C" not in axes:
        arr, axes = arr[..., None], axes + "C"
    arr = arr.transpose([axes.index(a) for a in "YXC"])
    # one chunk across the channels: every task sees whole pixels (OME-Zarr stores one channel per chunk)
    return arr.rechunk({2: -1}) if isinstance(arr, da.Array) else arr


