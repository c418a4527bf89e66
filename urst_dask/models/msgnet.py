"""MSG-Net (Zhang & Dana, "Multi-style Generative Network for Real-time Transfer", 2017) in
the layout of zhanghang1989/PyTorch-Multi-Style-Transfer ``experiments/net.py`` (``Net``,
ngf=128, the ``21styles.model`` checkpoint).

Upstream works in BGR [0, 255] (``utils.preprocess_batch`` swaps RGB to BGR, no mean
subtraction) for the content, the style and the output; this module converts from and to
RGB [0, 1] inside.

Structure: ``model1`` (7x7 conv, IN, ReLU, two stride-2 pre-activation bottlenecks) is the
siamese encoder shared by the style and the content; ``model`` = ``[model1, Inspiration,
6 bottlenecks, 2 upsampling bottlenecks, IN, ReLU, 7x7 conv]``.  ``model1`` is registered
twice (``model1.*`` and ``model.0.*``) and the Inspiration weight twice (``ins.weight``,
``model.1.weight``), so the checkpoint holds both copies; strict loading needs both.

Normalization: every norm layer is ``nn.InstanceNorm2d`` without affine parameters.  The
checkpoint was saved by a PyTorch whose InstanceNorm kept ``running_mean``/``running_var``
buffers (never used at inference); upstream drops them before loading and so does
:func:`build`, which then loads strictly.  Each IN is a TIN point, named by its path in
``model`` (``model.0.1``, ``model.0.3.conv_block.0``...; 32 points, in forward order).

Style: the Inspiration layer's target Gram matrix ``G = F F^T / (C H W)`` of ``model1(style)``
(the style image normalised with its own statistics, as upstream ``setTarget``) is the
StyleCode; the layer computes ``(W G)^T X`` with its learned ``W``.  No alpha.

Where users get the file (not available in this project's shared weights):
https://www.dropbox.com/s/2iz8orqqubrfrpo/21styles.model?dl=1 (upstream
``experiments/models/download_model.sh``); put it in ``<weights>/msgnet/21styles.model``.
Its sha256 is not recorded here (``""``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import kernels
from ..errors import ParameterError
from ..io.weights import WeightFile
from ..stats import InstanceSource, StatsSource, StyleCode
from .base import ModelInfo, StyleModel
from .layers import ConvLayer, in_stats, reflect_conv
from .registry import Network

NGF = 128
EXPANSION = 4
N_BLOCKS = 6
STYLE_POINT = "inspiration"
_DROP = ("running_mean", "running_var", "num_batches_tracked")


class _Ctx:
    """What one forward pass threads through the blocks: the stats source and the style."""

    __slots__ = ("source", "gram")

    def __init__(self, source: StatsSource, gram: Tensor | None) -> None:
        self.source = source
        self.gram = gram


class _CtxModule(nn.Module):
    """A module whose forward takes ``(x, ctx)``."""


def _seq(seq: nn.Sequential, x: Tensor, ctx: _Ctx) -> Tensor:
    for m in seq:
        if isinstance(m, nn.Sequential):  # model1 inside model
            x = _seq(m, x, ctx)
        else:
            x = m(x, ctx) if isinstance(m, _CtxModule) else m(x)
    return x


class InstanceNormPoint(_CtxModule):
    """``nn.InstanceNorm2d(C)`` (affine only if the checkpoint has weight/bias) as a TIN point."""

    def __init__(self, channels: int, affine: bool = False) -> None:
        super().__init__()
        self.point = ""  # set by MsgNet once the network is assembled
        self.weight: nn.Parameter | None = nn.Parameter(torch.ones(channels)) if affine else None
        self.bias: nn.Parameter | None = nn.Parameter(torch.zeros(channels)) if affine else None

    def forward(self, x: Tensor, ctx: _Ctx) -> Tensor:
        st = ctx.source.get(self.point, x, in_stats)
        return kernels.tin(x, st["mean"], st["std"], self.weight, self.bias)


class UpsampleConvLayer(nn.Module):
    """Nearest 2x upsampling, then a reflection-padded convolution (key ``conv2d``)."""

    def __init__(self, cin: int, cout: int, kernel_size: int, upsample: int) -> None:
        super().__init__()
        self.upsample = upsample
        self.pad = kernel_size // 2
        self.conv2d = nn.Conv2d(cin, cout, kernel_size, 1)

    def forward(self, x: Tensor) -> Tensor:
        if self.conv2d.kernel_size == (1, 1):  # a 1x1 conv commutes with nearest upsampling
            return F.interpolate(self.conv2d(x), scale_factor=float(self.upsample), mode="nearest")
        return reflect_conv(self.conv2d, F.interpolate(x, scale_factor=float(self.upsample), mode="nearest"))


class Bottleneck(_CtxModule):
    """Pre-activation bottleneck: [IN, ReLU, 1x1] [IN, ReLU, 3x3/stride] [IN, ReLU, 1x1] + residual."""

    def __init__(self, inplanes: int, planes: int, stride: int, downsample: bool, affine: bool) -> None:
        super().__init__()
        self.downsample = downsample
        if downsample:
            self.residual_layer = nn.Conv2d(inplanes, planes * EXPANSION, 1, stride)
        self.conv_block = nn.Sequential(
            InstanceNormPoint(inplanes, affine), nn.ReLU(inplace=True), nn.Conv2d(inplanes, planes, 1, 1),
            InstanceNormPoint(planes, affine), nn.ReLU(inplace=True), ConvLayer(planes, planes, 3, stride),
            InstanceNormPoint(planes, affine), nn.ReLU(inplace=True), nn.Conv2d(planes, planes * EXPANSION, 1, 1),
        )

    def forward(self, x: Tensor, ctx: _Ctx) -> Tensor:
        residual = self.residual_layer(x) if self.downsample else x
        return residual + _seq(self.conv_block, x, ctx)


class UpBottleneck(_CtxModule):
    """Upsampling bottleneck: the 3x3 conv and the 1x1 residual conv both upsample 2x first."""

    def __init__(self, inplanes: int, planes: int, stride: int, affine: bool) -> None:
        super().__init__()
        self.residual_layer = UpsampleConvLayer(inplanes, planes * EXPANSION, 1, stride)
        self.conv_block = nn.Sequential(
            InstanceNormPoint(inplanes, affine), nn.ReLU(inplace=True), nn.Conv2d(inplanes, planes, 1, 1),
            InstanceNormPoint(planes, affine), nn.ReLU(inplace=True), UpsampleConvLayer(planes, planes, 3, stride),
            InstanceNormPoint(planes, affine), nn.ReLU(inplace=True), nn.Conv2d(planes, planes * EXPANSION, 1, 1),
        )

    def forward(self, x: Tensor, ctx: _Ctx) -> Tensor:
        return self.residual_layer(x) + _seq(self.conv_block, x, ctx)


class Inspiration(_CtxModule):
    """``(W G)^T X`` with the learned ``W (1, C, C)`` and the style's target Gram ``G``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, channels, channels))

    def forward(self, x: Tensor, ctx: _Ctx) -> Tensor:
        if ctx.gram is None:
            raise RuntimeError("msgnet: the Inspiration layer needs the style's Gram matrix")
        p = self.weight[0] @ ctx.gram.to(x.dtype)  # (C, C)
        n, c, h, w = x.shape
        return (p.transpose(0, 1) @ x.reshape(n, c, h * w)).view(n, c, h, w)


