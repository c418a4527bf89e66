"""Embedded ICC colour profiles: an image tagged with a profile other than sRGB is read as a
colour-managed viewer shows it, converted to sRGB (Pillow's ImageCms is the reference here);
they were read as raw numbers, and an Adobe RGB photograph came back washed out."""

from __future__ import annotations

import io
import logging
import struct

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms

from urst_dask.io import frames as frame_io
from urst_dask.io import images

RNG = np.random.default_rng(5)
RGB = RNG.integers(0, 256, (40, 56, 3), dtype=np.uint8)


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


ADOBE_RGB = ((0.6097, 0.3111, 0.0195), (0.2053, 0.6257, 0.0609), (0.1492, 0.0632, 0.7446))  # D50-adapted
SRGB = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))


def wide_gamut_profile(name: bytes = b"Wide test RGB", primaries=ADOBE_RGB, gamma: float = 2.2) -> bytes:
    """A v2 RGB matrix/TRC display profile (default: Adobe RGB (1998)'s D50-adapted primaries
    and a 2.2 gamma), assembled from the ICC specification's tag types."""
    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + bytes(4) + _s15(x) + _s15(y) + _s15(z)

    desc = b"desc" + bytes(4) + struct.pack(">I", len(name) + 1) + name + b"\0" + bytes(4 + 4 + 2 + 1 + 67)
    trc = b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)  # u8Fixed8, padded to 4 bytes
    tags = [(b"desc", desc), (b"wtpt", xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", xyz(*primaries[0])),
            (b"gXYZ", xyz(*primaries[1])), (b"bXYZ", xyz(*primaries[2])),
            (b"rTRC", trc), (b"gTRC", trc), (b"bTRC", trc), (b"cprt", b"text" + bytes(4) + b"none\0\0\0\0")]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body + bytes(-len(body) % 4)
    size = offset + len(data)
    header = (struct.pack(">I", size) + bytes(4) + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ " + bytes(12)
              + b"acsp" + bytes(4 + 4 + 4 + 4 + 8 + 4) + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + bytes(4 + 44))
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


WIDE = wide_gamut_profile()


def viewer(rgb: np.ndarray, icc: bytes) -> np.ndarray:
    """What a colour-managed viewer shows: ``rgb`` converted from ``icc`` to sRGB by Pillow."""
    return np.asarray(ImageCms.profileToProfile(Image.fromarray(rgb), ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                                ImageCms.createProfile("sRGB"), outputMode="RGB"))


def _save(path, rgb: np.ndarray, icc: bytes) -> None:
    if path.suffix == ".tif":
        tifffile.imwrite(path, rgb, photometric="rgb", iccprofile=icc, tile=(16, 16))
    else:
        Image.fromarray(rgb).save(path, icc_profile=icc, **({"quality": 100} if path.suffix == ".jpg" else {}))


@pytest.mark.parametrize("suffix", [".png", ".tif", ".jpg"])
def test_a_wide_gamut_image_is_read_in_srgb(tmp_path, suffix):
    path = tmp_path / f"w{suffix}"
    _save(path, RGB, WIDE)
    stored = np.asarray(Image.open(path).convert("RGB")) if suffix == ".jpg" else RGB
    want = viewer(stored, WIDE)
    got = np.asarray(images.open_image(path).array)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(images.read_style(path), want)  # the style reader too
    assert np.abs(want.astype(int) - stored).mean() > 5  # the conversion is not a no-op here


def test_an_srgb_profile_reads_the_numbers_as_stored(tmp_path):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for suffix in (".png", ".tif"):
        _save(tmp_path / f"s{suffix}", RGB, srgb)
        np.testing.assert_array_equal(np.asarray(images.open_image(tmp_path / f"s{suffix}").array), RGB)


def test_alpha_is_kept_as_stored(tmp_path):
    rgba = np.concatenate([RGB, RNG.integers(0, 256, (40, 56, 1), dtype=np.uint8)], axis=2)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png", icc_profile=WIDE)
    tifffile.imwrite(tmp_path / "a.tif", rgba, photometric="rgb", extrasamples=["unassalpha"], iccprofile=WIDE)
    for name in ("a.png", "a.tif"):
        got = np.asarray(images.open_image(tmp_path / name).array)
        np.testing.assert_array_equal(got[..., 3], rgba[..., 3], name)
        np.testing.assert_array_equal(got[..., :3], viewer(RGB, WIDE), name)


def test_16_bit_colours_are_read_as_stored_with_a_warning(tmp_path, caplog):
    deep = RNG.integers(0, 65536, (40, 56, 3)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "d.tif", deep, photometric="rgb", iccprofile=WIDE)
    with caplog.at_level(logging.WARNING, logger="urst_dask"):
        got = np.asarray(images.open_image(tmp_path / "d.tif").array)
    np.testing.assert_array_equal(got, deep)
    assert "d.tif': its colour profile 'Wide test RGB' is not applied to uint16 x 3 pixels" in caplog.text


def test_frames_are_read_in_srgb_as_stylize_reads_them(tmp_path):
    for name in ("f.png", "f.tif"):
        _save(tmp_path / name, RGB, WIDE)
        np.testing.assert_array_equal(frame_io.read_frame(tmp_path / name), viewer(RGB, WIDE), name)


def test_a_profile_is_judged_by_what_it_does_not_by_its_name(tmp_path):
    """A linear-light profile named "Linear sRGB" (GIMP's) is not sRGB: converted; a profile
    with sRGB's colorimetry under another name reads as stored."""
    linear = wide_gamut_profile(b"GIMP built-in Linear sRGB", SRGB, 1.0)
    _save(tmp_path / "lin.png", RGB, linear)
    np.testing.assert_array_equal(np.asarray(images.open_image(tmp_path / "lin.png").array), viewer(RGB, linear))
    look_alike = wide_gamut_profile(b"My monitor", SRGB, 2.2)  # sRGB's primaries, a plain 2.2 curve: not sRGB
    _save(tmp_path / "alike.png", RGB, look_alike)
    np.testing.assert_array_equal(np.asarray(images.open_image(tmp_path / "alike.png").array), viewer(RGB, look_alike))


def test_a_broken_profile_reads_as_stored_with_one_warning_per_process(tmp_path, caplog):
    from urst_dask.io.readers import icc

    icc._WARNED.clear()
    broken = b"\0" * 200
    _save(tmp_path / "b.tif", RGB, broken)
    _save(tmp_path / "b.png", RGB, broken)
    with caplog.at_level(logging.WARNING, logger="urst_dask"):
        for name in ("b.tif", "b.png", "b.tif"):
            np.testing.assert_array_equal(np.asarray(images.open_image(tmp_path / name).array), RGB, name)
        np.testing.assert_array_equal(frame_io.read_frame(tmp_path / "b.png"), RGB)
    assert caplog.text.count("cannot be read: the colours are read as stored") == 1, caplog.text
    other = b"\1" * 200  # another unreadable profile (the same name, "unreadable"): said too
    _save(tmp_path / "c.tif", RGB, other)
    with caplog.at_level(logging.WARNING, logger="urst_dask"):
        images.open_image(tmp_path / "c.tif")
    assert "c.tif': its colour profile 'unreadable' cannot be read" in caplog.text


def test_a_palette_tiff_with_a_profile_is_converted_as_the_png_is(tmp_path):
    pal = Image.fromarray(RGB).quantize(64)
    indices = np.asarray(pal)
    colours = np.zeros((3, 256), np.uint16)
    colours[:, :64] = np.array(pal.getpalette()[: 64 * 3], np.uint16).reshape(64, 3).T * 257
    tifffile.imwrite(tmp_path / "p.tif", indices, photometric="palette", colormap=colours, iccprofile=WIDE)
    pal.save(tmp_path / "p.png", icc_profile=WIDE)
    want = viewer(np.asarray(pal.convert("RGB")), WIDE)
    for name in ("p.tif", "p.png"):
        np.testing.assert_array_equal(np.asarray(images.open_image(tmp_path / name).array), want, name)


def test_grey_with_a_grey_profile_keeps_its_values_without_a_word(tmp_path, caplog):
    from urst_dask.io.readers import icc

    icc._WARNED.clear()
    grey = RGB[..., 0]
    la = np.stack([grey, 255 - grey], -1)
    gray22 = wide_gamut_profile(b"Gray", SRGB, 2.2).replace(b"mntrRGB XYZ ", b"mntrGRAYXYZ ", 1)  # a grey space
    assert icc.describe(gray22)[0] == "gray"
    Image.fromarray(la, "LA").save(tmp_path / "la.png", icc_profile=gray22)
    with caplog.at_level(logging.WARNING, logger="urst_dask"):
        got = np.asarray(images.open_image(tmp_path / "la.png").array)
    np.testing.assert_array_equal(got, np.stack([grey, grey, grey, 255 - grey], -1))
    assert "colour profile" not in caplog.text
