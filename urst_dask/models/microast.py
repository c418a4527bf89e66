"""MicroAST (Wang et al., AAAI 2023): tiny arbitrary style transfer without a VGG at inference.

Four checkpoints (upstream ``net_microAST.py``, ``slim_factor = 1``):

* content encoder and style encoder, the same architecture (``Encoder``)::

      enc1: 0 conv 9x9 3->16, ReLU, 2 conv 3x3/2 16->32 (groups 16), ReLU,
            4 conv 1x1 32->32, ReLU, 6 conv 3x3/2 32->64 (groups 32), ReLU,
            8 conv 1x1 64->64, ReLU, 10 residual(64)
      enc2: 0 residual(64)

  returning ``[enc1(x), enc2(enc1(x))]`` (64 channels at 1/4 size);
* modulator: four depthwise 3x3 convs + global average pooling turning the style features
  into per-channel scalars ``w1, b1`` (from style feature 1) and ``w2, b2`` (from feature 2);
* decoder::

      y = AdaIN(c2, s2)            point "adain1"  (c2: content encoder's second output)
      y = dec1(y; w2, b2)          modulated residual layer
      y = AdaIN(y, s1)             point "adain2"
      y = dec2(y; w1, b1)
      dec3: bilinear up2, conv 3x3 64->32 (groups 32), ReLU, conv 1x1, ReLU,
            bilinear up2, conv 3x3 32->16 (groups 16), ReLU, conv 1x1, ReLU, conv 9x9 16->3

A modulated residual layer computes ``h = relu(w * conv1(x) + b * x)``,
``x + w * conv2(h) + b * h`` with the per-channel ``w``, ``b`` (upstream "filterMod").
Every conv is preceded by reflection padding of ``k // 2``.

TIN: the content statistics of both AdaIN points (pytorch-AdaIN ``calc_mean_std``: unbiased
variance, eps 1e-5) come from the :class:`StatsSource`; the style statistics and the
modulation scalars are computed once by :meth:`MicroAST.prepare_style` and stored in the
:class:`StyleCode` (points ``adain1``, ``mod1``, ``adain2``, ``mod2`` in decoder order).
``alpha`` is upstream's: at each AdaIN point ``alpha * AdaIN(y) + (1 - alpha) * y``; the
pipeline refuses alpha != 1 (see ``INFO``), which saturates the picture with these weights.
Input and output RGB in [0, 1] (the output is clamped).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import kernels
from ..errors import ParameterError
from ..io.weights import WeightFile
from ..stats import StatsSource, StyleCode
from .base import ModelInfo, StyleModel
from .layers import ConvLayer as _ConvLayer
from .layers import adain_stats
from .registry import Network

NAME = "microast"


def ConvLayer(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> _ConvLayer:
    """Upstream ``ConvLayer``: reflection pad ``k // 2``, then a (grouped) conv keyed ``conv_layer``."""
    return _ConvLayer(cin, cout, k, stride, groups, key="conv_layer")


