"""The 16x-compressed VGG-19 WCT of Collaborative Distillation (Wang et al., CVPR 2020).

Five encoder/decoder pairs; encoder k runs a pruned VGG-19 up to relu{k}_1 (widths
16/32/64/128/128, 24 for the level-1 model), decoder k mirrors it with 2x nearest
upsampling.  Stylization is cascaded coarse to fine: for k = 5..1, encode, whiten with
the (thumbnail's) content statistics, colour with the style's, blend by alpha, decode.

Checkpoint layout (upstream ``SmallEncoder{k}_16x_aux`` / ``SmallDecoder{k}_16x``):
``conv0`` (1x1 colour handling), ``conv11``...``conv51`` and the training-only
``conv{k}1_aux`` 1x1 convs, which are loaded (strict) but never run.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..io.weights import WeightFile
from .base import ModelInfo, stacked_receptive_field
from .cascade import CascadedWct
from .layers import reflect_conv
from .registry import Network

# VGG-19 body up to relu5_1; "P" is a 2x2 max pool.  Output width of each conv.
_VGG = ("11", "12", "P", "21", "22", "P", "31", "32", "33", "34", "P", "41", "42", "43", "44", "P", "51")
_WIDTH = {"11": 16, "12": 16, "21": 32, "22": 32, "31": 64, "32": 64, "33": 64, "34": 64,
          "41": 128, "42": 128, "43": 128, "44": 128, "51": 128}
_AUX_WIDTH = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}  # original VGG widths (distillation only)
LEVELS = (5, 4, 3, 2, 1)


def _body(level: int) -> tuple[str, ...]:
    return _VGG[: _VGG.index(f"{level}1") + 1]


def _widths(level: int) -> dict[str, int]:
    w = dict(_WIDTH)
    if level == 1:
        w["11"] = 24  # the level-1 pair was trained wider
    return w


class SmallEncoder(nn.Module):
    """Encoder of level k: RGB [0, 1] -> relu{k}_1 features (C_k channels, 1/2^(k-1) size)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level
        self.order = _body(level)
        widths = _widths(level)
        self.conv0 = nn.Conv2d(3, 3, 1)  # colour / mean handling
        cin = 3
        for name in self.order:
            if name == "P":
                continue
            setattr(self, f"conv{name}", nn.Conv2d(cin, widths[name], 3))
            cin = widths[name]
        for k in range(1, level + 1):  # distillation-only 1x1 maps to original VGG widths
            setattr(self, f"conv{k}1_aux", nn.Conv2d(widths[f"{k}1"], _AUX_WIDTH[k], 1))
        self.out_channels = cin

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv0(x)
        for name in self.order:  # ends at relu{level}_1
            y = F.max_pool2d(y, 2) if name == "P" else F.relu(reflect_conv(getattr(self, f"conv{name}"), y), inplace=True)
        return y


class SmallDecoder(nn.Module):
    """Decoder of level k: relu{k}_1 features -> RGB (ReLU output, unclamped)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level
        self.order = tuple(reversed(_body(level)))
        widths = _widths(level)
        inputs = {}
        cin = 3
        for name in _body(level):
            if name != "P":
                inputs[name] = cin
                cin = widths[name]
        for name in self.order:
            if name != "P":
                setattr(self, f"conv{name}", nn.Conv2d(widths[name], inputs[name], 3))

    def forward(self, x: Tensor) -> Tensor:
        y = x
        for name in self.order:
            if name == "P":
                y = F.interpolate(y, scale_factor=2.0, mode="nearest")
            else:
                y = F.relu(reflect_conv(getattr(self, f"conv{name}"), y), inplace=True)
        return y


def info_for(levels: tuple[int, ...]) -> ModelInfo:
    """The geometry of the cascade ``levels`` (default all five, 5..1)."""
    return ModelInfo(
        name="wct16x",
        size_multiple=2 ** (max(levels) - 1),
        receptive_field=stacked_receptive_field(tuple(_body(k) for k in levels)),
        takes_style_image=True,
        supports_alpha=True,
        # benchmarks/results/seams-*.json: crop at margin 64 gives seam 1.01 and 48 dB against
        # whole-image inference on a 3000-px photograph (margin 32: seam 1.33, 35 dB)
        seam_margin=64 if tuple(levels) == LEVELS else None,
    )


INFO = info_for(LEVELS)


class Wct16x(CascadedWct):
    """Cascaded multi-level WCT with the compressed encoders/decoders."""

    def __init__(self, levels: tuple[int, ...] = LEVELS) -> None:
        super().__init__()
        self.levels = tuple(levels)
        self.encoders = nn.ModuleDict({str(k): SmallEncoder(k) for k in self.levels})
        self.decoders = nn.ModuleDict({str(k): SmallDecoder(k) for k in self.levels})
        self.info = info_for(self.levels)


WEIGHTS: tuple[WeightFile, ...] = tuple(
    WeightFile(
        f"wct16x/{kind}{k}.pth",
        sha,
        "https://github.com/MingSun-Tse/Collaborative-Distillation/raw/master/trained_models/"
        + ("wct_se_16x_new/" if kind == "e" else "wct_se_16x_new_sd/")
        + upstream,
        f"wct16x level-{k} {'encoder' if kind == 'e' else 'decoder'}",
    )
    for kind, k, upstream, sha in (
        ("e", 1, "20191110-133713_E20.pth", "f74755a65164a88e0db8cbb7d99d7078b9fa505df0953fac5123bfc7c84e0ea4"),
        ("e", 2, "20191110-132713_E20.pth", "cb654af6bae77176f8c7721c965483e865b987f2f1612dda1ba0d0b5c3819a61"),
        ("e", 3, "20191110-132705_E20.pth", "269cdd0e2634e3e1e5d3005b9e7eca0f4cc8077653fee1ac8c0cf1cbe9ab8758"),
        ("e", 4, "20191110-132643_E20.pth", "d2f059cbcd6669556a43aadef58d20c8b280462c18b60a9e7424a14dd271cd6b"),
        ("e", 5, "20191109-211322_E20.pth", "9417c34d0d8d621bc6af78be745f1b8d30f5f210efa01e50655c60eb3770816b"),
        ("d", 1, "20191111-091942_E20.pth", "05f26ad40044c019da0cf731372d5bd2ee4b477825c7f45508da70b1cd5a95fd"),
        ("d", 2, "20191111-091932_E20.pth", "94dd26f0e69857f79bf284a43a3708aa05c09c2593427c7f6e400ad12ce314e6"),
        ("d", 3, "20191111-091929_E20.pth", "005faba27859435762a8a9386116c00629cd8835a01617d0a71defa577c42174"),
        ("d", 4, "20191111-092553_E20.pth", "902f65e2c6033d803d02df552eb898e5985190a7ae67d155e384826eec6f04cb"),
        ("d", 5, "20191110-204615_E20.pth", "17fd0f81622f01366eb21cb4d40140ee38cf988ed6eaf266629709c397a8b485"),
    )
)


def build(state_dicts: dict[str, dict[str, Tensor]], variant: str | None = None) -> Wct16x:
    """Build the network from ``{relpath: state_dict}`` (strict loading of every pair)."""
    model = Wct16x()
    for k in model.levels:
        model.encoders[str(k)].load_state_dict(state_dicts[f"wct16x/e{k}.pth"], strict=True)
        model.decoders[str(k)].load_state_dict(state_dicts[f"wct16x/d{k}.pth"], strict=True)
    return model.freeze()


NETWORK = Network(INFO, "16x-compressed VGG-19 WCT (Collaborative Distillation), 5 levels",
                  build, catalogue=WEIGHTS)
