"""image_pixels reads what an image will be, (H, W, C) and dtype, from its header: it must agree
with what the readers give after decoding, for every Pillow mode they take."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import zarr
from PIL import Image

from urst_dask.errors import InputImageError, OutputError
from urst_dask.io.readers import open_image
from urst_dask.io.readers.peek import image_pixels
from urst_dask.io.targets import check_export_target
from urst_dask.io.writers import write_raster

RNG = np.random.default_rng(3)


def _pil(mode: str, suffix: str, **save):
    def make(path):
        rgb = Image.fromarray(RNG.integers(0, 256, (23, 37, 3), dtype=np.uint8))
        im = rgb.convert("L").convert(mode) if mode in ("1", "I;16", "I") else rgb.convert(mode)
        im.save(path.with_suffix(suffix), **save)
        return path.with_suffix(suffix)
    return make


def _palette_with_transparency(path):
    im = Image.fromarray(RNG.integers(0, 256, (23, 37, 3), dtype=np.uint8)).convert("P")
    p = path.with_suffix(".png")
    im.save(p, transparency=0)
    return p


def _exif_rotated_jpeg(path):
    im = Image.fromarray(RNG.integers(0, 256, (23, 37, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: the decoded image is 37 x 23
    p = path.with_suffix(".jpg")
    im.save(p, exif=exif)
    return p


def _png16(channels: int):
    def make(path):
        p = path.with_suffix(".png")
        write_raster(p, RNG.integers(0, 65536, (23, 37, channels), dtype=np.uint16))
        return p
    return make


def _tiff(path):
    p = path.with_suffix(".tif")
    tifffile.imwrite(p, RNG.random((23, 37, 3), dtype=np.float32), photometric="rgb")
    return p


def _zarr(path):
    p = path.with_suffix(".zarr")
    zarr.create_array(p, shape=(23, 37, 4), dtype="uint16", chunks=(16, 16, 4))[:] = 7
    return p


CASES = {
    "1": _pil("1", ".png"), "L": _pil("L", ".png"), "P": _pil("P", ".png"), "P+transparency": _palette_with_transparency,
    "LA": _pil("LA", ".png"), "RGB png": _pil("RGB", ".png"), "RGBA": _pil("RGBA", ".png"),
    "RGB jpeg": _pil("RGB", ".jpg"), "L jpeg": _pil("L", ".jpg"), "CMYK jpeg": _pil("CMYK", ".jpg"),
    "I;16 png": _pil("I;16", ".png"), "I pgm": _pil("I", ".pgm"), "RGB bmp": _pil("RGB", ".bmp"),
    "RGBA webp": _pil("RGBA", ".webp", lossless=True), "exif-rotated jpeg": _exif_rotated_jpeg,
    "16-bit gray png": _png16(1), "16-bit RGB png": _png16(3), "16-bit RGBA png": _png16(4),
    "float tiff": _tiff, "uint16 zarr": _zarr,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_header_says_what_the_reader_gives(tmp_path, case):
    path = CASES[case](tmp_path / "img")
    src = open_image(path, "content", scratch_dir=tmp_path / "scratch")
    assert image_pixels(path) == (tuple(src.shape), np.dtype(src.array.dtype)), case


def test_an_unreadable_file_is_named(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(InputImageError, match="content='.*bad.jpg'.*not a readable image"):
        image_pixels(bad)


@pytest.mark.parametrize(("case", "target", "message"), [
    ("RGBA", "x.jpg", "JPEG has no alpha channel; export a .png or .tif"),
    ("16-bit RGB png", "x.jpg", "JPEG cannot hold uint16 pixels; export a .tif"),
    ("float tiff", "x.png", "PNG cannot hold float32 pixels; export a .tif"),
    ("float tiff", "x.jpg", "JPEG cannot hold float32 pixels; export a .tif"),
])
def test_an_export_that_cannot_hold_the_output_is_refused_from_the_content_header(tmp_path, case, target, message):
    content = CASES[case](tmp_path / "img")
    with pytest.raises(OutputError, match=f"output='.*{target}': {message}"):
        check_export_target(tmp_path / target, content=content)


@pytest.mark.parametrize(("case", "target"), [("RGBA", "x.png"), ("16-bit RGB png", "x.png"), ("RGB jpeg", "x.jpg"),
                                              ("float tiff", "x.tif"), ("I;16 png", "x.png"), ("L", "x.jpg")])
def test_an_export_that_holds_the_output_is_accepted(tmp_path, case, target):
    content = CASES[case](tmp_path / "img")
    assert check_export_target(tmp_path / target, content=content) == tmp_path / target


def test_the_header_is_read_whatever_pillows_pixel_limit(tmp_path, monkeypatch):
    """Pillow refuses to open an image over twice its limit: the header check reported a huge
    PNG as "not a readable image", even with --allow-large-images; the run applies the limit."""
    path = CASES["RGB png"](tmp_path / "img")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 23 x 37 is over twice that
    assert image_pixels(path) == ((23, 37, 3), np.dtype("uint8"))
    assert Image.MAX_IMAGE_PIXELS == 100  # put back


def test_a_url_is_left_to_the_run():
    """The run opens a URL with its storage options, which the header check does not have."""
    assert image_pixels("http://127.0.0.1:9/img.zarr") is None
