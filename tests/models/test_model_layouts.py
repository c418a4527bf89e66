"""AdaIN, LinearWCT and MSG-Net load their official checkpoint layouts.

No real weights for these networks are available here, so each test writes a state dict
with random weights under exactly the official key names and shapes (built key by key
below from the upstream code, not from this package's modules), saves it with
``torch.save`` under the official file name, and loads it through the real loading path
(sha256 verification, ``torch.load(weights_only=True)``, strict ``load_state_dict``).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Callable

import pytest
import torch
import torch.nn.functional as F

from urst_dask.io.digest import sha256_file
from urst_dask.io.weights import load_state_dict
from urst_dask.models import adain, linearwct, msgnet
from urst_dask.testing.tensors import assert_batch_statistics_per_sample, smooth_image

StateDict = dict[str, torch.Tensor]


# ---------------------------------------------------------------------------------------
# official layouts, key by key


class _Writer:
    """Adds He-initialised random conv/linear weights to a state dict."""

    def __init__(self, seed: int) -> None:
        self.g = torch.Generator().manual_seed(seed)
        self.sd: StateDict = {}

    def conv(self, key: str, cout: int, cin: int, k: int, gain: float = 1.0, bias: float = 0.0) -> None:
        std = gain * math.sqrt(2.0 / (cin * k * k))
        self.sd[f"{key}.weight"] = torch.randn(cout, cin, k, k, generator=self.g) * std
        self.sd[f"{key}.bias"] = bias + 0.01 * torch.randn(cout, generator=self.g)

    def linear(self, key: str, cout: int, cin: int, gain: float = 1.0) -> None:
        self.sd[f"{key}.weight"] = torch.randn(cout, cin, generator=self.g) * (gain / math.sqrt(cin))
        self.sd[f"{key}.bias"] = 0.01 * torch.randn(cout, generator=self.g)


def adain_official(seed: int = 0) -> dict[str, StateDict]:
    """pytorch-AdaIN net.py: ``vgg`` (53 modules, to relu5_4) and ``decoder`` (29 modules)."""
    vgg = _Writer(seed)
    vgg.conv("0", 3, 3, 1)
    for index, cin, cout in ((2, 3, 64), (5, 64, 64), (9, 64, 128), (12, 128, 128), (16, 128, 256),
                             (19, 256, 256), (22, 256, 256), (25, 256, 256), (29, 256, 512),
                             (32, 512, 512), (35, 512, 512), (38, 512, 512), (42, 512, 512),
                             (45, 512, 512), (48, 512, 512), (51, 512, 512)):
        vgg.conv(str(index), cout, cin, 3)
    dec = _Writer(seed + 1)
    for index, cin, cout in ((1, 512, 256), (5, 256, 256), (8, 256, 256), (11, 256, 256), (14, 256, 128),
                             (18, 128, 128), (21, 128, 64), (25, 64, 64)):
        dec.conv(str(index), cout, cin, 3)
    dec.conv("28", 3, 64, 3, gain=0.15, bias=0.5)  # keeps the random output inside [0, 1] mostly
    return {"adain/vgg_normalised.pth": vgg.sd, "adain/decoder.pth": dec.sd}


def linearwct_official(seed: int = 0) -> dict[str, StateDict]:
    """LinearStyleTransfer libs/models.py encoder4/decoder4 and libs/Matrix.py MulLayer('r41')."""
    enc = _Writer(seed)
    enc.conv("conv1", 3, 3, 1)
    for name, cin, cout in (("conv2", 3, 64), ("conv3", 64, 64), ("conv4", 64, 128), ("conv5", 128, 128),
                            ("conv6", 128, 256), ("conv7", 256, 256), ("conv8", 256, 256),
                            ("conv9", 256, 256), ("conv10", 256, 512)):
        enc.conv(name, cout, cin, 3)
    dec = _Writer(seed + 1)
    for name, cin, cout in (("conv11", 512, 256), ("conv12", 256, 256), ("conv13", 256, 256),
                            ("conv14", 256, 256), ("conv15", 256, 128), ("conv16", 128, 128),
                            ("conv17", 128, 64), ("conv18", 64, 64)):
        dec.conv(name, cout, cin, 3)
    dec.conv("conv19", 3, 64, 3, gain=0.15, bias=0.5)
    mul = _Writer(seed + 2)
    for net in ("snet", "cnet"):
        mul.conv(f"{net}.convs.0", 256, 512, 3)
        mul.conv(f"{net}.convs.2", 128, 256, 3)
        mul.conv(f"{net}.convs.4", 32, 128, 3)
        mul.linear(f"{net}.fc", 32 * 32, 32 * 32, gain=10.0)  # O(1) matrices, as trained ones
    mul.conv("compress", 32, 512, 1)
    mul.conv("unzip", 512, 32, 1)
    return {"linearwct/vgg_r41.pth": enc.sd, "linearwct/dec_r41.pth": dec.sd, "linearwct/r41.pth": mul.sd}


def msgnet_official(seed: int = 0, running_stats: bool = True) -> dict[str, StateDict]:
    """PyTorch-Multi-Style-Transfer experiments/net.py ``Net(ngf=128)`` as in 21styles.model:
    ``model1`` is also ``model.0`` and ``ins`` is also ``model.1`` (both copies saved); the
    InstanceNorm2d layers carry the old-PyTorch running_mean/running_var buffers."""
    w = _Writer(seed)

    def norm(key: str, c: int) -> None:
        if running_stats:
            w.sd[f"{key}.running_mean"] = torch.zeros(c)
            w.sd[f"{key}.running_var"] = torch.ones(c)

    def block(prefix: str, inplanes: int, planes: int, residual: str | None, up: bool) -> None:
        if residual:
            w.conv(f"{prefix}.{residual}", planes * 4, inplanes, 1)
        norm(f"{prefix}.conv_block.0", inplanes)
        w.conv(f"{prefix}.conv_block.2", planes, inplanes, 1)
        norm(f"{prefix}.conv_block.3", planes)
        w.conv(f"{prefix}.conv_block.5.conv2d", planes, planes, 3)  # ConvLayer / UpsampleConvLayer
        norm(f"{prefix}.conv_block.6", planes)
        w.conv(f"{prefix}.conv_block.8", planes * 4, planes, 1)

    w.conv("model1.0.conv2d", 64, 3, 7, gain=1.0 / 255)  # the input is [0, 255]
    norm("model1.1", 64)
    block("model1.3", 64, 32, "residual_layer", up=False)
    block("model1.4", 128, 128, "residual_layer", up=False)
    for key in [k for k in w.sd if k.startswith("model1.")]:
        w.sd["model.0." + key[len("model1."):]] = w.sd[key]
    inspiration = torch.rand(1, 512, 512, generator=w.g) * 0.02  # upstream reset_parameters
    w.sd["ins.weight"] = inspiration
    w.sd["model.1.weight"] = inspiration
    for i in range(2, 8):
        block(f"model.{i}", 512, 128, None, up=False)
    block("model.8", 512, 32, "residual_layer.conv2d", up=True)
    block("model.9", 128, 16, "residual_layer.conv2d", up=True)
    norm("model.10", 64)
    w.conv("model.12.conv2d", 3, 64, 7, gain=50.0, bias=128.0)  # output in [0, 255]
    return {"msgnet/21styles.model": w.sd}


# ---------------------------------------------------------------------------------------
# helpers

METHODS: dict[str, tuple[object, Callable[..., dict[str, StateDict]]]] = {
    "adain": (adain, adain_official),
    "linearwct": (linearwct, linearwct_official),
    "msgnet": (msgnet, msgnet_official),
}


def save_and_load(mod, dicts: dict[str, StateDict], root: Path):
    """torch.save each file under its official name, then load it the way load_model does."""
    assert {wf.relpath for wf in mod.WEIGHTS} == set(dicts)
    loaded = {}
    for wf in mod.WEIGHTS:
        path = root / wf.relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(dicts[wf.relpath], path)
        # the official sha256 is unknown (""): verify against this file's own hash instead
        loaded[wf.relpath] = load_state_dict(root, dataclasses.replace(wf, sha256=sha256_file(path)))
    return mod.build(loaded, None)


@pytest.fixture(scope="module", params=sorted(METHODS))
def built(request, tmp_path_factory):
    mod, official = METHODS[request.param]
    dicts = official()
    model = save_and_load(mod, dicts, tmp_path_factory.mktemp(request.param))
    style = model.prepare_style(smooth_image(100, 64))
    return request.param, mod, model, style, dicts


# ---------------------------------------------------------------------------------------
# every method


def test_official_files_and_strict_loading(built):
    name, mod, model, _, dicts = built
    assert model.info.name == name and model.info.takes_style_image
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert "http" in (mod.__doc__ or "")
    for wf in mod.WEIGHTS:
        assert wf.relpath.startswith(f"{name}/") and wf.sha256 == ""
        assert "http" in wf.what  # where users get the file, shown in "missing" messages
    # strict: a missing or an unexpected key in a checkpoint is an error
    relpath, sd = list(dicts.items())[-1]
    dropped = next(k for k in sd if k.endswith(".weight"))
    missing = {k: v for k, v in sd.items() if k != dropped}
    with pytest.raises(RuntimeError, match="Missing key"):
        mod.build({**dicts, relpath: missing}, None)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        mod.build({**dicts, relpath: {**sd, "extra.weight": torch.zeros(1)}}, None)


@torch.inference_mode()
def test_window_with_thumbnail_statistics(built):
    _, _, model, style, _ = built
    image = smooth_image(1, 96)
    thumb = F.interpolate(image, size=(48, 48), mode="bilinear", align_corners=False, antialias=True)
    thumb_out, stats = model.collect_stats(thumb, style)
    assert thumb_out.shape == thumb.shape
    m = model.info.size_multiple
    for size, sources in ((48, (stats, None)), (40, (stats,))):  # multiples of size_multiple
        assert size % m == 0
        window = image[:, :, 16 : 16 + size, 24 : 24 + size]
        for st in sources:
            out = model(window, style, st)
            assert out.shape == window.shape
            assert torch.isfinite(out).all()
            assert out.min() >= 0 and out.max() <= 1
            assert out.std() > 1e-3  # not a constant picture


@torch.inference_mode()
def test_thumbnail_statistics_equal_instance_statistics(built):
    _, _, model, style, _ = built
    x = smooth_image(2, 32)
    thumb_out, stats = model.collect_stats(x, style)
    own = model(x, style, None)
    torch.testing.assert_close(model(x, style, stats), own, atol=1e-5, rtol=0)
    torch.testing.assert_close(thumb_out, own, atol=1e-5, rtol=0)
    # statistics of another image change the output
    _, other = model.collect_stats(smooth_image(4, 32), style)
    assert (model(x, style, other) - own).abs().mean() > 1e-3


def test_batch_statistics_are_per_sample(built):
    _, _, model, style, _ = built
    assert_batch_statistics_per_sample(model, style, size=32, atol=1e-5, min_change=1e-3)


def _calc_mean_std_upstream(feat: torch.Tensor, eps: float = 1e-5):
    n, c = feat.shape[:2]
    var = feat.reshape(n, c, -1).var(dim=2) + eps  # unbiased, as pytorch-AdaIN function.py
    return feat.reshape(n, c, -1).mean(dim=2).view(n, c, 1, 1), var.sqrt().view(n, c, 1, 1)


def run_plan(sd: StateDict, x: torch.Tensor, plan: tuple) -> torch.Tensor:
    """An upstream nn.Sequential-style network, straight from a state dict: each item is a
    conv key (reflection pad 1 for 3x3; ReLU unless the key ends with "!"), "P" a 2x2 max
    pool (ceil_mode) or "U" a 2x nearest upsampling."""
    for item in plan:
        if item == "P":
            x = F.max_pool2d(x, 2, 2, ceil_mode=True)
        elif item == "U":
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        else:
            key, relu = item.rstrip("!"), not item.endswith("!")
            w = sd[f"{key}.weight"]
            if w.shape[-1] == 3:
                x = F.pad(x, (1, 1, 1, 1), mode="reflect")
            x = F.conv2d(x, w, sd[f"{key}.bias"])
            x = F.relu(x) if relu else x
    return x


# pytorch-AdaIN net.py: vgg[:31] (to relu4_1) and decoder
ADAIN_VGG = ("0!", "2", "5", "P", "9", "12", "P", "16", "19", "22", "25", "P", "29")
ADAIN_DEC = ("1", "U", "5", "8", "11", "14", "U", "18", "21", "U", "25", "28!")


def check_adain(model, dicts: dict[str, StateDict]) -> None:
    """pytorch-AdaIN test.py style_transfer(): decoder(alpha * adain(c, s) + (1 - alpha) * c)."""
    vgg, dec = dicts["adain/vgg_normalised.pth"], dicts["adain/decoder.pth"]
    x, s = smooth_image(8, 48), smooth_image(9, 48)
    cf, sf = run_plan(vgg, x, ADAIN_VGG), run_plan(vgg, s, ADAIN_VGG)
    cm, cs = _calc_mean_std_upstream(cf)
    sm, ss = _calc_mean_std_upstream(sf)
    alpha = 0.7
    t = alpha * ((cf - cm) / cs * ss + sm) + (1 - alpha) * cf
    expected = run_plan(dec, t, ADAIN_DEC).clamp(0, 1)
    code = model.prepare_style(s)
    torch.testing.assert_close(model(x, code, None, alpha=alpha), expected, atol=1e-4, rtol=0)
    _, stats = model.collect_stats(x, code)
    assert stats.points() == ["relu4_1"]
    assert stats["relu4_1"]["std"].shape == (1, 512)
    torch.testing.assert_close(torch.from_numpy(stats["relu4_1"]["std"].copy()), cs.view(1, 512))


# LinearStyleTransfer libs/models.py encoder4 / decoder4 (pools without ceil_mode: even sizes here)
LINEAR_ENC = ("conv1!", "conv2", "conv3", "P", "conv4", "conv5", "P", "conv6", "conv7", "conv8", "conv9", "P", "conv10")
LINEAR_DEC = ("conv11", "U", "conv12", "conv13", "conv14", "conv15", "U", "conv16", "conv17", "U", "conv18", "conv19!")


def check_linearwct(model, dicts: dict[str, StateDict]) -> None:
    """LinearStyleTransfer TestArtistic.py: dec(matrix(vgg(c)['r41'], vgg(s)['r41']))."""
    enc, dec, r41 = (dicts[f"linearwct/{n}.pth"] for n in ("vgg_r41", "dec_r41", "r41"))
    x, s = smooth_image(12, 48), smooth_image(13, 48)
    cf, sf = run_plan(enc, x, LINEAR_ENC), run_plan(enc, s, LINEAR_ENC)
    # upstream MulLayer.forward(cF, sF), written out
    cmean = cf.mean(dim=(2, 3), keepdim=True)
    smean = sf.mean(dim=(2, 3), keepdim=True)
    cc, sc = cf - cmean, sf - smean

    def cnn(net, feat):
        out = F.relu(F.conv2d(feat, r41[f"{net}.convs.0.weight"], r41[f"{net}.convs.0.bias"], padding=1))
        out = F.relu(F.conv2d(out, r41[f"{net}.convs.2.weight"], r41[f"{net}.convs.2.bias"], padding=1))
        out = F.conv2d(out, r41[f"{net}.convs.4.weight"], r41[f"{net}.convs.4.bias"], padding=1)
        b, c, h, w = out.shape
        out = out.view(b, c, -1)
        gram = torch.bmm(out, out.transpose(1, 2)).div(h * w).view(b, -1)
        return F.linear(gram, r41[f"{net}.fc.weight"], r41[f"{net}.fc.bias"]).view(b, 32, 32)

    trans = torch.bmm(cnn("snet", sc), cnn("cnet", cc))
    comp = F.conv2d(cc, r41["compress.weight"], r41["compress.bias"])
    b, c, h, w = comp.shape
    moved = torch.bmm(trans, comp.view(b, c, -1)).view(b, c, h, w)
    feature = F.conv2d(moved, r41["unzip.weight"], r41["unzip.bias"]) + smean
    expected = run_plan(dec, feature, LINEAR_DEC).clamp(0, 1)
    code = model.prepare_style(s)
    torch.testing.assert_close(model(x, code, None), expected, atol=1e-4, rtol=0)
    _, stats = model.collect_stats(x, code)
    assert stats.points() == ["r41"]
    assert stats["r41"]["mean"].shape == (1, 512) and stats["r41"]["cmatrix"].shape == (1, 32, 32)


class _UpstreamMsgNet(torch.nn.Module):
    """experiments/net.py Net(ngf=128) forward, with torch's own InstanceNorm2d."""

    def __init__(self, sd: StateDict) -> None:
        super().__init__()
        self.sd = sd

    def conv(self, key: str, x, stride: int = 1, pad: bool = True):
        w = self.sd[f"{key}.weight"]
        if pad and w.shape[-1] > 1:
            x = F.pad(x, (w.shape[-1] // 2,) * 4, mode="reflect")
        return F.conv2d(x, w, self.sd[f"{key}.bias"], stride)

    @staticmethod
    def norm(x):
        return F.relu(F.instance_norm(x, eps=1e-5))

    def block(self, prefix: str, x, stride: int, residual: str | None, up: bool):
        if residual is None:
            res = x
        elif up:
            res = self.conv(f"{prefix}.{residual}", F.interpolate(x, scale_factor=2.0, mode="nearest"))
        else:
            res = self.conv(f"{prefix}.{residual}", x, stride)
        y = self.conv(f"{prefix}.conv_block.2", self.norm(x))
        y = self.norm(y)
        if up:
            y = self.conv(f"{prefix}.conv_block.5.conv2d", F.interpolate(y, scale_factor=2.0, mode="nearest"))
        else:
            y = self.conv(f"{prefix}.conv_block.5.conv2d", y, stride)
        y = self.conv(f"{prefix}.conv_block.8", self.norm(y))
        return res + y

    def model1(self, x):
        x = self.norm(self.conv("model1.0.conv2d", x))
        x = self.block("model1.3", x, 2, "residual_layer", False)
        return self.block("model1.4", x, 2, "residual_layer", False)

    def forward(self, bgr255, style_bgr255):
        f = self.model1(style_bgr255)
        b, c, h, w = f.shape
        feats = f.view(b, c, h * w)
        gram = feats.bmm(feats.transpose(1, 2)) / (c * h * w)
        p = torch.bmm(self.sd["ins.weight"], gram)
        x = self.model1(bgr255)
        x = torch.bmm(p.transpose(1, 2), x.view(x.shape[0], c, -1)).view_as(x)
        for i in range(2, 8):
            x = self.block(f"model.{i}", x, 1, None, False)
        x = self.block("model.8", x, 2, "residual_layer.conv2d", True)
        x = self.block("model.9", x, 2, "residual_layer.conv2d", True)
        return self.conv("model.12.conv2d", self.norm(x))


def check_msgnet(model, dicts: dict[str, StateDict]) -> None:
    """experiments/main.py evaluate(): BGR [0, 255] in and out, setTarget(style), forward."""
    assert model.info.size_multiple == 4
    points = model.points()
    assert len(points) == 32 and len(set(points)) == 32
    assert points[0] == "model.0.1" and points[-1] == "model.10"
    x, s = smooth_image(22, 48), smooth_image(23, 48)
    ref = _UpstreamMsgNet(dicts["msgnet/21styles.model"])
    expected = (ref(x.flip(1) * 255, s.flip(1) * 255).flip(1) / 255).clamp(0, 1)
    code = model.prepare_style(s)
    assert code.points() == ["inspiration"] and code["inspiration"]["gram"].shape == (512, 512)
    torch.testing.assert_close(model(x, code, None), expected, atol=1e-4, rtol=0)
    _, stats = model.collect_stats(x, code)
    assert stats.points() == points


@torch.inference_mode()
def test_matches_upstream_forward(built):
    name, _, model, _, dicts = built
    {"adain": check_adain, "linearwct": check_linearwct, "msgnet": check_msgnet}[name](model, dicts)


def _norm_channels(sd: StateDict, key: str) -> int:
    """Width of the InstanceNorm at ``key``: the input width of the conv that follows it."""
    if key.endswith((".conv_block.0", ".conv_block.3", ".conv_block.6")):
        nxt = {"0": "2", "3": "5.conv2d", "6": "8"}[key[-1]]
        return sd[f"{key[:-1]}{nxt}.weight"].shape[1]
    return 64  # model1.1 / model.0.1 (after the first conv) and model.10 (before the last)


@torch.inference_mode()
def test_msgnet_loads_without_running_stats_and_with_affine_norms(tmp_path):
    sd = msgnet_official(31, running_stats=False)["msgnet/21styles.model"]
    plain = msgnet.build({"msgnet/21styles.model": sd}, None)
    assert all(m.weight is None for m in plain.modules() if isinstance(m, msgnet.InstanceNormPoint))
    # the same Net with affine InstanceNorm2d (weight 1, bias 0) gives the same output
    saved = msgnet_official(31)["msgnet/21styles.model"]
    norms = [k[: -len(".running_mean")] for k in saved if k.endswith(".running_mean")]
    assert len(norms) == 32 + 7  # model1's 7 norms are saved twice (model1.* and model.0.*)
    affine = dict(sd)
    for key in norms:
        c = _norm_channels(sd, key)
        affine[f"{key}.weight"], affine[f"{key}.bias"] = torch.ones(c), torch.zeros(c)
    with_affine = msgnet.build({"msgnet/21styles.model": affine}, None)
    assert all(m.weight is not None for m in with_affine.modules() if isinstance(m, msgnet.InstanceNormPoint))
    x, s = smooth_image(32, 32), smooth_image(33, 32)
    out_plain = plain(x, plain.prepare_style(s), None)
    torch.testing.assert_close(with_affine(x, with_affine.prepare_style(s), None), out_plain, atol=1e-5, rtol=0)
