"""The original VGG-19 WCT with the real checkpoints in shared/weights/wct_vgg19."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from urst_dask.errors import ParameterError
from urst_dask.io.weights import file_status, load_state_dict
from urst_dask.models import vgg, wct
from urst_dask.testing import REPO
from urst_dask.testing.tensors import assert_batch_statistics_per_sample, smooth_image

SHARED = Path(os.environ.get("URST_DASK_SHARED", REPO.parent / "shared"))
WEIGHTS_DIR = SHARED / "weights"

pytestmark = pytest.mark.skipif(
    not (WEIGHTS_DIR / wct.SUBDIR).is_dir(), reason=f"no {WEIGHTS_DIR / wct.SUBDIR} (shared weights)"
)


@pytest.fixture(scope="module")
def dicts() -> dict[str, dict[str, torch.Tensor]]:
    return {wf.relpath: load_state_dict(WEIGHTS_DIR, wf) for wf in wct.WEIGHTS}


@pytest.fixture(scope="module")
def model(dicts) -> wct.Wct:
    return wct.build(dicts, None)


@pytest.fixture(scope="module")
def style(model):
    return model.prepare_style(smooth_image(100, 64))


def test_checkpoints_verify_and_load_strictly(dicts):
    # load_state_dict verified every sha256; each file is an nn.Sequential state dict
    assert len(dicts) == 6
    for wf in wct.WEIGHTS:
        assert file_status(WEIGHTS_DIR, wf) == "ok"
        assert wf.url and wf.url.endswith(wf.relpath.split("/")[-1])
    assert tuple(dicts["wct_vgg19/vgg_normalised_conv3_1.pth"]["16.weight"].shape) == (256, 128, 3, 3)
    m = wct.build(dicts, "3")
    assert m.levels == (3, 2, 1)
    assert not any(p.requires_grad for p in m.parameters())
    assert not m.training
    with pytest.raises(RuntimeError):  # strict: a decoder checkpoint does not fit an encoder
        m.encoders["2"].load_state_dict(dicts["wct_vgg19/feature_invertor_conv2_1.pth"], strict=True)


def test_variants_and_weight_files(dicts):
    assert wct.parse_levels(None) == (3, 2, 1)
    assert wct.parse_levels("5") == (5, 4, 3, 2, 1)
    assert [wf.relpath for wf in wct.weights_for(None)] == [wf.relpath for wf in wct.WEIGHTS]
    five = wct.weights_for("5")
    assert len(five) == 10
    assert {"wct_vgg19/vgg_normalised_conv5_1.pth", "wct_vgg19/feature_invertor_conv4_1.pth"} <= {
        wf.relpath for wf in five
    }
    assert all(wf.sha256 == "" and wf.url is None for wf in five if "4_1" in wf.relpath or "5_1" in wf.relpath)
    for bad in ("0", "6", "x", "3.5"):
        with pytest.raises(ParameterError):
            wct.weights_for(bad)
    two = wct.build(dicts, "2")  # a smaller cascade from the same files
    assert two.levels == (2, 1) and two.info.size_multiple == 2
    # level 4/5 layouts (no weights here): the upstream nn.Sequential indices and shapes
    assert tuple(vgg.vgg_encoder_layers("51")[42].weight.shape) == (512, 512, 3, 3)
    dec5 = vgg.vgg_decoder_layers("51")
    assert tuple(dec5[1].weight.shape) == (512, 512, 3, 3)
    assert tuple(dec5[-1].weight.shape) == (3, 64, 3, 3)
    assert tuple(vgg.vgg_decoder_layers("41")[14].weight.shape) == (128, 256, 3, 3)


@torch.inference_mode()
def test_autoencoders_reconstruct(model):
    # the real encoder/decoder pairs invert each other: checks the layer order and padding
    x = smooth_image(1, 64)
    for k in model.levels:
        y = model.decoders[str(k)](model.encoders[str(k)](x))
        assert y.shape == x.shape
        assert (y - x).abs().mean() < 0.08, k


@torch.inference_mode()
def test_thumbnail_statistics_equal_instance_statistics(model, style):
    x = smooth_image(2, 64)
    thumb_out, stats = model.collect_stats(x, style)
    assert stats.points() == ["level3", "level2", "level1"]
    assert stats["level3"]["mean"].shape == (256,) and stats["level3"]["whiten"].shape == (256, 256)
    frozen = model(x, style, stats)
    own = model(x, style, None)
    assert frozen.shape == x.shape
    assert torch.isfinite(frozen).all() and frozen.min() >= 0 and frozen.max() <= 1
    assert frozen.std() > 0.02
    torch.testing.assert_close(frozen, own, atol=1e-4, rtol=0)
    torch.testing.assert_close(thumb_out, own, atol=1e-4, rtol=0)
    # statistics of another image change the output
    _, other = model.collect_stats(smooth_image(4, 64), style)
    assert (model(x, style, other) - own).abs().mean() > 0.01


def test_batch_statistics_are_per_sample(model, style):
    assert_batch_statistics_per_sample(model, style, size=48, atol=1e-4, min_change=0.01)


@torch.inference_mode()
def test_alpha_blends(model, style):
    x = smooth_image(6, 48)
    full, half = model(x, style, None, alpha=1.0), model(x, style, None, alpha=0.5)
    assert (full - half).abs().mean() > 0.005
    assert model.info.supports_alpha and model.info.takes_style_image
