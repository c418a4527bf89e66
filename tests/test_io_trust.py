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
from urst_dask.io import ome


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
    assert urst_dask.io.images.open_image(out, "store").channel_names == (label,)  # carried as it is
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
