"""A cascade's thumbnail statistics tile by tile: the whole pass's when one tile covers the
thumbnail, close to it otherwise, and a clear refusal of a grid off the network's grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from urst_dask.engine import ModelSpec, get_model
from urst_dask.errors import UrstError
from urst_dask.preprocess import hwc_to_nchw, resize_center_crop, to_unit
from urst_dask.testing import REPO
from urst_dask.tiling import Blend, TileGrid
from urst_dask.tiling.thumbstats import tiled_cascade_stats

PHOTO = REPO.parent / "shared" / "images" / "content" / "cornell.jpg"


@pytest.fixture(scope="module")
def wct16x(weights, style_image):
    model = get_model(ModelSpec("wct16x", str(weights)))
    style = model.prepare_style(resize_center_crop(to_unit(style_image), 128))
    return model, style


def _photo(h: int, w: int) -> torch.Tensor:
    from PIL import Image

    if not PHOTO.exists():
        pytest.skip(f"{PHOTO} not here (CI: ../shared/images)")
    with Image.open(PHOTO) as im:
        return hwc_to_nchw(to_unit(np.asarray(im.convert("RGB").resize((w, h), Image.BICUBIC))))


def _grid(stride: int, margin: int = 32) -> TileGrid:
    return TileGrid(stride=stride, margin=margin, multiple=16, blend=Blend.CROP)


def test_one_tile_gives_the_whole_pass_statistics(wct16x):
    model, style = wct16x
    x = _photo(96, 160)
    with torch.inference_mode():
        _, whole = model.collect_stats(x, style, 0.8)
        tiled = tiled_cascade_stats(model, x, style, 0.8, _grid(1024))
    assert tiled.points() == whole.points()
    for point in whole.points():
        assert set(tiled[point]) == set(whole[point])
        for field in whole[point]:
            np.testing.assert_allclose(tiled[point][field], whole[point][field], rtol=1e-9, atol=1e-12)


def test_many_tiles_give_statistics_close_to_the_whole_pass_and_the_same_picture(wct16x):
    """A 192x320 photograph in 3x5 tiles of 64 px (32 px of context): the statistics move
    by little, and the picture stylized with them is the same picture (PSNR against the
    whole pass's statistics)."""
    model, style = wct16x
    x = _photo(192, 320)
    with torch.inference_mode():
        _, whole = model.collect_stats(x, style)
        tiled = tiled_cascade_stats(model, x, style, 1.0, _grid(64))
        a, b = model(x, style, whole).clamp(0, 1), model(x, style, tiled).clamp(0, 1)
    for point in whole.points():
        mean_w, mean_t = whole[point]["mean"], tiled[point]["mean"]
        assert np.abs(mean_t - mean_w).max() <= 0.1 * np.abs(mean_w).max()
    psnr = 10 * np.log10(1.0 / torch.mean((a - b) ** 2).item())
    assert psnr >= 30.0, psnr


@pytest.mark.parametrize(("shape", "grid", "message"), [
    ((1, 3, 100, 96), _grid(64), "thumbnail 100x96"),
    ((1, 3, 96, 96), _grid(40), "stride 40"),
    ((1, 3, 96, 96), _grid(64, margin=20), "margin 20"),
])
def test_a_grid_off_the_networks_grid_is_refused(wct16x, shape, grid, message):
    model, style = wct16x
    with pytest.raises(UrstError, match=message):
        tiled_cascade_stats(model, torch.rand(shape), style, 1.0, grid)


@pytest.mark.parametrize(("method", "h", "w", "tiled"), [
    ("wct16x", 1024, 1024, False),   # a square image's thumbnail: one pass
    ("wct16x", 1024, 1824, False),   # a 16:9 photograph's: one pass
    ("wct16x", 1024, 2064, True),    # beyond 2:1: tiles
    ("wct16x", 1024, 102400, True),  # a 100:1 strip
    ("johnson", 1024, 4096, False),  # not a cascade: its statistics are not moments of one map per level
])
def test_which_thumbnails_are_tiled(weights, method, h, w, tiled):
    from urst_dask.pipeline.conditioning import THUMB_TILE, thumb_grid

    model = get_model(ModelSpec(method, str(weights), "candy" if method == "johnson" else None))
    grid = thumb_grid(model, h, w)
    assert (grid is not None) == tiled
    if grid is not None:
        assert grid.stride == THUMB_TILE and grid.margin == model.info.seam_margin == 64
        assert grid.stride % model.info.size_multiple == 0


def test_the_statistics_task_takes_a_large_thumbnail_in_tiles(weights, wct16x, monkeypatch):
    """The conditioning stage's statistics task: tiled past the threshold (lowered here),
    with statistics close to the whole pass's."""
    from urst_dask.pipeline import conditioning

    model, style = wct16x
    thumb = np.ascontiguousarray(_photo(192, 320)[0].permute(1, 2, 0).numpy())
    spec = ModelSpec("wct16x", str(weights))
    whole = conditioning._collect_stats(spec, thumb, style, 1.0)[0]
    calls = []
    real = conditioning.tiled_cascade_stats
    monkeypatch.setattr(conditioning, "tiled_cascade_stats", lambda *a: calls.append(a[-1]) or real(*a))
    monkeypatch.setattr(conditioning, "THUMB_TILE_PIXELS", 100 * 100)
    monkeypatch.setattr(conditioning, "THUMB_TILE", 64)
    tiled = conditioning._collect_stats(spec, thumb, style, 1.0)[0]
    assert [(g.stride, g.margin) for g in calls] == [(64, 64)]
    assert tiled.token() != whole.token()
    for point in whole.points():
        np.testing.assert_allclose(tiled[point]["mean"], whole[point]["mean"], rtol=0.1,
                                   atol=0.05 * np.abs(whole[point]["mean"]).max())
