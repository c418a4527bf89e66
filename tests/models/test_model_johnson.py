"""Johnson fast neural style network: real checkpoints, TIN semantics, patch consistency.

Needs the real weights (``URST_DASK_WEIGHTS`` or ``../shared/weights``); skipped without them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from urst_dask.errors import ParameterError
from urst_dask.io.digest import sha256_file
from urst_dask.io.weights import load_state_dict
from urst_dask.models import johnson
from urst_dask.stats import StyleCode
from urst_dask.testing.tensors import assert_patch_matches_full, assert_shape_and_range, image, weights_root

TOL = 1e-5


def _weights_root() -> Path:
    return weights_root("johnson")


_image = image


def _load(root: Path, style: str) -> johnson.JohnsonNet:
    (wf,) = johnson.weights_for(style)
    return johnson.build({wf.relpath: load_state_dict(root, wf)}, style)


@pytest.fixture(scope="module")
def root() -> Path:
    return _weights_root()


@pytest.fixture(scope="module")
def model(root: Path) -> johnson.JohnsonNet:
    torch.manual_seed(0)
    return _load(root, "mosaic")


@pytest.fixture(scope="module")
def style(model: johnson.JohnsonNet) -> StyleCode:
    return model.prepare_style(None)


def _reference(model: johnson.JohnsonNet, x: torch.Tensor) -> torch.Tensor:
    """Upstream TransformerNet written out with torch's own instance norm and upsampling."""

    def conv(layer, y, up=False):
        if up:
            y = F.interpolate(y, scale_factor=2.0, mode="nearest")
        c = layer.conv2d
        p = c.kernel_size[0] // 2
        return F.conv2d(F.pad(y, (p, p, p, p), mode="reflect"), c.weight, c.bias, c.stride)

    def inorm(layer, y):
        return F.instance_norm(y, weight=layer.weight, bias=layer.bias, eps=1e-5)

    y = x * 255.0
    y = F.relu(inorm(model.in1, conv(model.conv1, y)))
    y = F.relu(inorm(model.in2, conv(model.conv2, y)))
    y = F.relu(inorm(model.in3, conv(model.conv3, y)))
    for k in range(1, 6):
        b = getattr(model, f"res{k}")
        y = y + inorm(b.in2, conv(b.conv2, F.relu(inorm(b.in1, conv(b.conv1, y)))))
    y = F.relu(inorm(model.in4, conv(model.deconv1, y, up=True)))
    y = F.relu(inorm(model.in5, conv(model.deconv2, y, up=True)))
    return (conv(model.deconv3, y) / 255.0).clamp(0, 1)


# --- (a) checkpoints ----------------------------------------------------------------------


def test_weights_catalogue() -> None:
    assert [wf.relpath for wf in johnson.WEIGHTS] == [f"johnson/{s}.pth" for s in johnson.STYLES]
    assert all(len(wf.sha256) == 64 and wf.url is None for wf in johnson.WEIGHTS)
    assert johnson.weights_for("udnie") == (johnson.WEIGHTS[-1],)
    assert johnson.weights_for(None)[0].relpath == f"johnson/{johnson.DEFAULT_STYLE}.pth"
    with pytest.raises(ParameterError, match="give a style name"):
        johnson.weights_for("starry_night")
    for painting in ("/data/style/starry_night.jpg", "paintings/wave.PNG"):  # a style image is not a checkpoint
        with pytest.raises(ParameterError, match=r"style='.*': johnson bakes one style into each network"):
            johnson.weights_for(painting)


def test_user_checkpoint_is_unverified(tmp_path: Path) -> None:
    for name in ("my_style.pth", "old/udnie.model"):
        (wf,) = johnson.weights_for(str(tmp_path / name))
        assert wf.sha256 == "" and wf.url is None
        assert Path(wf.relpath).is_absolute() and wf.relpath.endswith(Path(name).name)
        assert Path(wf.relpath) == (tmp_path / name).resolve()
        assert tmp_path / "weights" / wf.relpath == Path(wf.relpath)  # root / abs == abs


def test_checkpoints_verified_and_strict(root: Path) -> None:
    for style in johnson.STYLES:
        (wf,) = johnson.weights_for(style)
        assert sha256_file(root / wf.relpath) == wf.sha256
        sd = load_state_dict(root, wf)  # verifies the sha256 again, weights_only=True
        model = johnson.build({wf.relpath: sd}, style)  # strict=True inside
        assert set(model.state_dict()) == set(sd)
        assert model.style_name == style
        assert not any(p.requires_grad for p in model.parameters()) and not model.training
        assert model.info.name == "johnson" and not model.info.takes_style_image
        assert model.info.size_multiple == 4


