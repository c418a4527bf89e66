"""Bad input at the reader/writer level: one table, each case with its expected error (the
message names the argument, the file and the value) or its documented handling."""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import tifffile
import zarr
from PIL import Image

from urst_dask.errors import InputImageError, OutputError, UrstError, WeightsError
from urst_dask.io import images
from urst_dask.pipeline.inputs import style_input


def make_zarr(path: Path, shape, dtype="uint8", fill=None) -> Path:
    z = zarr.create_array(str(path), shape=shape, dtype=dtype, chunks=tuple(max(1, s) for s in shape), fill_value=0)
    if fill is not None:
        z[...] = fill
    return path


def float_with(value) -> np.ndarray:
    a = np.full((20, 30, 3), 0.5, np.float32)
    a[13, 21, 1] = value
    return a


def png_header_only(path: Path, w: int, h: int) -> Path:
    """A PNG that declares w x h pixels (only the header: decoders check the size first)."""
    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))
    return path


def truncated_tiff(path: Path) -> Path:
    data = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    tifffile.imwrite(path, data, photometric="rgb", tile=(32, 32))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def undecodable_tiff(path: Path) -> Path:
    """Tiles marked JPEG-compressed but holding raw bytes: no codec (or a failing one) can read them."""
    tifffile.imwrite(path, np.zeros((64, 64, 3), np.uint8), photometric="rgb", tile=(16, 16))
    with tifffile.TiffFile(path, mode="r+") as tif:
        tif.pages[0].tags["Compression"].overwrite(7)
    return path


def corrupt_weights(d: Path):
    from urst_dask.io.weights import WeightFile, load_state_dict

    (d / "net").mkdir()
    (d / "net" / "w.pth").write_bytes(b"not the checkpoint that was published")
    wf = WeightFile("net/w.pth", hashlib.sha256(b"the published checkpoint").hexdigest())
    return lambda: load_state_dict(d, wf)


def compute(src):
    return src.array.compute()


@dataclass
class Case:
    id: str
    run: Callable[[Path], Any]  # builds the input under tmp_path and returns what to call
    error: type[Exception] | None  # None: accepted (documented handling)
    expect: str | Callable[[Any], bool]  # message fragment, or a check of the result


def opener(build, **kw):
    return lambda d: (lambda: images.open_image(build(d), **kw))