def _gram(f: Tensor) -> Tensor:
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


INFO = ModelInfo(
    name="msgnet",
    size_multiple=4,
    # main path: 7x7 (+6), 3x3/2 at scale 1 (+2) and at scale 2 (+4), six 3x3 at
    # scale 4 (+48), upsampling 3x3 at scale 2 (+4) and 1 (+2), 7x7 (+6)
    receptive_field=73,
    takes_style_image=True,
    supports_alpha=False,
)


class MsgNet(StyleModel):
    """The MSG-Net generator with thumbnail instance normalization."""

    def __init__(self, ngf: int = NGF, affine: bool = False) -> None:
        super().__init__()
        self.model1 = nn.Sequential(  # siamese encoder: content and style
            ConvLayer(3, 64, 7, 1),
            InstanceNormPoint(64, affine),
            nn.ReLU(inplace=True),
            Bottleneck(64, 32, 2, True, affine),  # 1/2
            Bottleneck(32 * EXPANSION, ngf, 2, True, affine),  # 1/4, ngf*4 channels
        )
        self.ins = Inspiration(ngf * EXPANSION)
        blocks: list[nn.Module] = [self.model1, self.ins]
        blocks += [Bottleneck(ngf * EXPANSION, ngf, 1, False, affine) for _ in range(N_BLOCKS)]
        blocks += [
            UpBottleneck(ngf * EXPANSION, 32, 2, affine),  # 1/2
            UpBottleneck(32 * EXPANSION, 16, 2, affine),  # 1/1
            InstanceNormPoint(16 * EXPANSION, affine),
            nn.ReLU(inplace=True),
            ConvLayer(16 * EXPANSION, 3, 7, 1),
        ]
        self.model = nn.Sequential(*blocks)
        for name, m in self.model.named_modules(prefix="model"):  # registration order = forward order
            if isinstance(m, InstanceNormPoint):
                m.point = name
        self.info = INFO

    def points(self) -> list[str]:
        """The TIN point names, in forward order."""
        return [m.point for m in self.model.modules() if isinstance(m, InstanceNormPoint)]

    @staticmethod
    def _to_bgr255(x: Tensor) -> Tensor:
        return x.flip(1) * 255.0

    def prepare_style(self, style: Tensor | None) -> StyleCode:
        if style is None:
            raise ParameterError("style=None: msgnet needs a style image")
        with torch.inference_mode():
            f = _seq(self.model1, self._to_bgr255(style.float()), _Ctx(InstanceSource(), None))
            g = _gram(f)
        return StyleCode.build(self.info.name, {STYLE_POINT: {"gram": g[0].cpu().numpy()}})

    def run(self, x: Tensor, style: StyleCode, source: StatsSource, alpha: float) -> Tensor:
        ctx = _Ctx(source, style.tensors(STYLE_POINT, x.device)["gram"])
        y = _seq(self.model, self._to_bgr255(x), ctx)
        return (y.flip(1) / 255.0).clamp(0.0, 1.0)


WEIGHTS: tuple[WeightFile, ...] = (
    # sha256 unknown, so no automatic download
    WeightFile(
        "msgnet/21styles.model", "", None,
        "MSG-Net 21-style generator, from https://www.dropbox.com/s/2iz8orqqubrfrpo/21styles.model?dl=1",
    ),
)


def build(state_dicts: dict[str, dict[str, Tensor]], variant: str | None = None) -> MsgNet:
    """Build from ``{relpath: state_dict}``: the stale IN running statistics are dropped,
    everything else is loaded strictly.  IN weight/bias keys, if present, make the IN affine."""
    sd = {k: v for k, v in state_dicts["msgnet/21styles.model"].items() if not k.endswith(_DROP)}
    affine = "model1.1.weight" in sd
    model = MsgNet(affine=affine)
    model.load_state_dict(sd, strict=True)
    return model.freeze()


NETWORK = Network(INFO, "MSG-Net (Zhang & Dana 2017), 21styles.model (user-supplied)",
                  build, catalogue=WEIGHTS)
