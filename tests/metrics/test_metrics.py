"""Quality metrics: seam score, PSNR, SSIM, statistics distance; ``compare`` in Python and CLI."""

from __future__ import annotations

import re

import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from urst_dask import metrics
from urst_dask.cli import main
from urst_dask.errors import ParameterError
from urst_dask.pipeline.quality import compare, quality
from urst_dask.stats import NormStats
from urst_dask.testing import random_image


def _smooth(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth gradient with mild noise: every line differs from its neighbour about alike."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = 60 + 100 * (x / w) + 50 * np.sin(y / 37.0)
    return np.clip(base[..., None] + rng.normal(0, 3, (h, w, 3)), 0, 255).astype(np.uint8)


def test_seam_score_is_about_one_without_seams_and_high_with_them():
    image = _smooth(400, 500)
    clean = metrics.seam_score(image, 100)
    assert 0.9 < clean < 1.1
    seamy = image.astype(np.int16)
    for b in (100, 200, 300, 400):  # shift every tile's brightness: steps at the boundaries
        seamy[:, b:] += 6
        seamy[b:] += 4 if b < 400 else 0
    score = metrics.seam_score(np.clip(seamy, 0, 255).astype(np.uint8), 100)
    assert score > 1.5
    # measured at other lines (a stride the tiles do not have), the same image looks clean
    assert metrics.seam_score(np.clip(seamy, 0, 255).astype(np.uint8), 130) < 1.1


def test_seam_score_skips_boundaries_near_the_edge_and_refuses_images_without_any():
    image = _smooth(90, 90)
    with pytest.raises(ParameterError, match="no tile boundary"):
        metrics.seam_score(image, 60)  # x = 60 is 30 px from the edge: closer than 48
    assert metrics.seam_lines((200, 90, 3), 100) == {0: ([100], [84, 116, 68, 132, 52, 148])}


def test_psnr_and_ssim_known_values():
    a = random_image(64, 80, seed=1)
    assert metrics.psnr(a, a) == float("inf")
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    b = a.astype(np.int16)
    b[::2] += 10
    b = np.clip(b, 0, 255).astype(np.uint8)
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    assert metrics.psnr(b, a) == pytest.approx(10 * np.log10(255**2 / mse))
    assert 0.5 < metrics.ssim(b, a) < 1.0
    with pytest.raises(ParameterError, match="shapes"):
        metrics.psnr(a, a[:10])


@settings(max_examples=25, deadline=None)
@given(h=st.integers(7, 60), w=st.integers(7, 60), cy=st.integers(4, 30), cx=st.integers(4, 30),
       seed=st.integers(0, 999))
def test_blockwise_ssim_equals_the_whole_image_ssim(h, w, cy, cx, seed):
    """The out-of-core form (blocks overlapped by the window radius) adds up exactly."""
    a, b = random_image(h, w, seed=seed), random_image(h, w, seed=seed + 1)
    whole = metrics.ssim(a, b)
    lazy = quality(da.from_array(a, chunks=(cy, cx, 3)), da.from_array(b, chunks=(cy, cx, 3)), 1000, 255.0)
    got = lazy.compute(scheduler="sync")
    assert got["ssim"] == pytest.approx(whole, rel=1e-9, abs=1e-12)
    assert got["psnr"] == pytest.approx(metrics.psnr(a, b))


def test_lazy_seam_equals_numpy_seam():
    image = _smooth(300, 420, seed=4)
    got = quality(da.from_array(image, chunks=(70, 90, 3)), None, 100, 255.0).compute(scheduler="sync")
    assert got["seam"] == pytest.approx(metrics.seam_score(image, 100), rel=1e-12)


def test_stats_distance_is_zero_for_equal_and_relative_otherwise():
    ref = NormStats.build("m", {"a": {"mean": np.ones(4), "std": np.full(4, 2.0)}, "b": {"mean": np.zeros(2)}})
    assert metrics.stats_distance(ref, ref) == {"a": 0.0, "b": 0.0}
    other = NormStats.build("m", {"a": {"mean": np.ones(4) * 1.1, "std": np.full(4, 2.0)}, "b": {"mean": np.ones(2)}})
    d = metrics.stats_distance(other, ref)
    assert d["a"] == pytest.approx(np.sqrt(4 * 0.01 / (4 + 16)))
    assert d["b"] == pytest.approx(np.sqrt(2.0))  # a zero reference: the absolute distance
    with pytest.raises(ParameterError, match="points"):
        metrics.stats_distance(NormStats.build("m", {"a": {"mean": np.ones(4)}}), ref)


def test_compare_reads_stores_and_files(tmp_path, capsys, client):
    from PIL import Image

    import urst_dask

    image = _smooth(260, 300, seed=2)
    out = urst_dask.stylize(image, random_image(32, 32, seed=1), tmp_path / "o.zarr", method="identity",
                            weights=tmp_path, stride=100, margin=8, client=client)
    Image.fromarray(image).save(tmp_path / "ref.png")
    figures = compare(out, tmp_path / "ref.png")
    assert figures["stride"] == 100 and figures["psnr"] == float("inf") and figures["ssim"] == pytest.approx(1.0)
    assert figures["seam"] == pytest.approx(metrics.seam_score(image, 100))
    assert main(["compare", str(out), str(tmp_path / "ref.png"), "--stride", "100"]) == 0
    printed = capsys.readouterr().out
    assert "seam score (stride 100):" in printed and "PSNR: inf dB" in printed and "SSIM: 1.0000" in printed
    assert main(["compare", str(out), str(tmp_path / "nope.png")]) == 2
    assert "nope.png" in capsys.readouterr().err


@pytest.mark.parametrize("reference, stride, fragment", [
    ("uint16", None, "reference: dtype uint16 differs from the image's uint8"),  # was PSNR -42 dB
    (None, 0, "stride=0: must be an integer >= 1"),  # was the default, silently
    (None, 2.5, "stride=2.5: must be an integer >= 1"),
    ("float255", None, "image, reference: float values from 0 to 255; PSNR and SSIM take 1.0"),  # was -13.8 dB
])
def test_compare_refuses_what_it_cannot_measure(reference, stride, fragment):
    image = _smooth(64, 80, seed=3)
    ref = (image.astype(np.uint16) * 257) if reference == "uint16" else None
    if reference == "float255":
        image, ref = image.astype(np.float32), np.full(image.shape, 255.0, np.float32)
        image[0, 0] = 0.0
    with pytest.raises(ParameterError, match=re.escape(fragment)):
        compare(image, ref, stride=stride)


def test_compare_leaves_the_alpha_channel_out():
    """Alpha passes through a run untouched: counted, it would lift PSNR and SSIM of any picture."""
    rgb = _smooth(64, 80, seed=4)
    other = _smooth(64, 80, seed=5)
    alpha = np.full((64, 80, 1), 255, np.uint8)
    with_alpha = compare(np.concatenate([rgb, alpha], 2), np.concatenate([other, alpha], 2), stride=32)
    without = compare(rgb, other, stride=32)
    assert with_alpha["psnr"] == pytest.approx(without["psnr"]) and with_alpha["ssim"] == pytest.approx(without["ssim"])


def test_compare_of_a_store_measures_where_its_tiles_meet(tmp_path, client):
    """A short last tile is merged into its neighbour: there is no boundary at k * stride
    there, so an edge of the picture on that line must not count as a seam."""
    import urst_dask

    image = _smooth(660, 300, seed=6)
    image[600:] = np.clip(image[600:].astype(int) + 60, 0, 255).astype(np.uint8)  # an edge at row 600
    out = urst_dask.stylize(image, random_image(32, 32, seed=1), tmp_path / "o.zarr", method="identity",
                            weights=tmp_path, stride=200, margin=90, client=client)
    # the last 60 rows are narrower than the 90-px margin: merged, so tiles meet at rows 200 and 400 only
    lines = metrics.seam_lines(image.shape, 200, boundaries=((200, 400), (200,)))
    assert [list(lines[0][0]), list(lines[1][0])] == [[200, 400], [200]]
    assert compare(out)["seam"] == pytest.approx(metrics.seam_score(image, 200, boundaries=((200, 400), (200,))))
    assert compare(out)["seam"] < 1.2 < metrics.seam_score(image, 200)  # row 600 counted would read as a seam
    assert compare(out, stride=200)["seam"] == pytest.approx(compare(out)["seam"])  # the store's own stride
    assert compare(out, stride=100)["seam"] == pytest.approx(metrics.seam_score(image, 100))  # another: every 100