CASES = [
    Case("missing file", lambda d: lambda: images.open_image(d / "nope.tif"), InputImageError,
         "nope.tif': no such file or directory"),
    Case("truncated TIFF", opener(lambda d: truncated_tiff(d / "t.tif")), InputImageError,
         "t.tif': truncated TIFF: image data runs to byte"),
    Case("corrupt TIFF header", opener(lambda d: (d / "c.tif").write_bytes(b"II*\x00garbage") and d / "c.tif"),
         InputImageError, "c.tif': not a readable TIFF"),
    Case("TIFF tiles no codec can decode (found at open, not mid-run)",
         opener(lambda d: undecodable_tiff(d / "j.tif")), InputImageError, "j.tif': not a readable TIFF level 0"),
    Case("text file named .png", opener(lambda d: (d / "n.png").write_text("hello") and d / "n.png"),
         InputImageError, "n.png': not a readable image"),
    Case("ambiguous axes (3, 4, 3)", opener(lambda d: make_zarr(d / "a.zarr", (3, 4, 3))), InputImageError,
         "a.zarr': cannot tell the axes of shape (3, 4, 3); pass --axes"),
    Case("ambiguous axes (4, 100, 4)", opener(lambda d: make_zarr(d / "a.zarr", (4, 100, 4))), InputImageError,
         "cannot tell the axes of shape (4, 100, 4); pass --axes"),
    Case("axes length mismatch", opener(lambda d: make_zarr(d / "a.zarr", (20, 30, 3)), axes="YX"), InputImageError,
         "axes='YX' has 2 letters but the image has 3 dimensions, shape (20, 30, 3)"),
    Case("axes repeated letter", opener(lambda d: make_zarr(d / "a.zarr", (20, 30, 3)), axes="YYX"), InputImageError,
         "axes='YYX': letter 'Y' repeated"),
    Case("axes unknown letter", opener(lambda d: make_zarr(d / "a.zarr", (20, 30, 3)), axes="YXQ"), InputImageError,
         "axes='YXQ': unknown letter 'Q'; use letters from TCZYXS"),
    Case("axes without X", opener(lambda d: make_zarr(d / "a.zarr", (3, 20, 30)), axes="CYZ"), InputImageError,
         "axes='CYZ': must include Y and X"),
    Case("5-D with T = 2", opener(lambda d: make_zarr(d / "a.zarr", (2, 3, 1, 20, 30)), axes="TCZYX"),
         InputImageError, "dimension T has size 2 (axes TCZYX, shape (2, 3, 1, 20, 30)); only Y, X and C"),
    Case("5-D with Z = 4 (detected)", opener(lambda d: make_zarr(d / "a.zarr", (1, 3, 4, 20, 30)), axes="TCZYX"),
         InputImageError, "dimension Z has size 4"),
    Case("TIFF T = 2 from its metadata",
         opener(lambda d: tifffile.imwrite(d / "t.tif", np.zeros((2, 3, 20, 30), np.uint8), photometric="minisblack",
                                           metadata={"axes": "TCYX"}) or d / "t.tif"),
         InputImageError, "dimension T has size 2 (axes TCYX"),
    Case("2 channels (H, W, 2)", opener(lambda d: make_zarr(d / "a.zarr", (20, 30, 2))), InputImageError,
         "a.zarr': 2 channels, shape (20, 30, 2), axes YXC; supported: 1 (gray), 3 (RGB), 4 (RGBA)"),
    Case("2 channels, channels first TIFF",
         opener(lambda d: tifffile.imwrite(d / "c2.tif", np.zeros((2, 20, 30), np.uint8), photometric="minisblack")
                or d / "c2.tif"), InputImageError, "dimension Q has size 2 (axes QYX, shape (2, 20, 30)): 2 pages"),
    Case("3 grey pages are not an RGB image",
         opener(lambda d: tifffile.imwrite(d / "p3.tif", np.zeros((3, 20, 30), np.uint8), photometric="minisblack")
                or d / "p3.tif"), InputImageError, "dimension Q has size 3 (axes QYX, shape (3, 20, 30)): 3 pages"),
    Case("CMYK TIFF", opener(lambda d: tifffile.imwrite(d / "k.tif", np.zeros((20, 30, 4), np.uint8),
                                                        photometric="separated") or d / "k.tif"),
         InputImageError, "k.tif': TIFF photometric interpretation SEPARATED (a print-ready CMYK file"),
    Case("5 channels", opener(lambda d: make_zarr(d / "a.zarr", (20, 30, 5)), axes="YXC"), InputImageError,
         "5 channels, shape (20, 30, 5), axes YXC"),
    Case("channels and samples both > 1", opener(lambda d: make_zarr(d / "a.zarr", (2, 20, 30, 3)), axes="CYXS"),
         InputImageError, "2 channels of 3 samples each"),
    Case("NaN in float input (found lazily, as read)",
         lambda d: (lambda: compute(images.open_image(make_zarr(d / "f.zarr", (20, 30, 3), "float32",
                                                                float_with(np.nan))))),
         InputImageError, "f.zarr': 1 non-finite values (NaN or inf) in rows 0:20, columns 0:30"),
    Case("inf in float input (check_finite)",
         lambda d: (lambda: images.check_finite(images.as_source(float_with(np.inf)).array, "<array>", "content")
                    .compute()),
         InputImageError, "content='<array>': 1 non-finite values"),
    Case("zero-size image", opener(lambda d: make_zarr(d / "e.zarr", (0, 10, 3))), InputImageError,
         "e.zarr': empty image, shape (0, 10, 3)"),
    Case("int64 dtype", opener(lambda d: make_zarr(d / "i.zarr", (10, 10, 3), "int64")), InputImageError,
         "i.zarr': dtype int64; supported: uint8, uint16, float32"),
    Case("float64 dtype", opener(lambda d: make_zarr(d / "f.zarr", (10, 10, 3), "float64")), InputImageError,
         "dtype float64; supported"),
    Case("NGFF dataset missing",
         opener(lambda d: _ngff_missing(d / "m.zarr")), InputImageError, "NGFF dataset '1' listed in the metadata"),
    # documented handling: accepted
    Case("1 x 1 image (accepted)",
         lambda d: (lambda: images.open_image(Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(d / "p.png")
                                              or d / "p.png")),
         None, lambda src: src.shape == (1, 1, 3) and src.channels == "rgb"),
    Case("1 x 1 RGB Zarr needs --axes (accepted with YXC)",
         opener(lambda d: make_zarr(d / "a.zarr", (1, 1, 3)), axes="YXC"), None, lambda src: src.shape == (1, 1, 3)),
    Case("RGBA (accepted, alpha kept)", opener(lambda d: make_zarr(d / "a.zarr", (20, 30, 4))), None,
         lambda src: src.channels == "rgba"),
    Case("gray (accepted as one channel)", opener(lambda d: make_zarr(d / "a.zarr", (20, 30))), None,
         lambda src: src.channels == "gray" and src.shape == (20, 30, 1)),
    Case("style 1 x 1 (accepted: resized up later)",
         lambda d: (lambda: images.read_style(Image.fromarray(np.full((1, 1, 3), 7, np.uint8)).save(d / "s.png")
                                              or d / "s.png")),
         None, lambda arr: arr.shape == (1, 1, 3) and arr[0, 0, 0] == 7),
    Case("style 20000 x 20000 PNG (over Pillow's limit)",
         lambda d: (lambda: images.read_style(png_header_only(d / "big.png", 20000, 20000))),
         InputImageError, f"big.png': 20000 x 20000 = 400000000 pixels exceeds Pillow's decompression-bomb limit of "
                          f"{Image.MAX_IMAGE_PIXELS} pixels; if you trust this file pass --allow-large-images"),
    Case("float style 0-255 (refused, not clipped to white)",
         lambda d: (lambda: images.read_style(tifffile.imwrite(d / "f.tif", np.full((8, 8, 3), 200.0, np.float32))
                                              or d / "f.tif")),
         InputImageError, "f.tif': float values from 200 to 200; a float image must be in [0, 1]"),
    Case("float style array 0-255", lambda d: (lambda: style_input(np.full((8, 8, 3), 2.0, np.float32), True, False)),
         InputImageError, "style=<array>: float values from 2 to 2"),
    Case("style 20000 x 20000 Zarr (accepted, lazily)",
         lambda d: (lambda: images.open_image(make_zarr(d / "big.zarr", (20000, 20000, 3)), "style")), None,
         lambda src: src.shape == (20000, 20000, 3)),
    # outputs
    Case("existing output without --overwrite",
         lambda d: (lambda: images.write_pyramidal_tiff((d / "o.tif").write_bytes(b"x") and d / "o.tif",
                                                        np.zeros((8, 8, 3), np.uint8))),
         OutputError, "o.tif': already exists; pass --overwrite to replace it"),
    Case("output folder is a regular file",
         lambda d: (lambda: images.write_raster((d / "f").write_text("x") and d / "f" / "o.png",
                                                np.zeros((8, 8, 3), np.uint8))),
         OutputError, "is a file, not a folder"),
    Case("output folder missing",
         lambda d: (lambda: images.write_pyramidal_tiff(d / "nodir" / "o.tif", np.zeros((8, 8, 3), np.uint8))),
         OutputError, "nodir' does not exist"),
    Case("unwritable output folder (/proc: root cannot create files there)",
         lambda d: (lambda: images.write_raster("/proc/urst-dask-test.png", np.zeros((8, 8, 3), np.uint8))),
         OutputError, "output='/proc/urst-dask-test.png': "),
    Case("JPEG export of RGBA", lambda d: (lambda: images.write_raster(d / "o.jpg", np.zeros((8, 8, 4), np.uint8))),
         OutputError, "JPEG has no alpha channel"),
    Case("corrupt weights file (hash mismatch)", lambda d: corrupt_weights(d), WeightsError,
         "does not match the expected"),
]


