"""Johnson et al. fast neural style (ECCV 2016), the PyTorch examples' ``TransformerNet``.

One feed-forward network per style (the style is baked into the weights):

    conv1 9x9 3->32   in1  ReLU
    conv2 3x3/2 ->64  in2  ReLU
    conv3 3x3/2 ->128 in3  ReLU
    res1..res5        (conv1 in1 ReLU conv2 in2) + identity
    deconv1 up2 3x3 ->64  in4  ReLU
    deconv2 up2 3x3 ->32  in5  ReLU
    deconv3 9x9 ->3

Every convolution is preceded by reflection padding of ``k // 2``; ``up2`` is a 2x nearest
upsampling.  The 15 ``InstanceNorm2d(affine=True)`` layers keep only their affine
``weight``/``bias`` here; their statistics come from the :class:`StatsSource` at the
normalization points ``in1, in2, in3, res1.in1, res1.in2, ..., res5.in2, in4, in5`` (in
forward order), which makes Thumbnail Instance Normalization a matter of passing frozen
statistics.  IN statistics are the biased variance with eps 1e-5 (``nn.InstanceNorm2d``).

The network was trained on RGB in [0, 255]: :meth:`JohnsonNet.run` scales the [0, 1] input
by 255 and the output back by 1/255, clamped to [0, 1].

Checkpoint layout (keys): ``conv1.conv2d.weight``, ``in1.weight``, ``in1.bias``, ...,
``res{k}.conv{1,2}.conv2d.*``, ``res{k}.in{1,2}.*``, ``deconv{1,2,3}.conv2d.*``, ``in4``,
``in5``.  The original PyTorch examples ``.model`` files also carry ``in*.running_mean`` /
``running_var`` buffers (saved by an old PyTorch); they are dropped before strict loading.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import kernels
from ..errors import ParameterError
from ..io.weights import WeightFile
from ..stats import StatsSource, StyleCode
from .base import ModelInfo, StyleModel
from .layers import ConvLayer, in_stats, reflect_conv
from .registry import Network

NAME = "johnson"
STYLES = ("candy", "mosaic", "pointilism", "rain_princess", "udnie")
DEFAULT_STYLE = "candy"
INPUT_RANGE = 255.0
_USER_SUFFIXES = (".pth", ".model", ".pt")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".gif")
_RUNNING_KEY = re.compile(r"(^|\.)in\d+\.running_(mean|var)$")


class UpsampleConvLayer(ConvLayer):
    """2x nearest upsampling, then a reflection-padded 3x3 convolution (upstream ``UpsampleConvLayer``).

    Computed without materializing the upsampled map (see :func:`_up2_conv3`).
    """

    def __init__(self, cin: int, cout: int, k: int = 3) -> None:
        if k != 3:
            raise ParameterError(f"UpsampleConvLayer: k={k}: only 3x3 kernels are implemented")
        super().__init__(cin, cout, k)

    def forward(self, x: Tensor) -> Tensor:
        if torch.compiler.is_compiling():
            # inductor (torch 2.13) fails on two of the phase interleaves in a row ("vr must not
            # be None for symbol q2"), so compiled graphs upsample as upstream does
            return reflect_conv(self.conv, F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return _up2_conv3(x, self.conv.weight, self.conv.bias)


def _fold_taps(w: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """Along ``dim`` (size 3), the 2-tap kernels of the two output phases of an up2 + 3-tap conv.

    Output ``2i`` reads upsampled ``2i-1, 2i, 2i+1`` = low-res ``i-1, i, i``; output ``2i+1``
    reads low-res ``i, i, i+1``.
    """
    k0, k1, k2 = w.unbind(dim)
    return torch.stack((k0, k1 + k2), dim), torch.stack((k0 + k1, k2), dim)


def _up2_conv3(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``conv3x3(reflect_pad1(nearest_up2(x)))`` as four 2x2 convolutions on ``x`` (a pure kernel).

    The 1-pixel reflection pad of the upsampled map equals the upsampling of a 1-pixel
    replicate pad of ``x``, so the result is the same up to float rounding, with 16 instead
    of 36 multiply-adds per low-res pixel and channel pair.
    """
    n, _, h, w = x.shape
    xp = F.pad(x, (1, 1, 1, 1), mode="replicate")
    phases = []
    for a, kr in enumerate(_fold_taps(weight, 2)):
        for b, k in enumerate(_fold_taps(kr, 3)):
            phases.append(F.conv2d(xp[:, :, a : a + h + 1, b : b + w + 1], k, bias))
    out = torch.stack(phases, 2).reshape(n, -1, 2, 2, h, w)  # (N, O, row phase, col phase, H, W)
    return out.permute(0, 1, 4, 2, 5, 3).reshape(n, -1, 2 * h, 2 * w)


