"""One training objective per method: the losses of one batch, ``L = L_o + lambda * L_sp``.

``L_o`` is computed on the stylized thumbnail (paper); ``L_sp`` on the stylized patch against
the upsampled crop of the stylized thumbnail.  With ``stroke=False`` the patch pass is not
run at all (the baseline costs only the thumbnail pass).  Inputs NCHW float [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from . import forward, losses
from .config import TrainConfig, TrainMethod
from .data import ContentBatch
from .lossnet import LossNet, LossNetKind, style_layers


@dataclass(frozen=True)
class LossLayers:
    content: str
    style: tuple[str, ...]


def loss_layers(cfg: TrainConfig) -> LossLayers:
    """Layers of ``L_o``: MicroAST content at the deepest ``relu{k}_1`` the loss network has
    (relu4_1 upstream; relu3_1 with the shipped VGG-19), style statistics at every
    ``relu{k}_1`` up to it; Johnson content at relu2_2 (relu2_1 through wct16x), Gram style at
    relu1_2, relu2_2, relu3_1 (relu1_1..relu4_1 through wct16x)."""
    kind = cfg.loss_net.kind
    if kind is LossNetKind.WCT16X:
        deepest = "relu4_1"
    else:
        deepest = "relu4_1" if cfg.loss_net.weights else "relu3_1"
    if cfg.method is TrainMethod.MICROAST:
        return LossLayers(deepest, style_layers(kind, deepest))  # type: ignore[arg-type]
    if kind is LossNetKind.WCT16X:
        return LossLayers("relu2_1", ("relu1_1", "relu2_1", "relu3_1", "relu4_1"))
    return LossLayers("relu2_2", ("relu1_2", "relu2_2", "relu3_1"))


def _stroke(thumb_out: Tensor, patch_out: Tensor, batch: ContentBatch, lossnet: LossNet) -> Tensor:
    target = losses.thumbnail_patch_target(thumb_out, batch.crop, batch.boxes, batch.patch.shape[-1])
    return losses.stroke_perceptual_loss(patch_out, target, lossnet)


def _passes(run: Any, lossnet: LossNet, batch: ContentBatch, style: Tensor, layers: Any,
            stroke: bool) -> tuple[Tensor, Tensor | None, dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
    """The stylized thumbnail (and, for the stroke loss, the patch normalized with the
    thumbnail's statistics), and the loss network's features of the output, content and style."""
    if stroke:
        thumb_out, patch_out = forward.two_passes(run, batch.thumb, batch.patch)
    else:
        thumb_out, patch_out = run(batch.thumb, forward.TensorRecorder()), None
    out_feats = lossnet(thumb_out, tuple(dict.fromkeys((layers.content, *layers.style))))
    with torch.no_grad():
        content_feats = lossnet(batch.thumb, (layers.content,))
        style_feats = lossnet(style, layers.style)
    return thumb_out, patch_out, out_feats, content_feats, style_feats


def microast_objective(net: nn.Module, lossnet: LossNet, batch: ContentBatch, style: Tensor,
                       cfg: TrainConfig, stroke: bool) -> dict[str, Tensor]:
    layers = loss_layers(cfg)
    signals = forward.microast_style_signals(net, style)  # type: ignore[arg-type]

    def run(x: Tensor, source) -> Tensor:
        return forward.microast_run(net, x, signals, source)  # type: ignore[arg-type]

    thumb_out, patch_out, out_feats, content_feats, style_feats = _passes(run, lossnet, batch, style, layers, stroke)
    wssc = cfg.setting("ssc_weight")
    res_signals = forward.microast_style_signals(net, thumb_out) if wssc > 0 else None  # type: ignore[arg-type]
    ssc = losses.ssc_loss(res_signals, signals) if res_signals is not None else thumb_out.new_zeros(())
    parts = losses.microast_loss(out_feats, content_feats, style_feats, ssc, content_layer=layers.content,
                                 style_layers=layers.style,
                                 weights=(cfg.setting("content_weight"), cfg.setting("style_weight"), wssc))
    return _with_stroke(parts, thumb_out, patch_out, batch, lossnet, cfg)


def johnson_objective(net: nn.Module, lossnet: LossNet, batch: ContentBatch, style: Tensor,
                      cfg: TrainConfig, stroke: bool) -> dict[str, Tensor]:
    layers = loss_layers(cfg)

    def run(x: Tensor, source) -> Tensor:
        return forward.johnson_run(net, x, source)  # type: ignore[arg-type]

    thumb_out, patch_out, out_feats, content_feats, style_feats = _passes(run, lossnet, batch, style, layers, stroke)
    with torch.no_grad():
        grams = {k: losses.gram(v).mean(0, keepdim=True) for k, v in style_feats.items()}
    parts = losses.johnson_loss(out_feats, content_feats, grams, content_layer=layers.content,
                                style_layers=layers.style,
                                weights=(cfg.setting("content_weight"), cfg.setting("style_weight")))
    return _with_stroke(parts, thumb_out, patch_out, batch, lossnet, cfg)


def _with_stroke(parts: dict[str, Tensor], thumb_out: Tensor, patch_out: Tensor | None, batch: ContentBatch,
                 lossnet: LossNet, cfg: TrainConfig) -> dict[str, Tensor]:
    lsp = _stroke(thumb_out, patch_out, batch, lossnet) if patch_out is not None else None
    out = dict(parts)
    if lsp is not None:
        out["stroke"] = lsp
    out["total"] = losses.total_loss(parts["original"], lsp, cfg.stroke_weight)
    return out


def objective(cfg: TrainConfig):
    """The method's objective function ``(net, lossnet, batch, style, cfg, stroke) -> {name: loss}``."""
    return microast_objective if cfg.method is TrainMethod.MICROAST else johnson_objective
