"""Exports and decoders the user can trust: OME-XML that always parses, 16-bit PNG kept at 16
bits, TIFF compression options (issue 10)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

import urst_dask
from urst_dask.io import images, ome


def ome_zarr_gray(path: Path, image: np.ndarray, label: str) -> Path:
    """A one-channel OME-Zarr 0.5 image (c, y, x) whose omero channel label is ``label``."""
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    root.create_array("0", shape=(1,) + image.shape, dtype=image.dtype, chunks=(1,) + image.shape,
                      dimension_names=("c", "y", "x"))[...] = image[None]
    ms = {"axes": [{"name": "c", "type": "channel"}, {"name": "y", "type": "space", "unit": "micrometer"},
                   {"name": "x", "type": "space", "unit": "micrometer"}],
          "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 0.5, 0.5]}]}]}
    root.attrs.update({"ome": {"version": "0.5", "multiscales": [ms], "omero": {"channels": [{"label": label}]}}})
    return path


def test_xml_text_drops_only_what_xml_forbids():
    assert ome.xml_text("DAPI\x07\x00 <a & b>\t\n\r\ufffe\ud800µm\U0001f600") == "DAPI <a & b>\t\n\rµm\U0001f600"
    assert ome.xml_text("plain") == "plain"


@pytest.mark.parametrize("label", ["DAPI\x07", "\x00DAPI\x1f<&>\"'"])
def test_control_characters_in_a_channel_label_leave_the_ome_xml_parseable(tmp_path, client, style_image, label):
    """An OME-Zarr input whose channel label holds a control character, stylized with the toy
    identity network and exported to an OME-TIFF (also named with a control character): the
    OME-XML parses, and keeps the label and the name without the forbidden characters."""
    image = np.random.default_rng(5).integers(0, 256, size=(70, 90), dtype=np.uint8)
    content = ome_zarr_gray(tmp_path / "in.zarr", image, label)
    out = urst_dask.stylize(content, style_image, tmp_path / "out.zarr", method="identity", weights=tmp_path,
                            client=client, stride=32, margin=4)
    assert images.open_image(out, "store").channel_names == (label,)  # carried as it is
    tif = urst_dask.export(out, tmp_path / "o\x07ut.tif")
    with tifffile.TiffFile(tif) as tf:
        description = tf.pages[0].description
        np.testing.assert_array_equal(tf.asarray(), image)
    root = ET.fromstring(description)  # raised "not well-formed (invalid token)" before
    ns = {"ome": root.tag[1:].split("}")[0]}
    assert root.find("ome:Image", ns).get("Name") == "out"
    channel = root.find("ome:Image/ome:Pixels/ome:Channel", ns)
    assert channel.get("Name") == "".join(ch for ch in label if ch >= " ")
    pixels = root.find("ome:Image/ome:Pixels", ns)
    assert (pixels.get("PhysicalSizeX"), pixels.get("PhysicalSizeXUnit")) == ("0.5", "µm")


# ------------------------------------------------------------------------ 16-bit PNG


def png16(path: Path, pixels: np.ndarray, exif: bytes | None = None) -> Path:
    """A 16-bit PNG written by hand (IHDR, optional eXIf, one IDAT with filter 0 rows): gray
    (H, W) or (H, W, 1), gray+alpha (H, W, 2), RGB (H, W, 3) or RGBA (H, W, 4)."""
    import struct
    import zlib

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    a = pixels.reshape(pixels.shape[0], pixels.shape[1], -1)
    h, w, c = a.shape
    rows = np.ascontiguousarray(a.astype(">u2")).view(np.uint8).reshape(h, w * c * 2)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()
    head = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 2: 4, 3: 2, 4: 6}[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + (chunk(b"eXIf", exif) if exif else b"")
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def exif_orientation(value: int) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()[6:]  # eXIf holds the TIFF structure without the "Exif\0\0" prefix


@pytest.mark.parametrize("c, channels", [(1, "gray"), (3, "rgb"), (4, "rgba")])
def test_16_bit_png_keeps_16_bits(tmp_path, c, channels):
    """Pillow reads 16-bit RGB/RGBA PNGs as 8 bits; open_image keeps every 16-bit value."""
    pixels = np.random.default_rng(c).integers(0, 65536, size=(37, 29, c), dtype=np.uint16)
    pixels[0, 0] = 65535
    pixels[0, 1] = 257  # would be 1 at 8 bits
    src = images.open_image(png16(tmp_path / "p.png", pixels))
    assert (src.format, src.channels, src.shape, src.array.dtype) == ("png", channels, (37, 29, c), np.uint16)
    np.testing.assert_array_equal(src.array.compute(), pixels)


def test_16_bit_gray_alpha_png_becomes_rgba_at_16_bits(tmp_path):
    la = np.random.default_rng(9).integers(0, 65536, size=(20, 30, 2), dtype=np.uint16)
    out = images.open_image(png16(tmp_path / "la.png", la)).array.compute()
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, la[..., [0, 0, 0, 1]])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_16_bit_png_exif_orientation_matches_the_8_bit_path(tmp_path, orientation):
    """Pillow applies the orientation to the 8-bit PNG; the 16-bit decoder must agree."""
    from PIL import Image

    img8 = np.random.default_rng(orientation).integers(0, 256, size=(12, 20, 3), dtype=np.uint8)
    Image.fromarray(img8).save(tmp_path / "p8.png", exif=exif_orientation(orientation))
    png16(tmp_path / "p16.png", img8.astype(np.uint16) * 257, exif=exif_orientation(orientation))
    a8 = images.open_image(tmp_path / "p8.png").array.compute()
    a16 = images.open_image(tmp_path / "p16.png").array.compute()
    assert a16.dtype == np.uint16 and a16.shape == a8.shape
    np.testing.assert_array_equal(a16, a8.astype(np.uint16) * 257)


@pytest.mark.parametrize("c", [1, 3, 4])
def test_uint16_store_exports_a_16_bit_png_that_reads_back_exactly(tmp_path, client, style_image, c):
    pixels = np.random.default_rng(20 + c).integers(0, 65536, size=(50, 70, c), dtype=np.uint16)
    out = urst_dask.stylize(pixels, style_image, tmp_path / "o.zarr", method="identity", weights=tmp_path,
                            client=client, stride=32, margin=4)
    png_path = urst_dask.export(out, tmp_path / "o.png")
    assert png_path.read_bytes()[24] == 16  # IHDR bit depth
    back = images.open_image(png_path)
    assert back.array.dtype == np.uint16
    np.testing.assert_array_equal(back.array.compute(), pixels)
