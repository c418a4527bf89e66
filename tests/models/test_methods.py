"""Every network through the real tiling path (issue: every network behind one interface)."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import torch
from test_model_layouts import METHODS as LAYOUT_BUILDERS

from urst_dask.engine import ModelSpec, get_model
from urst_dask.io.images import read_style
from urst_dask.models import METHODS
from urst_dask.pipeline.conditioning import conditioning
from urst_dask.pipeline.synthetic import synthetic_array
from urst_dask.pipeline.tiles import tile_graph
from urst_dask.preprocess import from_unit, hwc_to_nchw, nchw_to_hwc, to_unit
from urst_dask.settings import ComputeOptions, Precision, StyleOptions
from urst_dask.synthetic import demo_style
from urst_dask.tiling import TilePlan, WindowJob

REAL = {"wct16x": None, "johnson": "mosaic", "microast": None, "wct": None}  # method -> variant
LAYOUT = sorted(LAYOUT_BUILDERS)
JOB = WindowJob(StyleOptions(preserve_color=False), ComputeOptions(precision=Precision.FLOAT32), "uint8")


def _job(**compute) -> WindowJob:
    return WindowJob(JOB.style, ComputeOptions(precision=Precision.FLOAT32, **compute), JOB.out_dtype)


@pytest.fixture(scope="module")
def layout_weights(tmp_path_factory):
    """Random weights saved in each official key layout and file name."""
    root = tmp_path_factory.mktemp("official")
    for name in LAYOUT:
        mod, official = LAYOUT_BUILDERS[name]
        for rel, sd in official().items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            torch.save(sd, root / rel)
    return root


def _spec(method, weights, layout_weights) -> ModelSpec:
    root = layout_weights if method in LAYOUT else weights
    return ModelSpec(method, str(root), variant=REAL.get(method))


def _style_image(method):
    return None if not METHODS[method].takes_style_image else demo_style(96, seed=4)


def _conditioning(spec, image, style_img, style_size=64):
    return dask.compute(conditioning(da.from_array(image, chunks=(64, 64, 3)), style_img, spec,
                                     StyleOptions(thumb_size=1024, style_size=style_size, alpha=1.0)),
                        scheduler="sync")[0][:2]


def test_every_registered_method_is_covered():
    builtin = {name for name, e in METHODS.items() if e.build.__module__.startswith("urst_dask.models.")}
    assert builtin == set(REAL) | set(LAYOUT) | {"passthrough"}


def test_passthrough_is_exact(tmp_path):
    """The weightless benchmark network returns its input through the real tiling path."""
    from urst_dask.testing import random_image

    spec = ModelSpec("passthrough", str(tmp_path))
    image = random_image(70, 110, seed=9)
    style, stats = _conditioning(spec, image, demo_style(32))
    out = tile_graph(da.from_array(image, chunks=(40, 40, 3)), spec, style, stats,
                              TilePlan(stride=32, margin=6), JOB).compute(scheduler="sync")
    np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize("method", sorted(set(REAL) | set(LAYOUT)))
def test_single_window_tin_equals_whole_image_in(method, weights, layout_weights):
    """Thumbnail == image and one window == image: TIN with the thumbnail's statistics is the
    network's own instance normalization, for every network."""
    spec = _spec(method, weights, layout_weights)
    image = synthetic_array((64, 96), seed=6).compute()
    style, stats = _conditioning(spec, image, _style_image(method))
    arr = da.from_array(image, chunks=(32, 32, 3))
    tiled = tile_graph(arr, spec, style, stats, TilePlan(stride=1000, margin=0), JOB).compute(scheduler="sync")
    with torch.inference_mode():
        plain = get_model(spec)(hwc_to_nchw(to_unit(image)), style, None).clamp(0, 1)
    ref = from_unit(nchw_to_hwc(plain), np.uint8)
    assert tiled.shape == image.shape and tiled.dtype == np.uint8
    assert np.abs(tiled.astype(int) - ref.astype(int)).max() <= 1