def test_old_running_stats_keys_are_dropped(root: Path, model: johnson.JohnsonNet) -> None:
    (wf,) = johnson.weights_for("mosaic")
    sd = dict(load_state_dict(root, wf))
    for name in ("in1", "in4", "res3.in2"):
        c = sd[f"{name}.weight"].shape[0]
        sd[f"{name}.running_mean"] = torch.zeros(c)
        sd[f"{name}.running_var"] = torch.ones(c)
    old = johnson.build({wf.relpath: sd}, "mosaic")
    for k, v in model.state_dict().items():
        assert torch.equal(old.state_dict()[k], v)


def test_prepare_style_is_empty(model: johnson.JohnsonNet, style: StyleCode) -> None:
    assert style.points() == [] and style.method == "johnson"
    assert model.prepare_style(torch.rand(1, 3, 32, 32)) == style


# --- (b) TIN with the image's own statistics is plain IN -----------------------------------


def test_tin_with_own_stats_equals_instance_norm(model: johnson.JohnsonNet, style: StyleCode) -> None:
    x = _image(96, 128)
    with torch.inference_mode():
        thumb_out, stats = model.collect_stats(x, style)
        plain = model(x, style, None)
        frozen = model(x, style, stats)
        ref = _reference(model, x)
    assert stats.points() == list(model.norm_points()) and len(stats.points()) == 15
    assert stats["in1"]["mean"].shape == (1, 32) and stats["res5.in2"]["std"].shape == (1, 128)
    assert (plain - frozen).abs().max().item() <= TOL
    assert (plain - thumb_out).abs().max().item() <= TOL
    assert (plain - ref).abs().max().item() <= TOL  # against torch's own instance_norm
    assert plain.std().item() > 0.05  # a real picture, not a constant


# --- (c) the frozen statistics are really used ----------------------------------------------


def test_foreign_stats_change_the_output(model: johnson.JohnsonNet, style: StyleCode) -> None:
    x = _image(64, 96, seed=0)
    other = _image(64, 96, seed=7).flip(-1) * 0.5
    with torch.inference_mode():
        _, foreign = model.collect_stats(other, style)
        own = model(x, style, None)
        moved = model(x, style, foreign)
    assert (own - moved).abs().mean().item() > 1e-2


# --- (d) a patch with the full image's statistics is the same region of the full output ------


def test_patch_with_frozen_stats_matches_full_image(model: johnson.JohnsonNet, style: StyleCode) -> None:
    # top/left multiples of size_multiple keep the stride-2 grids aligned; margin >= 109 / 2, a multiple of 4
    assert_patch_matches_full(model, style, top=16, left=12, margin=56, tol=TOL)


# --- (e) shapes and range ------------------------------------------------------------------


@pytest.mark.parametrize("h,w", [(64, 64), (68, 100), (100, 36)])
def test_shape_and_range(model: johnson.JohnsonNet, style: StyleCode, h: int, w: int) -> None:
    assert_shape_and_range(model, style, h, w)


def test_alpha_is_an_output_blend(model: johnson.JohnsonNet, style: StyleCode) -> None:
    x = _image(64, 96, seed=5)
    with torch.inference_mode():
        full = model(x, style, None, alpha=1.0)
        none = model(x, style, None, alpha=0.0)
        part = model(x, style, None, alpha=0.3)
    assert model.info.supports_alpha
    assert torch.allclose(none, x, atol=1e-6)
    assert torch.allclose(part, 0.3 * full + 0.7 * x, atol=1e-6)


# --- (f) batches in instance mode are per sample -------------------------------------------


def test_batch_instance_mode_is_per_sample(model: johnson.JohnsonNet, style: StyleCode) -> None:
    x = torch.cat([_image(48, 64, seed=1), _image(48, 64, seed=2) * 0.6 + 0.2])
    with torch.inference_mode():
        both = model(x, style, None)
        one = torch.cat([model(x[i : i + 1], style, None) for i in range(2)])
        _, stats = model.collect_stats(x, style)
    assert (both - one).abs().max().item() <= TOL
    assert stats["in3"]["mean"].shape == (2, 128)
