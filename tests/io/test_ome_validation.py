"""The output store validated as an OME-Zarr image by an independent implementation,
``ome-zarr-models`` (a test dependency: the ``test`` extra), rather than by our own reader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import urst_dask
from urst_dask.testing import random_image

ome_image = pytest.importorskip("ome_zarr_models.v05.image",
                                reason="ome-zarr-models is not installed (pip install -e '.[test]')")


def ngff_input(path: Path, image: np.ndarray, pixel: float) -> Path:
    """A (c, y, x) OME-Zarr 0.5 input with ``pixel`` micrometer pixels."""
    g = zarr.open_group(str(path), mode="w")
    arr = g.create_array("0", shape=(image.shape[2], *image.shape[:2]), dtype=image.dtype,
                         chunks=(image.shape[2], 32, 32), dimension_names=("c", "y", "x"))
    arr[...] = np.moveaxis(image, 2, 0)
    g.attrs["ome"] = {"version": "0.5", "multiscales": [{
        "axes": [{"name": "c", "type": "channel"}, {"name": "y", "type": "space", "unit": "micrometer"},
                 {"name": "x", "type": "space", "unit": "micrometer"}],
        "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1.0, pixel, pixel]}]}]}]}
    return path


@pytest.mark.parametrize("content, channels, dtype", [
    ("array", 3, "uint8"), ("array", 1, "uint16"), ("array", 4, "uint8"), ("ngff", 3, "uint8"),
])
def test_output_store_is_a_valid_ome_zarr_image(tmp_path: Path, client: Any, style_image: np.ndarray, content: str,
                                                channels: int, dtype: str) -> None:
    image = random_image(300, 280, seed=11, dtype=np.dtype(dtype))
    image = image[..., :1] if channels == 1 else (np.concatenate([image, image[..., :1]], axis=2)
                                                  if channels == 4 else image)
    source: Any = ngff_input(tmp_path / "in.zarr", image, 0.25) if content == "ngff" else image
    out = urst_dask.stylize(source, style_image, tmp_path / "out.zarr", method="identity", weights=tmp_path,
                            client=client, stride=128, margin=8, thumb_size=64)
    group = zarr.open_group(str(out), mode="r")
    model = ome_image.Image.from_zarr(group)  # raises pydantic's ValidationError on any violation
    multiscale = model.ome_attributes.multiscales[0]
    paths = [ds.path for ds in multiscale.datasets]
    assert paths[0] == "0" and len(paths) >= 2, paths  # 300 px > 256: one pyramid level below the image
    assert [a.name for a in multiscale.axes] == ["c", "y", "x"]
    for level, path in enumerate(paths):
        arr = group[path]
        assert arr.shape[0] == channels and arr.dtype == np.dtype(dtype), (path, arr.shape, arr.dtype)
        scale = multiscale.datasets[level].coordinateTransformations[0].scale
        base = 0.25 if content == "ngff" else 1.0
        assert list(scale)[1:] == [base * 2 ** level] * 2, (path, scale)


def test_the_validator_rejects_a_store_whose_metadata_lost_its_axes(tmp_path: Path, client: Any,
                                                                   style_image: np.ndarray) -> None:
    """The check above can fail: the same kind of store, with its NGFF axes removed, is refused."""
    out = urst_dask.stylize(random_image(40, 50, seed=12), style_image, tmp_path / "out.zarr", method="identity",
                            weights=tmp_path, client=client, stride=32, margin=4)
    group = zarr.open_group(str(out), mode="r+")
    ome = dict(group.attrs["ome"])
    ome["multiscales"] = [{k: v for k, v in ms.items() if k != "axes"} for ms in ome["multiscales"]]
    group.attrs["ome"] = ome
    with pytest.raises(ValueError):  # pydantic's ValidationError is a ValueError
        ome_image.Image.from_zarr(zarr.open_group(str(out), mode="r"))


# ------------------------------------------- the TIFF export's OME-XML against the OME schema


@pytest.mark.parametrize("channels, dtype", [(3, "uint8"), (1, "uint16"), (4, "uint8"), (3, "float32")])
def test_tiff_export_ome_xml_validates_against_the_ome_schema(tmp_path: Path, client: Any, style_image: np.ndarray,
                                                              channels: int, dtype: str) -> None:
    """The OME-XML of ``export .tif`` is valid against the OME 2016-06 XSD (``ome-types``'s
    validator, a test dependency), for RGB, gray uint16 with pixel sizes, RGBA and float."""
    ome_types = pytest.importorskip("ome_types", reason="ome-types is not installed (pip install -e '.[test]')")
    import tifffile

    image = random_image(90, 120, seed=12, dtype=np.dtype(dtype))
    image = image[..., :1] if channels == 1 else (np.concatenate([image, image[..., :1]], axis=2)
                                                  if channels == 4 else image)
    source: Any = ngff_input(tmp_path / "in.zarr", image, 0.5) if channels == 1 else image
    out = urst_dask.stylize(source, style_image, tmp_path / "out.zarr", method="identity", weights=tmp_path,
                            client=client, stride=64, margin=8, thumb_size=32)
    tif = urst_dask.export(out, tmp_path / "out.tif")
    with tifffile.TiffFile(tif) as tf:
        xml = tf.pages[0].description
    ome_types.validate_xml(xml)  # raises on any schema violation
    ome = ome_types.from_xml(xml)
    pixels = ome.images[0].pixels
    assert (pixels.size_x, pixels.size_y, pixels.size_c) == (120, 90, channels)
    if channels == 1:
        assert pixels.physical_size_x == pytest.approx(0.5)


def test_the_schema_check_can_fail() -> None:
    """The control: OME-XML missing a required attribute (SizeX) is refused by the validator."""
    ome_types = pytest.importorskip("ome_types", reason="ome-types is not installed (pip install -e '.[test]')")
    xml = ('<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
           '<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint8" SizeY="2" SizeC="1" '
           'SizeZ="1" SizeT="1"><TiffData/></Pixels></Image></OME>')
    with pytest.raises(Exception, match="SizeX"):
        ome_types.validate_xml(xml)
