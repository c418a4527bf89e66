"""Reading content/style images lazily and writing viewable exports.

``open_image`` returns a Dask array (H, W, C) whatever the source: a Zarr array or group
(v2/v3; a group's ``"0"`` array), a TIFF/BigTIFF through tifffile's Zarr view (never fully
read), or a PNG/JPEG decoded with Pillow.  Errors name the argument, the file and the value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import dask.array as da
import numpy as np

from ..errors import InputImageError, OutputError

RASTER_SUFFIXES = {".png", ".jpg", ".jpeg"}
TIFF_SUFFIXES = {".tif", ".tiff", ".btf", ".tf8"}
SUPPORTED_DTYPES = ("uint8", "uint16", "float32")


@dataclass(frozen=True)
class ImageSource:
    """A lazily opened image: the array, where it came from and what it is."""

    array: da.Array  # (H, W, C)
    path: str
    format: str  # "zarr" | "tiff" | "png" | "jpeg"

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.array.shape)


def _is_zarr(path: Path) -> bool:
    return path.suffix == ".zarr" or (path.is_dir() and any((path / m).exists() for m in ("zarr.json", ".zarray", ".zgroup")))


def _open_zarr_array(path: Path, arg: str):
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # noqa: BLE001
        raise InputImageError(f"{arg}={str(path)!r}: not a readable Zarr store ({exc})") from exc
    if isinstance(node, zarr.Array):
        return node
    arrays = dict(node.arrays())
    if "0" in arrays:
        return arrays["0"]
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    raise InputImageError(
        f"{arg}={str(path)!r}: Zarr group with arrays {sorted(arrays)}; expected one array or an array named '0'"
    )


def _open_tiff(path: Path, arg: str) -> da.Array:
    import tifffile
    import zarr

    try:
        store = tifffile.imread(str(path), aszarr=True)
        node = zarr.open(store, mode="r")
    except Exception as exc:  # noqa: BLE001 - truncated/corrupt TIFFs raise many types
        raise InputImageError(f"{arg}={str(path)!r}: not a readable TIFF ({type(exc).__name__}: {exc})") from exc
    if not isinstance(node, zarr.Array):  # pyramid: level 0 is full resolution
        node = node["0"]
    return da.from_zarr(node)


def _open_raster(path: Path, arg: str) -> da.Array:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("P", "CMYK", "YCbCr", "LAB", "HSV"):
                im = im.convert("RGB")
            elif mode in ("LA", "PA"):
                im = im.convert("RGBA")
            arr = np.asarray(im)
    except Image.DecompressionBombError as exc:
        raise InputImageError(f"{arg}={str(path)!r}: {exc}") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputImageError(f"{arg}={str(path)!r}: not a readable image ({exc})") from exc
    if arr.dtype == np.int32 or arr.dtype == np.uint16 or arr.dtype.str.endswith("u2"):
        arr = arr.astype(np.uint16)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    return da.from_array(arr, chunks=(1024, 1024) + ((-1,) if arr.ndim == 3 else ()))


def open_image(path: str | os.PathLike[str], arg: str = "content") -> ImageSource:
    """Open an image lazily and check it is an (H, W, 3) RGB image of a supported dtype.

    Raises :class:`InputImageError` naming ``arg``, the file and the problem.
    """
    p = Path(path)
    if not p.exists():
        raise InputImageError(f"{arg}={str(path)!r}: no such file or directory")
    suffix = p.suffix.lower()
    if _is_zarr(p):
        arr, fmt = da.from_zarr(_open_zarr_array(p, arg)), "zarr"
    elif p.is_dir():
        raise InputImageError(f"{arg}={str(path)!r}: is a directory but not a Zarr store")
    elif not os.access(p, os.R_OK):
        raise InputImageError(f"{arg}={str(path)!r}: not readable (permission denied)")
    elif suffix in TIFF_SUFFIXES:
        arr, fmt = _open_tiff(p, arg), "tiff"
    else:
        arr, fmt = _open_raster(p, arg), ("jpeg" if suffix in (".jpg", ".jpeg") else suffix.lstrip(".") or "raster")
    return ImageSource(check_rgb(arr, str(path), arg), str(path), fmt)


def check_rgb(arr: da.Array, path: str, arg: str) -> da.Array:
    """Validate layout and dtype of an (H, W, 3) image array."""
    where = f"{arg}={path!r}"
    if any(int(s) == 0 for s in arr.shape):
        raise InputImageError(f"{where}: empty image, shape {tuple(arr.shape)}")
    if arr.ndim == 2:
        raise InputImageError(f"{where}: grayscale image, shape {tuple(arr.shape)}; only RGB (H, W, 3) is supported")
    if arr.ndim != 3:
        raise InputImageError(f"{where}: {arr.ndim}-D array, shape {tuple(arr.shape)}; expected (H, W, 3) RGB")
    if arr.shape[2] != 3:
        if arr.shape[0] in (3, 4) and arr.shape[2] > 4:
            hint = " (channels first? store it as H, W, C)"
        else:
            hint = ""
        raise InputImageError(
            f"{where}: {arr.shape[2]} channels, shape {tuple(arr.shape)}; only RGB (H, W, 3) is supported{hint}"
        )
    if str(arr.dtype) not in SUPPORTED_DTYPES:
        raise InputImageError(f"{where}: dtype {arr.dtype}; supported: {', '.join(SUPPORTED_DTYPES)}")
    return arr


def read_style(path: str | os.PathLike[str], arg: str = "style") -> np.ndarray:
    """Read a style image fully into memory as (H, W, 3) in its own dtype."""
    return np.asarray(open_image(path, arg).array.compute())


# ---------------------------------------------------------------- writing


def _check_writable_target(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise OutputError(f"output={str(path)!r}: already exists; pass --overwrite to replace it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"output={str(path)!r}: folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output={str(path)!r}: folder {str(parent)!r} is not writable")


def write_raster(path: str | os.PathLike[str], image: np.ndarray, *, overwrite: bool = False, quality: int = 95) -> None:
    """Write a whole (H, W, 3) uint8 image as PNG or JPEG (the format from the suffix)."""
    from PIL import Image

    p = Path(path)
    _check_writable_target(p, overwrite)
    tmp = p.with_name(f".{p.name}.partial")
    fmt = "JPEG" if p.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    if fmt == "JPEG" and max(image.shape[:2]) > 65500:
        raise OutputError(f"output={str(path)!r}: JPEG cannot hold {image.shape[1]}x{image.shape[0]}; export a .tif")
    Image.fromarray(np.ascontiguousarray(image)).save(tmp, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    os.replace(tmp, p)


def _tiles(array: da.Array, tile: int) -> Iterator[np.ndarray]:
    h, w, c = array.shape
    for y in range(0, h, tile):
        band = np.asarray(array[y : y + tile].compute())
        for x in range(0, w, tile):
            t = band[:, x : x + tile]
            if t.shape[:2] != (tile, tile):
                t = np.pad(t, ((0, tile - t.shape[0]), (0, tile - t.shape[1]), (0, 0)))
            yield t


def write_tiff(path: str | os.PathLike[str], array: da.Array, *, tile: int = 256, overwrite: bool = False) -> None:
    """Write an (H, W, 3) array as a tiled BigTIFF, band by band (never whole in memory)."""
    import tifffile

    p = Path(path)
    _check_writable_target(p, overwrite)
    tmp = p.with_name(f".{p.name}.partial")
    tifffile.imwrite(
        tmp, _tiles(array, tile), shape=tuple(array.shape), dtype=array.dtype, tile=(tile, tile),
        photometric="rgb", bigtiff=True, compression="zlib",
    )
    os.replace(tmp, p)
