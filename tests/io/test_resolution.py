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


def _exif_tags(tags: dict[int, int]) -> bytes:
    exif = Image.Exif()
    for code, value in tags.items():
        exif[code] = value
    return exif.tobytes()


@pytest.mark.parametrize("name, write, want", [
    ("jfif.jpg", lambda p: Image.fromarray(A).save(p, dpi=(300, 300)), (UM_300, UM_300)),
    ("exif.jpg", lambda p: Image.fromarray(A).save(p, exif=_exif(dpi=300)), (UM_300, UM_300)),
    ("phys.png", lambda p: Image.fromarray(A).save(p, dpi=(150, 300)), (25400 / 300, 25400 / 150)),  # (y, x)
    ("turned.jpg", lambda p: Image.fromarray(A).save(p, dpi=(150, 300), exif=_exif(6)), (25400 / 150, 25400 / 300)),
    ("inch.tif", lambda p: tifffile.imwrite(p, A, resolution=(300, 300), resolutionunit="INCH"), (UM_300, UM_300)),
    ("cm.tif", lambda p: tifffile.imwrite(p, A, resolution=(100, 50), resolutionunit="CENTIMETER"), (200.0, 100.0)),
    ("exif-no-unit.jpg", lambda p: Image.fromarray(A).save(p, exif=_exif_tags({282: 300, 283: 300})),
     (UM_300, UM_300)),  # EXIF's default unit is the inch (Pillow said 72 dpi)
    ("exif-204x98.jpg", lambda p: Image.fromarray(A).save(p, exif=_exif_tags({282: 204, 283: 98, 296: 2})),
     (25400 / 98, 25400 / 204)),  # (Pillow copies x to y)
    ("unit-count-2.tif", lambda p: tifffile.imwrite(p, A, resolution=(300, 300), extratags=[(296, 3, 2, (2, 2))]),
     (UM_300, UM_300)),  # was refused: "not a readable TIFF (TypeError ...)"
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


@pytest.mark.parametrize("micrometres, png_dpi, jpeg_dpi", [
    (0.1, (254000, 254000), None),  # a microscope's pixel: beyond JPEG's 16-bit density (it wrapped to 57392)
    (1e-4, None, None),  # 1 angstrom: beyond PNG's 32-bit pixels per metre (a struct.error traceback)
    (1e9, None, None),  # 1 km: less than one pixel per metre (PNG said 0 dpi)
])
def test_a_resolution_a_format_cannot_hold_is_left_out_never_wrapped(tmp_path, micrometres, png_dpi, jpeg_dpi):
    from urst_dask.io import ome, writers

    dpi = ome.dots_per_inch({"y": (micrometres, "micrometer"), "x": (micrometres, "micrometer")})
    for suffix, want in ((".png", png_dpi), (".jpg", jpeg_dpi)):
        writers.write_raster(tmp_path / f"x{suffix}", A, dpi=dpi)
        with Image.open(tmp_path / f"x{suffix}") as im:
            got = im.info.get("dpi")
        assert (got is None) if want is None else got == pytest.approx(want, rel=1e-4), (suffix, got)


class _Tag:
    def __init__(self, value):
        self.value = value


@pytest.mark.parametrize("tags, want", [
    ({282: (300.0,), 283: (150.0,), 296: 2}, (25400 / 150, UM_300)),  # DOUBLE resolutions: was dropped
    ({282: (300, 1), 283: (300, 0), 296: 2}, None),  # a zero denominator
    ({282: (300, 1), 283: (300, 1), 296: (3, 3)}, (10000 / 300, 10000 / 300)),  # a unit of count 2
    ({282: (300, 1), 283: (300, 1), 296: "inch"}, None),  # nonsense: no pixel size, and no refusal
])
def test_odd_resolution_tags_cost_the_pixel_size_never_the_image(tags, want):
    from types import SimpleNamespace

    from urst_dask.io.readers.tiff import _tag_pixel_size

    got = _tag_pixel_size(SimpleNamespace(tags={code: _Tag(v) for code, v in tags.items()}))
    if want is None:
        assert got is None
    else:
        assert (got["y"][0], got["x"][0]) == pytest.approx(want)