@pytest.mark.parametrize("method", sorted(set(REAL) | set(LAYOUT)))
@pytest.mark.parametrize("norm, whole", [("tin", False), ("in", False), ("tin", True)])
def test_modes_work_for_every_method(method, norm, whole, weights, layout_weights):
    """--norm tin|in and --whole on a multi-window image: right shape, dtype and range, not flat."""
    spec = _spec(method, weights, layout_weights)
    image = synthetic_array((90, 130), seed=7).compute()
    style, stats = _conditioning(spec, image, _style_image(method))
    out = tile_graph(da.from_array(image, chunks=(45, 45, 3)), spec, style, stats if norm == "tin" else None,
                              TilePlan(stride=48, margin=8), _job(whole=whole))
    result = out.compute(scheduler="sync")
    assert result.shape == image.shape and result.dtype == np.uint8
    assert result.std() > 0.5  # a real picture, not a constant


@pytest.mark.parametrize("method", sorted(set(REAL) | set(LAYOUT)))
def test_batched_windows_equal_single_windows_for_every_method(method, weights, layout_weights):
    """Three windows per network call (``batch=3``) against one per call: the same picture
    for every network (float summation order may differ with the batch: within 1 grey level)."""
    spec = _spec(method, weights, layout_weights)
    image = synthetic_array((100, 150), seed=8).compute()  # 2 x 3 windows (4- and 6-px tails merged)
    style, stats = _conditioning(spec, image, _style_image(method))
    arr = da.from_array(image, chunks=(60, 50, 3))
    plan = TilePlan(stride=48, margin=8)
    one = tile_graph(arr, spec, style, stats, plan, JOB).compute(scheduler="sync")
    three = tile_graph(arr, spec, style, stats, plan, _job(batch=3))
    assert three.numblocks[:2] == (2, 1)
    diff = np.abs(three.compute(scheduler="sync").astype(int) - one.astype(int))
    # oneDNN rounds a batch of 3 differently from 3 single calls (wct16x: max 2.6e-4, so about
    # 0.6 % of values land on the other grey level); every window of a row shares the call
    assert diff.max() <= 1 and diff.mean() < 0.02


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


# Measured on this machine (2-core Xeon, float32): wave.jpg 928 x 514 as content, the starry
# night as style (style 256), stride 400 / margin 32 (3 x 2 windows): wct16x 29.5 dB (its
# cascade's receptive field is 513 px), johnson 62.7 dB, microast 73.2 dB, wct identical (its
# receptive-field radius, ~35 px, barely exceeds the margin).  Floors sit ~1.5 dB under.
PSNR_FLOOR = {"wct16x": 28.0, "johnson": 61.0, "microast": 71.5, "wct": 60.0}


@pytest.fixture(scope="module")
def real_content(weights):
    path = weights.parent / "images" / "style" / "wave.jpg"
    if not path.exists():
        pytest.skip("shared/images/style/wave.jpg not found")
    return read_style(path), read_style(weights.parent / "images" / "style" / "starry_night.jpg")


@pytest.mark.parametrize("method", [pytest.param(m, marks=pytest.mark.slow) if m == "wct" else m for m in sorted(REAL)])
def test_tiled_vs_whole_psnr_on_a_real_image(method, weights, real_content, record_property):
    content, style_img = real_content
    spec = ModelSpec(method, str(weights), variant=REAL[method])
    style, stats = _conditioning(spec, content, style_img if METHODS[method].takes_style_image else None, 256)
    arr = da.from_array(content, chunks=(400, 400, 3))
    plan = TilePlan(stride=400, margin=32, blend="crop")
    whole = tile_graph(arr, spec, style, stats, plan, _job(whole=True)).compute(scheduler="threads")
    tiled = tile_graph(arr, spec, style, stats, plan, JOB).compute(scheduler="threads")
    psnr = _psnr(tiled, whole)
    record_property("psnr_db", round(psnr, 2))
    print(f"{method}: tiled vs whole PSNR {psnr:.2f} dB")
    assert psnr >= PSNR_FLOOR[method]
