"""Frame sequences on disk: a folder or glob of image files, read and written one frame at a time.

Frames are PNG (8/16-bit), TIFF (8/16-bit or float; contiguous or planar samples, one
image per file), JPEG, or EXR (half/float, through the ``openexr`` package: the ``exr``
extra), with 1 (gray), 3 (RGB) or 4 (RGBA) channels; other sample types (int16, uint32...)
and channel counts are refused, naming the frame.  Frames are read as ``urst-dask stylize``
reads the same file: the EXIF orientation of PNG and JPEG frames is applied, and a TIFF frame
is the picture a viewer shows (its Orientation tag, min-is-white, palette, premultiplied
alpha; CMYK refused); headers report the displayed size.
:func:`open_frames` lists the frames in natural order of their full paths (digit runs
compared as numbers: ``frame_2`` before ``frame_10``), reads only their headers, and
refuses an empty sequence, a frame whose header cannot be read, and frames of different
sizes or sample types, naming the frame.  Pixels are read by :func:`read_frame` in the
worker that needs them, as (H, W, C) arrays (uint8, uint16 or float32); a frame that fails
to decode there raises :class:`InputImageError` naming it.

:func:`write_frame` writes one (H, W, C) frame to a temporary name in the same folder and
renames it into place, so a frame file that exists is a complete one.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputImageError, ParameterError
from ..settings import FrameFormat
from . import png
from .failed import write_failed
from .readers import icc

SUFFIXES = {".png": "png", ".tif": "tif", ".tiff": "tif", ".jpg": "jpg", ".jpeg": "jpg", ".exr": "exr"}
FORMATS = tuple(f.value for f in FrameFormat)
PARTIAL = ".partial"


@dataclass(frozen=True)
class FrameHeader:
    """What a frame's header says: size, channels, sample type."""

    height: int
    width: int
    channels: int
    dtype: str


@dataclass(frozen=True)
class FrameFiles:
    """A sequence of frame files of one size and sample type (``shape``: (H, W, C))."""

    paths: tuple[str, ...]
    shape: tuple[int, int, int]
    dtype: str
    source: str  # the folder or glob as given

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(Path(p).name for p in self.paths)

    def __len__(self) -> int:
        return len(self.paths)


def _exr_module():
    try:
        import OpenEXR
    except ImportError:
        raise InputImageError("EXR frames need the 'exr' extra: pip install 'urst-dask[exr]'") from None
    return OpenEXR


def _exr_rgb_key(channels: dict) -> str:
    for key in ("RGBA", "RGB", "Y"):
        if key in channels:
            return key
    raise ValueError(f"no RGB, RGBA or Y channels (has {sorted(channels)})")


def _checked(h: FrameHeader, p: Path) -> FrameHeader:
    """``h``, or :class:`InputImageError` naming the frame for a sample type or channel count
    a frame cannot have."""
    if h.dtype not in ("uint8", "uint16", "float32"):
        raise InputImageError(f"frame={str(p)!r}: {h.dtype} samples are not supported; frames must be uint8, "
                              "uint16 or float")
    if h.channels not in (1, 3, 4):
        raise InputImageError(f"frame={str(p)!r}: has {h.channels} channels; frames must have 1 (gray), 3 (RGB) "
                              "or 4 (RGBA)")
    return h