class ResidualLayer(nn.Module):
    """``x + conv2(relu(conv1(x)))``, or the modulated form when ``w``/``b`` are given."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3)
        self.conv2 = ConvLayer(channels, channels, 3)

    def forward(self, x: Tensor, w: Tensor | None = None, b: Tensor | None = None) -> Tensor:
        if w is None or b is None:
            return x + self.conv2(self.conv1(x).relu_())
        h = torch.addcmul(b * x, w, self.conv1(x)).relu_()  # relu(w * conv1(x) + b * x)
        return x + torch.addcmul(b * h, w, self.conv2(h))  # x + w * conv2(h) + b * h


class Encoder(nn.Module):
    """Content or style encoder: image [0, 1] -> two 64-channel maps at 1/4 size."""

    def __init__(self) -> None:
        super().__init__()
        self.enc1 = nn.Sequential(  # indices as upstream: convs at 0, 2, 4, 6, 8, residual at 10
            ConvLayer(3, 16, 9),
            nn.ReLU(inplace=True),
            ConvLayer(16, 32, 3, stride=2, groups=16),
            nn.ReLU(inplace=True),
            ConvLayer(32, 32, 1),
            nn.ReLU(inplace=True),
            ConvLayer(32, 64, 3, stride=2, groups=32),
            nn.ReLU(inplace=True),
            ConvLayer(64, 64, 1),
            nn.ReLU(inplace=True),
            ResidualLayer(64),
        )
        self.enc2 = nn.Sequential(ResidualLayer(64))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f1 = self.enc1(x)
        return f1, self.enc2(f1)


class Modulator(nn.Module):
    """Style features -> per-channel modulation scalars (depthwise 3x3 conv, global mean)."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        for name in ("weight1", "bias1", "weight2", "bias2"):  # "<name>.0.conv_layer.*"
            setattr(self, name, nn.Sequential(ConvLayer(channels, channels, 3, groups=channels)))

    def forward(self, s1: Tensor, s2: Tensor) -> dict[str, Tensor]:
        """``{"w1", "b1"}`` from ``s1`` and ``{"w2", "b2"}`` from ``s2``, each ``(N, C)``."""

        def pooled(name: str, s: Tensor) -> Tensor:
            branch: nn.Module = getattr(self, name)
            return branch(s).mean(dim=(2, 3))

        return {
            "w1": pooled("weight1", s1),
            "b1": pooled("bias1", s1),
            "w2": pooled("weight2", s2),
            "b2": pooled("bias2", s2),
        }


class Decoder(nn.Module):
    """Two modulated residual layers, then the upsampling head ``dec3``."""

    def __init__(self) -> None:
        super().__init__()
        self.dec1 = ResidualLayer(64)
        self.dec2 = ResidualLayer(64)
        self.dec3 = nn.Sequential(  # indices as upstream: upsampling at 0 and 5, convs between
            nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=False),
            ConvLayer(64, 32, 3, groups=32),
            nn.ReLU(inplace=True),
            ConvLayer(32, 32, 1),
            nn.ReLU(inplace=True),
            nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=False),
            ConvLayer(32, 16, 3, groups=16),
            nn.ReLU(inplace=True),
            ConvLayer(16, 16, 1),
            nn.ReLU(inplace=True),
            ConvLayer(16, 3, 9),
        )


def _receptive_field() -> int:
    """Content path: each kxk conv at scale s widens it by (k-1)*s, a bilinear 2x upsampling
    from scale s by about s; the style side is global and not counted."""
    rf, scale = 1, 1
    rf += 8  # enc1.0 9x9
    rf += 2 * scale  # enc1.2 3x3 stride 2
    scale = 2
    rf += 2 * scale  # enc1.6 3x3 stride 2
    scale = 4
    rf += 4 * 2 * scale  # residual layers enc1.10, enc2.0: four 3x3 convs
    rf += 4 * 2 * scale  # decoder residual layers dec1, dec2
    rf += scale  # bilinear up2
    scale = 2
    rf += 2 * scale  # dec3.1 3x3
    rf += scale  # bilinear up2
    scale = 1
    rf += 2 * scale  # dec3.6 3x3
    return rf + 8  # dec3.10 9x9


INFO = ModelInfo(
    name=NAME,
    size_multiple=4,  # two stride-2 convs in the encoder
    receptive_field=_receptive_field(),
    takes_style_image=True,
    # the pipeline refuses alpha != 1: upstream's blend of the raw features into the AdaIN points
    # (kept in run(), and tested against upstream) saturates the picture with the released weights
    # (a 300 x 200 photograph at alpha 0.9: mean RGB 5 / 254 / 255, std 17 / 6 / 0)
    supports_alpha=False,
    # benchmarks/results/seams-*.json: margin 32 is within 78 dB of whole-image inference
    seam_margin=32,
)