class NormAffine(nn.Module):
    """The affine part of ``InstanceNorm2d(affine=True)``: ``weight``/``bias`` of shape (C,).

    Holds no statistics; :meth:`apply_stats` normalizes with the ones it is given.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))  # exposed: "<name>.weight" (gamma)
        self.bias = nn.Parameter(torch.zeros(channels))  # exposed: "<name>.bias" (beta)

    def apply_stats(self, x: Tensor, stats: dict[str, Tensor]) -> Tensor:
        return kernels.tin(x, stats["mean"], stats["std"], self.weight, self.bias)


class ResidualBlock(nn.Module):
    """``x + in2(conv2(relu(in1(conv1(x)))))`` at 128 channels (no ReLU after the sum)."""

    def __init__(self, channels: int = 128) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3)
        self.in1 = NormAffine(channels)
        self.conv2 = ConvLayer(channels, channels, 3)
        self.in2 = NormAffine(channels)




class JohnsonNet(StyleModel):
    """TransformerNet with every instance normalization's statistics taken from a source.

    ``alpha`` blends the output with the input image: ``alpha * stylized + (1 - alpha) * x``
    (the network itself has no style-strength control).
    """

    def __init__(self, style_name: str = DEFAULT_STYLE) -> None:
        super().__init__()
        self.style_name = style_name
        self.conv1 = ConvLayer(3, 32, 9)
        self.in1 = NormAffine(32)
        self.conv2 = ConvLayer(32, 64, 3, stride=2)
        self.in2 = NormAffine(64)
        self.conv3 = ConvLayer(64, 128, 3, stride=2)
        self.in3 = NormAffine(128)
        self.res1 = ResidualBlock(128)
        self.res2 = ResidualBlock(128)
        self.res3 = ResidualBlock(128)
        self.res4 = ResidualBlock(128)
        self.res5 = ResidualBlock(128)
        self.deconv1 = UpsampleConvLayer(128, 64, 3)
        self.in4 = NormAffine(64)
        self.deconv2 = UpsampleConvLayer(64, 32, 3)
        self.in5 = NormAffine(32)
        self.deconv3 = ConvLayer(32, 3, 9)
        self.info = INFO

    def norm_points(self) -> tuple[str, ...]:
        """The 15 normalization point names, in forward order."""
        res = tuple(f"res{k}.in{j}" for k in range(1, 6) for j in (1, 2))
        return ("in1", "in2", "in3", *res, "in4", "in5")

    def prepare_style(self, style: Tensor | None) -> StyleCode:
        """The style is in the weights: an empty StyleCode (a style image is ignored)."""
        return StyleCode.build(NAME, {})

    def run(self, x: Tensor, style: StyleCode, source: StatsSource, alpha: float) -> Tensor:
        def norm(point: str, layer: NormAffine, y: Tensor) -> Tensor:
            return layer.apply_stats(y, source.get(point, y, in_stats))

        # relu_ acts on the fresh output of the normalization, never on a shared tensor
        y = x * INPUT_RANGE
        y = norm("in1", self.in1, self.conv1(y)).relu_()
        y = norm("in2", self.in2, self.conv2(y)).relu_()
        y = norm("in3", self.in3, self.conv3(y)).relu_()
        for k in range(1, 6):
            block: ResidualBlock = getattr(self, f"res{k}")
            h = norm(f"res{k}.in1", block.in1, block.conv1(y)).relu_()
            y = y + norm(f"res{k}.in2", block.in2, block.conv2(h))  # no ReLU after the sum
        y = norm("in4", self.in4, self.deconv1(y)).relu_()
        y = norm("in5", self.in5, self.deconv2(y)).relu_()
        out = (self.deconv3(y) / INPUT_RANGE).clamp(0.0, 1.0)
        if alpha != 1.0:
            out = alpha * out + (1.0 - alpha) * x
        return out


def _receptive_field() -> int:
    """Each kxk conv at scale s (input pixels per feature pixel) widens it by (k-1)*s."""
    rf, scale = 1, 1
    for k, change in ((9, 1), (3, 2), (3, 2)):  # conv1, conv2 (stride 2), conv3 (stride 2)
        rf += (k - 1) * scale
        scale *= change
    rf += 10 * 2 * scale  # ten 3x3 convs in the residual blocks
    for k in (3, 3):  # deconv1, deconv2 after a 2x upsampling
        scale //= 2
        rf += (k - 1) * scale
    return rf + 8 * scale  # deconv3 9x9


INFO = ModelInfo(
    name=NAME,
    size_multiple=4,  # conv2 and conv3 have stride 2
    receptive_field=_receptive_field(),
    takes_style_image=False,
    supports_alpha=True,
    # benchmarks/results/seams-*.json: margin 64 equals whole-image inference (margin 32:
    # seam 1.15)
    seam_margin=64,
)


WEIGHTS: tuple[WeightFile, ...] = tuple(
    WeightFile(f"{NAME}/{style}.pth", sha, None, f"Johnson fast neural style '{style}'")
    for style, sha in (
        ("candy", "7d83fb6c74b6d7d7ff4c2cbab38733b36d3d2f9b08ea674d00f3b3100afaeeef"),
        ("mosaic", "e7ef78e088ec8164869c43ec5b800c80b3a0a72b12766f9d44c15b86d3d11ea5"),
        ("pointilism", "4329030a8d668f02c311a2d1702c1950982082caa613102833b87d9d46c2c138"),
        ("rain_princess", "239dfedbc5827537ea4314d27cf5d1dd3d15728f25b2bd1f037854d8c3911c50"),
        ("udnie", "6a9136602bc99bde91de63f1a7ddfba1c6c13b22a546414935fa5c533c9c0a53"),
    )
)
_BY_STYLE = dict(zip(STYLES, WEIGHTS))


def is_user_checkpoint(variant: str) -> bool:
    """True when ``variant`` names a checkpoint file rather than a built-in style."""
    if variant.lower().endswith(_IMAGE_SUFFIXES):  # a style image: johnson bakes its style into the network
        return False
    return variant not in _BY_STYLE and (variant.lower().endswith(_USER_SUFFIXES) or "/" in variant or "\\" in variant)


def weights_for(variant: str | None) -> tuple[WeightFile, ...]:
    """The one checkpoint for ``variant``: a built-in style name (``None`` -> ``candy``) or the
    path of a user's ``.pth``/``.model`` TransformerNet checkpoint.

    A user checkpoint is returned with ``sha256=""`` (a user file, not verified) and an
    absolute ``relpath`` (so ``weights_dir / relpath`` is the file itself).
    """
    name = DEFAULT_STYLE if variant is None else str(variant)
    if name in _BY_STYLE:
        return (_BY_STYLE[name],)
    if is_user_checkpoint(name):
        path = Path(name).expanduser().resolve()
        return (WeightFile(str(path), "", None, f"user Johnson checkpoint {path.name}"),)
    raise ParameterError(
        f"style={variant!r}: johnson bakes one style into each network: give a style name ({', '.join(STYLES)}) or "
        "the path of a .pth/.model checkpoint (train one from a painting with `urst-dask train --method johnson`)"
    )


def drop_running_stats(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """The state dict without the ``in*.running_mean``/``running_var`` buffers of old checkpoints."""
    return {k: v for k, v in state_dict.items() if not _RUNNING_KEY.search(k)}


def build(state_dicts: dict[str, dict[str, Tensor]], variant: str | None = None) -> JohnsonNet:
    """Build the network for ``variant`` from ``{relpath: state_dict}`` (strict loading)."""
    (wf,) = weights_for(variant)
    if wf.relpath in state_dicts:
        sd = state_dicts[wf.relpath]
    elif len(state_dicts) == 1:
        (sd,) = state_dicts.values()
    else:
        raise ParameterError(f"johnson: no state dict for {wf.relpath!r} among {sorted(state_dicts)}")
    label = Path(wf.relpath).stem if wf.sha256 == "" else (DEFAULT_STYLE if variant is None else str(variant))
    model = JohnsonNet(label)
    model.load_state_dict(drop_running_stats(sd), strict=True)
    return model.freeze()


NETWORK = Network(INFO, "Johnson et al. fast neural style, 15 IN layers; style = candy | mosaic | pointilism | rain_princess | udnie "
            "| a .pth/.model checkpoint",
                  build, catalogue=WEIGHTS, files_for=weights_for)