def _ngff_missing(path: Path) -> Path:
    g = zarr.open_group(str(path), mode="w")
    g.create_array("0", shape=(3, 20, 30), dtype="uint8", chunks=(3, 20, 30))
    g.attrs["ome"] = {"version": "0.5", "multiscales": [{"axes": ["c", "y", "x"],
                                                          "datasets": [{"path": "0"}, {"path": "1"}]}]}
    return path


def test_the_table_is_big_enough():
    assert len(CASES) >= 15 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(tmp_path, case):
    call = case.run(tmp_path)
    if case.error is None:
        assert case.expect(call())
        return
    with pytest.raises(case.error) as info:
        call()
    msg = str(info.value)
    assert isinstance(info.value, UrstError) and "\n" not in msg
    assert case.expect in msg, msg
    assert not list(tmp_path.glob(".*.partial"))  # a failed write leaves nothing behind


def test_unwritable_folder_message_names_the_folder():
    with pytest.raises(OutputError, match=r"(not writable|cannot write in '/proc')"):
        images.write_raster("/proc/urst-dask-test.png", np.zeros((8, 8, 3), np.uint8))


@pytest.mark.parametrize("value, fragment", [(np.nan, "1 non-finite values"), (2.0, "float values from 0 to 2")])
def test_a_bad_pixel_in_a_pyramid_level_is_reported_with_its_level(tmp_path, value, fragment):
    """The rows and columns of a lower level are not the image's: the message says which level."""
    from urst_dask.io.readers import require_unit_range

    g = zarr.open_group(str(tmp_path / "p.zarr"), mode="w")
    g.create_array("0", shape=(3, 64, 80), dtype="float32", chunks=(3, 64, 80))[...] = 0.0
    level1 = np.zeros((3, 32, 40), np.float32)
    level1[0, 20, 30] = value
    g.create_array("1", shape=level1.shape, dtype="float32", chunks=(3, 16, 16))[...] = level1
    axes = [{"name": "c", "type": "channel"}, {"name": "y", "type": "space"}, {"name": "x", "type": "space"}]
    g.attrs["ome"] = {"version": "0.5", "multiscales": [{"axes": axes, "datasets": [
        {"path": p, "coordinateTransformations": [{"type": "scale", "scale": [1, s, s]}]} for p, s in (("0", 1), ("1", 2))]}]}
    src = require_unit_range(images.open_image(tmp_path / "p.zarr"))
    src.array.compute()  # the image itself is clean
    with pytest.raises(InputImageError, match=re.escape(f"p.zarr' pyramid level 1: {fragment}") + ".* in rows 16:32, "
                       "columns 16:32"):
        src.levels[0].compute()