def _tiff_layout(tif: Any, p: Path) -> tuple[str, tuple[int, ...], str]:
    """The first image's axes (``YX``, ``YXS`` or ``SYX``, singleton axes dropped), shape and
    sample type; a stack of several images is refused, and so is a file of several images
    (pages written one by one, a multi-image OME-TIFF), whose others would be left out."""
    # a pyramid's reduced levels, and a transparency mask (GDAL's internal masks), belong to the image
    images = [s for s in tif.series if not (s.keyframe.is_reduced or s.keyframe.is_mask)]
    if len(images) > 1:
        raise InputImageError(f"frame={str(p)!r}: holds {len(images)} images (TIFF series of shapes "
                              f"{', '.join(str(tuple(s.shape)) for s in images[:3])}{' ...' if len(images) > 3 else ''});"
                              " a frame must be one image: write each frame to its own file")
    series = tif.series[0]
    keep = [i for i, a in enumerate(series.axes) if a in "YXS" or series.shape[i] != 1]
    axes, shape = "".join(series.axes[i] for i in keep), tuple(int(series.shape[i]) for i in keep)
    if axes not in ("YX", "YXS", "SYX"):
        raise InputImageError(f"frame={str(p)!r}: TIFF of axes {series.axes} {tuple(series.shape)}; a frame must "
                              "be one 2-D image (YX, YXS or SYX): write each frame to its own file")
    dtype = np.dtype(series.dtype)
    return axes, shape, "float32" if dtype.kind == "f" else str(dtype)


def _kind(p: Path) -> str | None:
    """The frame's format: a TIFF by its first bytes whatever its name (as ``urst-dask
    stylize`` knows one: a 16-bit TIFF named .jpg stays 16-bit), else by its suffix."""
    from .readers import is_tiff_file

    return "tif" if is_tiff_file(p) else SUFFIXES.get(p.suffix.lower())


def _tiff_view(tif: Any, p: Path) -> Any:
    """How the first image's samples become the picture a viewer shows, as ``urst-dask
    stylize`` reads a TIFF (:func:`~urst_dask.io.readers.tiffpixels.view_of`)."""
    from .readers import tiffpixels

    return tiffpixels.view_of(tif.series[0].keyframe, f"frame={str(p)!r}")


def _tiff_picture(arr: Any, axes: str, view: Any, p: Path) -> Any:
    """The stored samples ``arr`` (``axes`` YX, YXS or SYX; NumPy, or Dask for a header) as the
    (H, W, C) picture."""
    if not view.identity:
        arr = view(arr, axes, f"frame={str(p)!r}")
        axes = view.axes(axes)
    if axes == "SYX":
        return np.moveaxis(arr, 0, -1)
    return arr[..., None] if arr.ndim == 2 else arr


