"""The stroke-size metric: dominant texture wavelength, checked on stripes of known wavelength."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from urst_dask.cli import main
from urst_dask.errors import ParameterError
from urst_dask.metrics import stroke_size
from urst_dask.pipeline.quality import compare


def stripes(wavelength: float, angle: float, h: int = 300, w: int = 340, phase: float = 0.0) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    v = 0.5 + 0.4 * np.sin(2 * np.pi * (x * math.cos(angle) + y * math.sin(angle)) / wavelength + phase)
    return np.repeat(v[..., None], 3, axis=2)


def close(measured: float, expected: float, rel: float = 0.05) -> bool:
    return abs(measured - expected) <= rel * expected


@settings(max_examples=25, deadline=None)
@given(wavelength=st.floats(2.5, 45.0), angle=st.floats(0.0, math.pi), phase=st.floats(0.0, 6.28))
def test_stripes_measure_their_wavelength(wavelength, angle, phase):
    r = stroke_size(stripes(wavelength, angle, phase=phase), tile=256)
    assert close(r["wavelength"], wavelength), (wavelength, r)
    assert close(r["centroid"], wavelength, 0.08), (wavelength, r)


@settings(max_examples=15, deadline=None)
@given(wavelength=st.floats(4.0, 30.0), scale=st.sampled_from([np.uint8, np.uint16, np.float32]))
def test_dtype_and_contrast_do_not_matter(wavelength, scale):
    img = stripes(wavelength, 0.3)
    if scale is not np.float32:
        img = (img * np.iinfo(scale).max).astype(scale)
    else:
        img = (img * 0.1).astype(np.float32)  # low contrast
    assert close(stroke_size(img, tile=256)["wavelength"], wavelength)


def test_control_the_check_can_fail():
    """The metric separates 8 px from 32 px stripes, and white noise is not a stripe image:
    a measure that returned a constant would fail here."""
    a = stroke_size(stripes(8.0, 0.0), tile=256)["wavelength"]
    b = stroke_size(stripes(32.0, 0.0), tile=256)["wavelength"]
    assert close(a, 8.0) and close(b, 32.0)
    assert not close(a, 32.0) and not close(b, 8.0)
    noise = np.random.default_rng(0).random((256, 256, 3))
    n = stroke_size(noise, tile=256)["wavelength"]
    assert n == pytest.approx(2.0, abs=0.3) and not close(n, 8.0)


def test_a_dask_image_measures_as_the_numpy_one_its_tiles_read_one_by_one(monkeypatch):
    """metrics take numpy; urst_dask.pipeline.quality reads a Dask image's few tiles and hands them over."""
    import dask.array as da

    from urst_dask.pipeline import quality

    img = (stripes(12.0, 0.7, 1100, 1300) * 255).astype(np.uint8)
    read = []
    real = quality._stroke_tiles

    def spy(image, origins, side):
        for tile in real(image, origins, side):
            read.append(tile.shape)
            yield tile

    monkeypatch.setattr(quality, "_stroke_tiles", spy)
    got = quality.stroke_size(da.from_array(img, chunks=(300, 300, 3)))
    assert got == stroke_size(img)
    assert read == [(512, 512, 3)] * 4  # 2 x 2 tiles of 512 px fit in 1100 x 1300, never the whole image


def test_larger_strokes_give_a_longer_wavelength():
    """Blobs blurred at two scales (a stand-in for small and big brush strokes)."""
    rng = np.random.default_rng(1)
    base = rng.random((64, 64))
    small = np.kron(base, np.ones((4, 4)))  # 4-px cells
    big = np.kron(base, np.ones((16, 16)))[:256, :256]  # 16-px cells
    assert stroke_size(big, tile=256)["wavelength"] > 2 * stroke_size(small, tile=256)["wavelength"]


def test_long_wavelengths_are_capped_at_the_band_end():
    r = stroke_size(stripes(200.0, 0.0, 256, 256), tile=256)
    assert r["wavelength"] == pytest.approx(256 / 4, rel=0.05)


def test_flat_and_tiny_images():
    assert math.isnan(stroke_size(np.full((64, 64, 3), 0.5))["wavelength"])
    with pytest.raises(ParameterError, match="too small"):
        stroke_size(np.zeros((8, 100, 3)))
    with pytest.raises(ParameterError, match="expected"):
        stroke_size(np.zeros((4, 64, 64, 3)))


def test_compare_reports_stroke_size(tmp_path, capsys):
    img = (stripes(12.0, 0.7, 200, 220) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "s.png")
    figures = compare(tmp_path / "s.png")
    assert close(figures["stroke"]["wavelength"], 12.0)
    assert main(["compare", str(tmp_path / "s.png")]) == 0
    assert "stroke size: 12." in capsys.readouterr().out
