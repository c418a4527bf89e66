"""Frame files: their order, the sample types and layouts refused or read, and EXIF orientation."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from urst_dask.errors import InputImageError
from urst_dask.io import frames as frame_io
from urst_dask.io import images


def _png(path, value: int) -> None:
    Image.fromarray(np.full((8, 10, 3), value, np.uint8)).save(path)


def test_frames_are_listed_in_natural_order_of_their_full_paths(tmp_path):
    for name in ("frame_1.png", "frame_10.png", "frame_2.png", "frame_11.png", "frame_3.png"):
        _png(tmp_path / name, 1)
    names = frame_io.open_frames(tmp_path).names
    assert names == ("frame_1.png", "frame_2.png", "frame_3.png", "frame_10.png", "frame_11.png")
    for shot in ("A", "B"):  # a glob over two folders: one folder after the other, not interleaved
        (tmp_path / shot).mkdir()
        for t in range(3):
            _png(tmp_path / shot / f"f{t:03d}.png", t)
    got = frame_io.open_frames(str(tmp_path / "*" / "f*.png")).paths
    assert [p.split("/")[-2] + "/" + p.split("/")[-1] for p in got] == \
        [f"{s}/f{t:03d}.png" for s in "AB" for t in range(3)]


@pytest.mark.parametrize("data,match", [
    (np.full((8, 10, 3), -5, np.int16), "int16 samples are not supported"),
    (np.full((8, 10, 3), 70000, np.uint32), "uint32 samples are not supported"),
    (np.full((8, 10, 5), 7, np.uint8), "has 5 channels"),  # (2 samples: grey+alpha, RGBA as stylize reads it)
])
def test_unsupported_sample_types_and_channels_are_refused_naming_the_frame(tmp_path, data, match):
    path = tmp_path / "f0.tif"
    tifffile.imwrite(path, data, photometric="minisblack" if data.shape[2] == 2 else "rgb", planarconfig="contig")
    with pytest.raises(InputImageError, match=rf"f0\.tif.*{match}"):
        frame_io.read_header(path)
    with pytest.raises(InputImageError, match=rf"f0\.tif.*{match}"):
        frame_io.read_frame(path)


def test_planar_tiff_frames_are_read_with_their_axes_and_stacks_refused(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (8, 10, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "p.tif", np.moveaxis(rgb, 2, 0), photometric="rgb", planarconfig="separate")
    head = frame_io.read_header(tmp_path / "p.tif")
    assert (head.height, head.width, head.channels) == (8, 10, 3)
    np.testing.assert_array_equal(frame_io.read_frame(tmp_path / "p.tif"), rgb)
    tifffile.imwrite(tmp_path / "s.tif", np.stack([rgb, rgb]), photometric="rgb")
    with pytest.raises(InputImageError, match=r"s\.tif.*one 2-D image"):
        frame_io.read_header(tmp_path / "s.tif")


def test_exif_orientation_is_applied_as_stylize_applies_it(tmp_path):
    base = np.random.default_rng(1).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(base).save(tmp_path / "a.jpg", quality=100, exif=exif.tobytes())
    Image.fromarray(base[..., 0].astype(np.uint16) * 257).save(tmp_path / "b.png", exif=exif.tobytes())
    Image.fromarray(base).save(tmp_path / "c.png", exif=exif.tobytes())
    for name in ("a.jpg", "b.png", "c.png"):
        head, pixels = frame_io.read_header(tmp_path / name), frame_io.read_frame(tmp_path / name)
        assert (head.height, head.width, head.channels) == pixels.shape, name
        assert pixels.shape[:2] == (60, 40), name
        np.testing.assert_array_equal(pixels, np.asarray(images.open_image(tmp_path / name).array), name)


def _tiff_frames(d):
    """TIFF frames whose stored samples are not the picture, each as a viewer shows it."""
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)
    grey = rgb[..., 0].copy()
    tifffile.imwrite(d / "o6.tif", rgb, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    tifffile.imwrite(d / "w.tif", grey, photometric="miniswhite")
    tifffile.imwrite(d / "p.tif", grey, photometric="palette", colormap=rng.integers(0, 256, (3, 256)).astype(np.uint16) * 257)
    tifffile.imwrite(d / "la.tif", np.stack([grey, 255 - grey], -1), photometric="minisblack",
                     extrasamples=["unassalpha"])
    return ("o6.tif", "w.tif", "p.tif", "la.tif")


def test_tiff_frames_are_the_picture_stylize_reads(tmp_path):
    """Orientation, min-is-white, palette and grey+alpha TIFF frames were read as stored samples
    (a sideways frame, a negative, palette indices as grey): now as urst-dask stylize reads them."""
    for name in _tiff_frames(tmp_path):
        head, pixels = frame_io.read_header(tmp_path / name), frame_io.read_frame(tmp_path / name)
        want = np.asarray(images.open_image(tmp_path / name).array)
        assert (head.height, head.width, head.channels, head.dtype) == (*want.shape, str(want.dtype)), name
        np.testing.assert_array_equal(pixels, want, name)
    assert frame_io.read_frame(tmp_path / "o6.tif").shape == (20, 12, 3)


def test_cmyk_tiff_frames_are_refused_as_stylize_refuses_them(tmp_path):
    cmyk = np.random.default_rng(3).integers(0, 256, (8, 10, 4), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "k.tif", cmyk, photometric="separated")
    with pytest.raises(InputImageError, match=r"frame='.*k\.tif': TIFF photometric interpretation SEPARATED"):
        frame_io.read_header(tmp_path / "k.tif")


def test_a_tiff_frame_is_known_by_its_bytes_whatever_its_name(tmp_path):
    """A 16-bit TIFF frame named .jpg went to Pillow and became 8-bit (stylize reads it whole)."""
    deep = np.random.default_rng(4).integers(0, 65536, (8, 10, 3)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "f.jpg", deep, photometric="rgb")
    head = frame_io.read_header(tmp_path / "f.jpg")
    assert (head.height, head.width, head.channels, head.dtype) == (8, 10, 3, "uint16")
    np.testing.assert_array_equal(frame_io.read_frame(tmp_path / "f.jpg"), deep)


def test_a_tiff_frame_of_several_images_is_refused(tmp_path):
    """Pages written one by one, or a two-image OME-TIFF: only the first image was stylized, the
    others dropped without a word (the README says a multi-image TIFF is refused)."""
    grey = np.random.default_rng(5).integers(0, 256, (3, 12, 20), dtype=np.uint8)
    with tifffile.TiffWriter(tmp_path / "pages.tif") as tif:
        for page in grey:
            tif.write(page, photometric="minisblack")
    with tifffile.TiffWriter(tmp_path / "two.ome.tif", ome=True) as tif:
        for _ in range(2):
            tif.write(np.zeros((12, 20, 3), np.uint8), photometric="rgb")
    for name, count in (("pages.tif", 3), ("two.ome.tif", 2)):
        with pytest.raises(InputImageError, match=rf"{name}': holds {count} images .* a frame must be one image"):
            frame_io.read_header(tmp_path / name)
    with tifffile.TiffWriter(tmp_path / "masked.tif") as tif:  # an image and its transparency mask (GDAL's): read
        tif.write(np.stack([grey[0]] * 3, -1), photometric="rgb", metadata=None)
        tif.write(np.full((12, 20), 255, np.uint8), photometric="minisblack", metadata=None,
                  extratags=[(254, 4, 1, 4, True)])  # NewSubfileType 4: a transparency mask
    assert frame_io.read_frame(tmp_path / "masked.tif").shape == (12, 20, 3)
    with tifffile.TiffWriter(tmp_path / "pyramid.tif") as tif:  # one image with a reduced level: read
        tif.write(grey[0], photometric="minisblack", subifds=1)
        tif.write(grey[0][::2, ::2], photometric="minisblack", subfiletype=1)
    np.testing.assert_array_equal(frame_io.read_frame(tmp_path / "pyramid.tif")[..., 0], grey[0])