def _exif_orientation(im: Any) -> int:
    """The EXIF orientation Pillow's ``exif_transpose`` applies (1: as stored)."""
    value = im.getexif().get(0x0112, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def read_header(path: str | os.PathLike[str]) -> FrameHeader:
    """The header of one frame file (no pixels decoded; the size as displayed, EXIF
    orientation applied); :class:`InputImageError` naming the frame if it cannot be read or
    holds samples or channels a frame cannot have."""
    p = Path(path)
    kind = _kind(p)
    try:
        if kind == "exr":
            with _exr_module().File(str(p)) as f:
                px = f.channels()[_exr_rgb_key(f.channels())].pixels
                c = 1 if px.ndim == 2 else px.shape[2]
                return _checked(FrameHeader(px.shape[0], px.shape[1], c, "float32"), p)
        if kind == "tif":
            import dask.array as da
            import tifffile

            with tifffile.TiffFile(str(p)) as tif:
                axes, shape, dtype = _tiff_layout(tif, p)
                view = _tiff_view(tif, p)
            shown = _tiff_picture(da.zeros(shape, dtype=tif.series[0].dtype), axes, view, p)  # lazy: no pixels
            h, w, c = (int(n) for n in shown.shape)
            return _checked(FrameHeader(h, w, c, "float32" if shown.dtype.kind == "f" else str(shown.dtype)), p)
        from PIL import Image

        header = png.read_png_header(p) if kind == "png" else None
        with Image.open(p) as im:
            w, h = im.size
            c = {"L": 1, "I;16": 1, "LA": 4, "RGBA": 4, "PA": 4}.get(im.mode, 3)
            if im.mode == "P" and "transparency" in im.info:
                c = 4
            deep = header is not None and header.depth == 16
            # a PNG's eXIf chunk from its chunk headers (Pillow's getexif would decode the pixels)
            orientation = header.orientation if header is not None else _exif_orientation(im)
        if orientation >= 5:  # transposed or rotated a quarter turn: displayed with width and height swapped
            w, h = h, w
        if header is not None and header.color_type == 4:
            c = 4
        return _checked(FrameHeader(h, w, c, "uint16" if deep else "uint8"), p)
    except InputImageError:
        raise
    except Exception as exc:  # any decoder failure: one line naming the frame
        raise InputImageError(f"frame={str(p)!r}: cannot be read: {exc}") from exc


def natural_key(path: Path) -> tuple[tuple[tuple[str | int, ...], ...], str]:
    """Sort key of a path: its parts compared in turn, digit runs as numbers (``f2`` before
    ``f10``); equal keys (``f01``, ``f1``) fall back to the path's text."""
    parts = tuple(tuple(int(s) if i % 2 else s for i, s in enumerate(re.split(r"(\d+)", part))) for part in path.parts)
    return parts, str(path)


def _listed(source: str) -> list[Path]:
    p = Path(source)
    if p.is_dir():
        files = [q for q in p.iterdir() if q.suffix.lower() in SUFFIXES and not q.name.startswith(".")]
    elif glob.has_magic(source):
        files = [Path(q) for q in glob.glob(source) if Path(q).suffix.lower() in SUFFIXES]
    else:
        raise InputImageError(f"frames={source!r}: not a folder, a glob of frames, a video file or a Zarr store")
    return sorted(files, key=natural_key)


def open_frames(source: str | os.PathLike[str]) -> FrameFiles:
    """List and check the frames of ``source`` (a folder or a glob such as ``shots/*.png``)."""
    text = str(source)
    files = _listed(text)
    if not files:
        raise InputImageError(f"frames={text!r}: no frames (.png, .tif, .jpg or .exr files) found")
    first = read_header(files[0])
    for f in files[1:]:
        h = read_header(f)
        if (h.height, h.width) != (first.height, first.width):
            raise InputImageError(f"frame={str(f)!r}: is {h.width}x{h.height}, but {files[0].name} is "
                                  f"{first.width}x{first.height}; all frames of a sequence must have one size")
        if (h.channels, h.dtype) != (first.channels, first.dtype):
            raise InputImageError(f"frame={str(f)!r}: has {h.channels} channels of {h.dtype}, but {files[0].name} "
                                  f"has {first.channels} of {first.dtype}; all frames must match")
    return FrameFiles(tuple(str(f) for f in files), (first.height, first.width, first.channels), first.dtype, text)


def _hwc(arr: np.ndarray) -> np.ndarray:
    return arr[..., None] if arr.ndim == 2 else arr


def _read_pil(p: Path) -> np.ndarray:
    from PIL import Image, ImageOps

    header = png.read_png_header(p) if p.suffix.lower() == ".png" else None
    if header is not None and header.depth == 16:
        return _hwc(png.decode_png16(p, header, f"frame={str(p)!r}"))
    with Image.open(p) as opened:
        opened.load()
        im = icc.pil_to_srgb(ImageOps.exif_transpose(opened), f"frame={str(p)!r}")  # as urst-dask stylize reads it
        if im.mode in ("L", "RGB", "RGBA"):
            return _hwc(np.asarray(im))
        if im.mode == "I;16":
            return _hwc(np.asarray(im).astype(np.uint16))
        has_alpha = im.mode in ("LA", "PA") or (im.mode == "P" and "transparency" in im.info)
        return np.asarray(icc.pil_to_srgb(im.convert("RGBA" if has_alpha else "RGB"), f"frame={str(p)!r}"))


def read_frame(path: str | os.PathLike[str]) -> np.ndarray:
    """One frame as an (H, W, C) array: uint8/uint16 as stored, float frames as float32."""
    p = Path(path)
    kind = _kind(p)
    try:
        if kind == "exr":
            with _exr_module().File(str(p)) as f:
                return _hwc(np.asarray(f.channels()[_exr_rgb_key(f.channels())].pixels, dtype=np.float32))
        if kind == "tif":
            import tifffile

            with tifffile.TiffFile(str(p)) as tif:
                axes, shape, dtype = _tiff_layout(tif, p)
                view = _tiff_view(tif, p)
                arr = np.ascontiguousarray(_tiff_picture(tif.series[0].asarray().reshape(shape), axes, view, p))
            _checked(FrameHeader(arr.shape[0], arr.shape[1], arr.shape[2], str(arr.dtype)), p)
            return arr.astype(np.float32) if arr.dtype.kind == "f" else arr
        return _read_pil(p)
    except InputImageError:
        raise
    except Exception as exc:
        raise InputImageError(f"frame={str(p)!r}: cannot be read: {exc}") from exc


def check_format(fmt: str, dtype: str) -> str:
    """The output frame format for ``fmt`` and the frames' ``dtype`` (refused: JPEG of
    16-bit or float frames, which would lose their depth; EXR without the ``exr`` extra)."""
    fmt = str(fmt).lower().lstrip(".")
    fmt = {"tiff": "tif", "jpeg": "jpg"}.get(fmt, fmt)
    if fmt not in FORMATS:
        raise ParameterError(f"format={fmt!r}: must be one of {', '.join(FORMATS)}")
    if fmt == "jpg" and dtype != "uint8":
        raise ParameterError(f"format='jpg': JPEG holds 8 bits, the frames are {dtype}; use png, tif or exr")
    if fmt == "png" and dtype not in ("uint8", "uint16"):
        raise ParameterError(f"format='png': PNG holds 8 or 16 bits, the frames are {dtype}; use tif or exr")
    if fmt == "exr":
        _exr_module()  # without the extra: refused now, not when the first frame is written
    return fmt


def _encode(tmp: Path, frame: np.ndarray, fmt: str) -> None:
    img = frame[..., 0] if frame.shape[2] == 1 else frame
    if fmt == "tif":
        import tifffile

        tifffile.imwrite(str(tmp), img, photometric="minisblack" if img.ndim == 2 else "rgb",
                         compression="zlib", extrasamples=("unassalpha",) if frame.shape[2] == 4 else None)
    elif fmt == "exr":
        ex = _exr_module()
        data = frame.astype(np.float32) if frame.dtype.kind == "f" else frame / np.float32(np.iinfo(frame.dtype).max)
        key = {1: "Y", 3: "RGB", 4: "RGBA"}[frame.shape[2]]
        header = {"compression": ex.ZIP_COMPRESSION, "type": ex.scanlineimage}
        with ex.File(header, {key: np.ascontiguousarray(data[..., 0] if key == "Y" else data, np.float32)}) as f:
            f.write(str(tmp))
    elif fmt == "png" and frame.dtype == np.uint16:
        import imagecodecs

        tmp.write_bytes(imagecodecs.png_encode(np.ascontiguousarray(img), level=6))
    else:
        from PIL import Image

        kw = {"quality": 95, "subsampling": 0} if fmt == "jpg" else {"compress_level": 6}
        Image.fromarray(np.ascontiguousarray(img)).save(tmp, format="JPEG" if fmt == "jpg" else "PNG", **kw)


def write_frame(path: str | os.PathLike[str], frame: np.ndarray, fmt: str) -> Path:
    """Write an (H, W, C) frame as ``fmt`` at ``path``: to ``.<name>.partial`` first, then
    renamed, so the name exists only once the file is whole."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}{PARTIAL}")
    try:
        _encode(tmp, frame, fmt)
        os.replace(tmp, p)
    except OSError as exc:  # a full disk: one line naming the frame, not Pillow's traceback
        raise write_failed(p, exc, "the frame") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


def output_name(stem: str, fmt: str) -> str:
    """The output file name of a frame whose output stem is ``stem`` (an input frame's stem,
    or a zero-padded index): the stem with the format's suffix."""
    return f"{stem}.{fmt}"