class MicroAST(StyleModel):
    """Content encoder + decoder with two AdaIN points; the style side is prepared once."""

    def __init__(self) -> None:
        super().__init__()
        self.content_encoder = Encoder()
        self.style_encoder = Encoder()
        self.modulator = Modulator(64)
        self.decoder = Decoder()
        self.info = INFO

    def prepare_style(self, style: Tensor | None) -> StyleCode:
        """Style statistics at both AdaIN points and the four modulation vectors, as (C,) arrays."""
        if style is None:
            raise ParameterError("style=None: microast needs a style image")
        if style.dim() != 4 or style.shape[0] != 1:
            raise ParameterError(f"style: expected (1, 3, H, W), got shape {tuple(style.shape)}")
        with torch.inference_mode():
            s = style.to(device=self.device, dtype=torch.float32)
            s1, s2 = self.style_encoder(s)
            mod = self.modulator(s1, s2)
            st1, st2 = adain_stats(s1), adain_stats(s2)

        def arr(t: Tensor):
            return t[0].float().cpu().numpy()

        entries = {
            "adain1": {"mean": arr(st2["mean"]), "std": arr(st2["std"])},  # AdaIN(c2, s2)
            "mod1": {"weight": arr(mod["w2"]), "bias": arr(mod["b2"])},  # dec1 uses w[1], b[1]
            "adain2": {"mean": arr(st1["mean"]), "std": arr(st1["std"])},  # AdaIN(y, s1)
            "mod2": {"weight": arr(mod["w1"]), "bias": arr(mod["b1"])},  # dec2 uses w[0], b[0]
        }
        return StyleCode.build(NAME, entries)

    def run(self, x: Tensor, style: StyleCode, source: StatsSource, alpha: float) -> Tensor:
        dev = x.device

        def vec(t: Tensor) -> Tensor:
            return t.to(x.dtype).reshape(1, -1, 1, 1)

        def adain(point: str, y: Tensor) -> Tensor:
            content = source.get(point, y, adain_stats)
            s = style.tensors(point, dev)
            out = kernels.adain(y, content["mean"], content["std"], s["mean"], s["std"])
            return out if alpha == 1.0 else alpha * out + (1.0 - alpha) * y

        _, c2 = self.content_encoder(x)  # the first output is not used by the decoder
        m1, m2 = style.tensors("mod1", dev), style.tensors("mod2", dev)
        y = adain("adain1", c2)
        y = self.decoder.dec1(y, vec(m1["weight"]), vec(m1["bias"]))
        y = adain("adain2", y)
        y = self.decoder.dec2(y, vec(m2["weight"]), vec(m2["bias"]))
        return self.decoder.dec3(y).clamp(0.0, 1.0)


WEIGHTS: tuple[WeightFile, ...] = tuple(
    WeightFile(
        f"{NAME}/{part}_iter_160000.pth.tar",
        sha,
        f"https://github.com/EndyWon/MicroAST/raw/main/models/{part}_iter_160000.pth.tar",
        f"MicroAST {part.replace('_', ' ')}",
    )
    for part, sha in (
        ("content_encoder", "c8d895c0eec52507c157e102fab217c37f0c399ef3e168ef8b0b2677714660a4"),
        ("style_encoder", "94f6b3fa386828692c20809a0af8bd0eba9c04e90a7d8842086976e4d223c5af"),
        ("modulator", "8588055baf7d5ad8398d595d5518c6f030e3ff8dbb6007a7c1779776e11da28b"),
        ("decoder", "32e04a46b953fd9f94ec9e20f351511305a5260e000c18f9aef6570d5f1e23d9"),
    )
)


def build(state_dicts: dict[str, dict[str, Tensor]], variant: str | None = None) -> MicroAST:
    """Build the network from ``{relpath: state_dict}`` (strict loading of all four parts)."""
    model = MicroAST()
    for wf in WEIGHTS:
        part = wf.relpath.split("/", 1)[1].split("_iter_", 1)[0]
        getattr(model, part).load_state_dict(state_dicts[wf.relpath], strict=True)
    return model.freeze()


NETWORK = Network(INFO, "MicroAST arbitrary style (AAAI 2023): TIN at its two AdaIN points",
                  build, catalogue=WEIGHTS)
