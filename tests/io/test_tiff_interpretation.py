"""A TIFF is read as the picture a viewer shows (Pillow as the reference): min-is-white grey
inverted, palette indices looked up, the Orientation tag applied; what needs colour
management (CMYK) is refused (tests/io/test_io_bad_input.py)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from urst_dask.io import images

RNG = np.random.default_rng(11)
RGB = RNG.integers(0, 256, (37, 53, 3), dtype=np.uint8)
GREY = RGB[..., 0].copy()


def pil_rgb(path) -> np.ndarray:
    return np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_tag_turns_the_picture_as_pillow_does(tmp_path, orientation):
    path = tmp_path / f"o{orientation}.tif"
    tifffile.imwrite(path, RGB, photometric="rgb", tile=(16, 16), extratags=[(274, "H", 1, orientation, True)])
    got = images.open_image(path).array.compute()
    np.testing.assert_array_equal(got, pil_rgb(path))
    np.testing.assert_array_equal(images.read_style(path), got)  # the style reader: the same picture


def test_min_is_white_grey_is_inverted(tmp_path):
    path = tmp_path / "w.tif"
    tifffile.imwrite(path, GREY, photometric="miniswhite")
    got = images.open_image(path).array.compute()
    assert got.shape == (37, 53, 1)
    np.testing.assert_array_equal(got[..., 0], 255 - GREY)
    np.testing.assert_array_equal(images.as_rgb(got), pil_rgb(path))


def test_palette_is_looked_up(tmp_path):
    eight = tmp_path / "p8.tif"  # the common palette: 8-bit colours stored as v * 257
    colours = RNG.integers(0, 256, (3, 256)).astype(np.uint16) * 257
    tifffile.imwrite(eight, GREY, photometric="palette", colormap=colours)
    src = images.open_image(eight)
    assert (src.channels, str(src.array.dtype)) == ("rgb", "uint8")
    np.testing.assert_array_equal(src.array.compute(), pil_rgb(eight))
    sixteen = tmp_path / "p16.tif"  # full 16-bit colours stay 16-bit
    deep = RNG.integers(0, 65536, (3, 256)).astype(np.uint16)
    tifffile.imwrite(sixteen, GREY, photometric="palette", colormap=deep)
    got = images.open_image(sixteen).array.compute()
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, deep.T[GREY])


def test_grey_with_alpha_becomes_rgba_as_a_grey_alpha_png_does(tmp_path):
    path = tmp_path / "la.tif"
    la = np.stack([GREY, 255 - GREY], axis=-1)
    tifffile.imwrite(path, la, photometric="minisblack", extrasamples=["unassalpha"], tile=(16, 16))
    src = images.open_image(path)
    assert src.channels == "rgba"
    got = src.array.compute()
    np.testing.assert_array_equal(got, np.asarray(Image.open(path).convert("RGBA")))
    np.testing.assert_array_equal(images.read_style(path), got[..., :3])  # the style reader: RGB of it


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_premultiplied_alpha_is_divided_out(tmp_path, dtype):
    full = np.iinfo(dtype).max
    alpha = RNG.integers(0, full + 1, (37, 53, 1)).astype(dtype)
    alpha[0, :5] = 0  # fully transparent: colours 0
    straight = RNG.integers(0, full + 1, (37, 53, 3)).astype(dtype)
    stored = np.rint(straight.astype(np.float64) * alpha / full).astype(dtype)
    path = tmp_path / "pm.tif"
    tifffile.imwrite(path, np.concatenate([stored, alpha], -1), photometric="rgb", extrasamples=["assocalpha"],
                     tile=(16, 16))
    got = images.open_image(path).array.compute()
    np.testing.assert_array_equal(got[..., 3], alpha[..., 0])  # alpha as stored
    assert not got[0, :5, :3].any()
    opaque = alpha[..., 0] > full // 4  # where the stored colours keep enough bits to recover them
    assert np.abs(got[..., :3].astype(np.int64) - straight)[opaque].max() <= 2
    if dtype == np.uint8:  # Pillow divides the alpha out too
        ref = np.asarray(Image.open(path).convert("RGBA")).astype(np.int64)
        assert np.abs(got.astype(np.int64) - ref).max() <= 1
    np.testing.assert_array_equal(images.read_style(path), got[..., :3])


def test_a_tiff_is_known_by_its_bytes_whatever_its_name(tmp_path):
    """A TIFF named .jpg (or .dng, .nef...) went to Pillow: 16-bit samples became 8-bit and only
    the first page was read."""
    deep = RNG.integers(0, 65536, (37, 53, 3)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "deep.jpg", deep, photometric="rgb")
    got = images.open_image(tmp_path / "deep.jpg")
    assert got.array.dtype == np.uint16
    np.testing.assert_array_equal(got.array.compute(), deep)


def test_a_reduced_resolution_first_image_is_refused(tmp_path):
    """A camera raw file (DNG) starts with a small preview (NewSubfileType 1); its picture is
    elsewhere: it was stylized as the 53 x 37 preview, exit 0."""
    from urst_dask.errors import InputImageError

    path = tmp_path / "camera.dng"
    with tifffile.TiffWriter(path) as tif:
        tif.write(RGB, photometric="rgb", subfiletype=1, extratags=[(50706, "B", 4, (1, 4, 0, 0), True)])
    with pytest.raises(InputImageError, match=r"camera\.dng': its first image is a reduced-resolution preview "
                                              r"\(53 x 37\), not the picture \(a camera raw file"):
        images.open_image(path)
