"""A photograph's or a scan's resolution (dpi) is its pixel size: read from PNG pHYs, JPEG
JFIF/EXIF and TIFF resolution tags, kept in the store's NGFF scale, and written back by every
export, so a print keeps its size.  It was dropped (the README says physical pixel sizes are
carried over; only OME metadata was read)."""

from __future__ import annotations

import json

import pytest
import tifffile
from PIL import Image

from urst_dask.cli import main
from urst_dask.io import images
from urst_dask.testing import random_image

A = random_image(40, 60, seed=8)
UM_300 = 25400 / 300  # micrometres per pixel at 300 dpi


def _exif(orientation: int | None = None, dpi: int | None = None) -> bytes:
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    if dpi:
        exif[282], exif[283], exif[296] = dpi, dpi, 2
    return exif.tobytes()


@pytest.mark.parametrize("name, write, want", [
    ("jfif.jpg", lambda p: Image.fromarray(A).save(p, dpi=(300, 300)), (UM_300, UM_300)),
    ("exif.jpg", lambda p: Image.fromarray(A).save(p, exif=_exif(dpi=300)), (UM_300, UM_300)),
    ("phys.png", lambda p: Image.fromarray(A).save(p, dpi=(150, 300)), (25400 / 300, 25400 / 150)),  # (y, x)
    ("turned.jpg", lambda p: Image.fromarray(A).save(p, dpi=(150, 300), exif=_exif(6)), (25400 / 150, 25400 / 300)),
    ("inch.tif", lambda p: tifffile.imwrite(p, A, resolution=(300, 300), resolutionunit="INCH"), (UM_300, UM_300)),
    ("cm.tif", lambda p: tifffile.imwrite(p, A, resolution=(100, 50), resolutionunit="CENTIMETER"), (200.0, 100.0)),
    ("plain.jpg", lambda p: Image.fromarray(A).save(p), None),
    ("exif-without-resolution.jpg", lambda p: Image.fromarray(A).save(p, exif=_exif(6)), None),  # Pillow says 72
    ("plain.png", lambda p: Image.fromarray(A).save(p), None),
    ("unitless.tif", lambda p: tifffile.imwrite(p, A, resolution=(3, 3), resolutionunit="NONE"), None),
])
def test_the_resolution_is_the_pixel_size(tmp_path, name, write, want):
    write(tmp_path / name)
    got = images.open_image(tmp_path / name).pixel_size
    if want is None:
        assert got is None
    else:
        assert got is not None and got["y"][1] == got["x"][1] == "micrometer"
        assert (got["y"][0], got["x"][0]) == pytest.approx(want, rel=1e-3)  # (PNG: whole pixels per metre)


@pytest.mark.parametrize("source", ["a.jpg", "a.tif"])
def test_a_300_dpi_photograph_keeps_300_dpi_through_the_store_and_every_export(tmp_path, capsys, source):
    content = tmp_path / source
    if source.endswith(".jpg"):
        Image.fromarray(A).save(content, dpi=(300, 300), quality=95)
    else:
        tifffile.imwrite(content, A, resolution=(300, 300), resolutionunit="INCH")
    Image.fromarray(random_image(16, 16, seed=1)).save(tmp_path / "s.png")
    out = tmp_path / "o.zarr"
    assert main(["stylize", str(content), str(tmp_path / "s.png"), "-o", str(out), "--method", "passthrough",
                 "--weights", str(tmp_path), "--no-progress", "--in-process"]) == 0, capsys.readouterr().err
    meta = json.loads((out / "zarr.json").read_text())["attributes"]["ome"]["multiscales"][0]
    assert meta["datasets"][0]["coordinateTransformations"][0]["scale"][1:] == pytest.approx([UM_300, UM_300])
    for suffix in (".png", ".jpg", ".tif"):
        assert main(["export", str(out), str(tmp_path / f"x{suffix}")]) == 0, capsys.readouterr().err
        with Image.open(tmp_path / f"x{suffix}") as im:
            assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01), suffix
