"""The frozen loss network: features of an image at named VGG-19 layers.

The paper takes the stroke perceptual loss at VGG-19 ``relu4_1``.  What is available:

* ``vgg19`` (default): the normalised ImageNet VGG-19 of the original WCT.  The shipped
  ``wct_vgg19/vgg_normalised_conv3_1.pth`` stops at ``relu3_1``, so the default layer is
  ``relu3_1`` (receptive field 24 px instead of relu4_1's 60 px: the loss sees smaller
  strokes).  With a full normalised VGG-19 (pytorch-AdaIN's ``vgg_normalised.pth``, the same
  ``nn.Sequential`` index layout) given as ``weights``, any layer up to ``relu5_1`` works,
  ``relu4_1`` being the paper's setting.
* ``wct16x``: the Collaborative-Distillation level-4 encoder (pruned VGG-19, 16/32/64/128
  channels) with its ``conv{k}1_aux`` 1x1 embeddings, which were trained to map its features
  onto the original VGG-19's ``relu{k}_1`` (widths 64/128/256/512).  ``relu4_1`` through it
  is an approximation of the paper's layer, about 20 times cheaper than VGG-19.

Layers are named ``relu1_1 ... relu5_1`` (``relu1_2``, ``relu2_2`` too for ``vgg19``).  Input
NCHW float RGB in [0, 1] on the network's device; the network's parameters are frozen
(``requires_grad`` False, eval mode), gradients flow to the input only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ParameterError, WeightsError
from ..io.weights import WeightFile, load_state_dict
from ..models import wct as wct_model
from ..models import wct16x as wct16x_model
from ..settings import _Choice

_VGG_INDEX = {"relu1_1": 3, "relu1_2": 6, "relu2_1": 10, "relu2_2": 13, "relu3_1": 17, "relu4_1": 30, "relu5_1": 43}
_CONV_OF = {"relu1_1": "11", "relu1_2": "12", "relu2_1": "21", "relu2_2": "22", "relu3_1": "31",
            "relu4_1": "41", "relu5_1": "51"}
SHIPPED_VGG_LAST = "relu3_1"  # what wct_vgg19/vgg_normalised_conv3_1.pth reaches


class LossNetKind(_Choice):
    VGG19 = "vgg19"
    WCT16X = "wct16x"


_LAYERS = {LossNetKind.VGG19: tuple(_VGG_INDEX), LossNetKind.WCT16X: ("relu1_1", "relu2_1", "relu3_1", "relu4_1")}


@dataclass(frozen=True)
class LossNetSpec:
    """Which loss network, the stroke loss layer, and an optional full VGG-19 file."""

    kind: LossNetKind | str = LossNetKind.VGG19
    stroke_layer: str = "relu3_1"
    weights: str | None = None  # a full normalised VGG-19 state dict (vgg19 only), for layers past relu3_1
    extra: tuple[str, ...] = field(default_factory=tuple)  # more layers the losses need

    def __post_init__(self) -> None:
        kind = LossNetKind(LossNetKind.parse(self.kind, "loss_net"))
        object.__setattr__(self, "kind", kind)
        valid = _LAYERS[kind]
        for layer in (self.stroke_layer, *self.extra):
            if layer not in valid:
                raise ParameterError(f"stroke_layer={layer!r}: the {kind.value} loss network has {', '.join(valid)}")
        if self.weights is not None and kind is not LossNetKind.VGG19:
            raise ParameterError(f"loss_weights={self.weights!r}: only the vgg19 loss network takes a weights file")
        deepest = max((self.stroke_layer, *self.extra), key=_VGG_INDEX.__getitem__)
        if kind is LossNetKind.VGG19 and self.weights is None and _VGG_INDEX[deepest] > _VGG_INDEX[SHIPPED_VGG_LAST]:
            raise ParameterError(f"stroke_layer={deepest!r}: the shipped VGG-19 (wct_vgg19) reaches relu3_1 only; "
                                 "give a full normalised VGG-19 (pytorch-AdaIN vgg_normalised.pth) as loss_weights, "
                                 "or use loss_net='wct16x' (relu4_1 through its aux embedding)")


class LossNet(nn.Module):
    """Frozen feature extractor: :meth:`forward` returns ``{layer: features}`` for the layers asked."""

    def __init__(self, kind: LossNetKind, body: nn.Module, layers: tuple[str, ...]) -> None:
        super().__init__()
        self.kind = kind
        self.body = body
        self.layers = layers
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> LossNet:  # always eval: it has no dropout/BN, but stay explicit
        return super().train(False)

    def forward(self, x: Tensor, layers: tuple[str, ...] | None = None) -> dict[str, Tensor]:
        want = set(layers or self.layers)
        if self.kind is LossNetKind.VGG19:
            return _vgg_features(self.body, x, want)  # type: ignore[arg-type]
        return _wct16x_features(self.body, x, want)


def _vgg_features(body: nn.Sequential, x: Tensor, want: set[str]) -> dict[str, Tensor]:
    at = {_VGG_INDEX[name]: name for name in want}
    last = max(at)
    out: dict[str, Tensor] = {}
    y = x
    for i, layer in enumerate(body):
        if isinstance(layer, nn.ReLU):
            y = F.relu(y)  # never in place: an earlier layer's output may be kept
        else:
            y = layer(y)
        if i in at:
            out[at[i]] = y
        if i >= last:
            break
    return out


def _wct16x_features(enc: Any, x: Tensor, want: set[str]) -> dict[str, Tensor]:
    """Small-encoder forward, with ``relu(conv{k}1_aux(relu{k}_1 small))`` at each level asked."""
    out: dict[str, Tensor] = {}
    deepest = max(int(name[4]) for name in want)
    y = enc.conv0(x)
    for name in enc.order:
        if name == "P":
            y = F.max_pool2d(y, 2)
            continue
        y = F.relu(getattr(enc, f"conv{name}")(F.pad(y, (1, 1, 1, 1), mode="reflect")))
        layer = f"relu{name[0]}_{name[1]}"
        if layer in want:
            out[layer] = F.relu(getattr(enc, f"conv{name[0]}1_aux")(y))
        if name == f"{deepest}1":
            break
    return out


def _vgg_body(spec: LossNetSpec, weights_dir: Path) -> nn.Sequential:
    deepest = max((spec.stroke_layer, *spec.extra, "relu3_1"), key=_VGG_INDEX.__getitem__)
    body = wct_model.vgg_encoder_layers(_CONV_OF[deepest])
    if spec.weights is not None:
        wf = WeightFile(str(Path(spec.weights).expanduser().resolve()), "", None, "full normalised VGG-19")
        sd = load_state_dict(Path("/"), wf)
    else:
        sd = load_state_dict(weights_dir, wct_model.encoder_file(3))
    needed = set(body.state_dict())
    missing = sorted(needed - set(sd))
    if missing:
        raise WeightsError(f"loss network: the VGG-19 file lacks {len(missing)} keys needed up to {deepest} "
                           f"(first {missing[0]!r}); is it a normalised VGG-19 nn.Sequential state dict?")
    body.load_state_dict({k: sd[k] for k in needed}, strict=True)
    return body


def _wct16x_body(weights_dir: Path) -> nn.Module:
    (wf,) = [w for w in wct16x_model.WEIGHTS if w.relpath.endswith("/e4.pth")]
    enc = wct16x_model.SmallEncoder(4)
    enc.load_state_dict(load_state_dict(weights_dir, wf), strict=True)
    return enc


def build_lossnet(spec: LossNetSpec, weights_dir: Path) -> LossNet:
    """Load the loss network of ``spec`` (on the CPU) from the weights folder."""
    kind = LossNetKind(LossNetKind.parse(spec.kind, "loss_net"))
    layers = tuple(dict.fromkeys((spec.stroke_layer, *spec.extra)))
    body = _vgg_body(spec, weights_dir) if kind is LossNetKind.VGG19 else _wct16x_body(weights_dir)
    return LossNet(kind, body, layers)


def style_layers(kind: LossNetKind, limit: str) -> tuple[str, ...]:
    """The ``relu{k}_1`` layers up to ``limit`` (AdaIN-style statistics losses use these)."""
    return tuple(name for name in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
                 if name in _LAYERS[kind] and _VGG_INDEX[name] <= _VGG_INDEX[limit])


def available_layers(kind: LossNetKind) -> tuple[str, ...]:
    return _LAYERS[kind]


__all__ = [
    "SHIPPED_VGG_LAST",
    "LossNet",
    "LossNetKind",
    "LossNetSpec",
    "available_layers",
    "build_lossnet",
    "style_layers",
]
