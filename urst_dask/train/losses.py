"""Training losses, as pure functions of tensors (NCHW float, any device).

* :func:`stroke_perceptual_loss` - URST's ``L_sp``: the mean squared difference of loss-network
  features between the stylized patch ``I_p`` and the patch-sized crop of the stylized
  thumbnail upsampled to the patch size, ``I_tp`` (:func:`thumbnail_patch_target`), whose
  gradient is detached: ``L_sp = mean((F_l(I_p) - F_l(I_tp))^2)``.
* :func:`microast_loss` - MicroAST's own ``L_o``: content loss (MSE of the deepest loss
  feature against the content's), AdaIN-style statistics style loss summed over the
  ``relu{k}_1`` layers, and the style signal contrastive loss (:func:`ssc_loss`).
* :func:`johnson_loss` - Johnson et al.'s perceptual ``L_o``: feature reconstruction at one
  layer and Gram-matrix style reconstruction at several.

The total is ``L = L_o + lambda * L_sp`` (:func:`total_loss`, lambda = 1 in the paper).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import kernels

STATS_EPS = 1e-5  # pytorch-AdaIN calc_mean_std


class FeatureNet(Protocol):
    layers: tuple[str, ...]

    def __call__(self, x: Tensor, layers: tuple[str, ...] | None = None) -> dict[str, Tensor]: ...


def thumbnail_patch_target(thumb_out: Tensor, crop_size: int, boxes: Tensor, patch: int) -> Tensor:
    """``I_tp``: the stylized thumbnail ``(N, 3, t, t)`` upsampled (bilinear) to the crop size,
    then each sample's patch ``boxes[n] = (y, x)`` of side ``patch`` cut out; detached."""
    with torch.no_grad():
        up = F.interpolate(thumb_out.detach(), size=(crop_size, crop_size), mode="bilinear", align_corners=False)
        crops = [up[n : n + 1, :, int(y) : int(y) + patch, int(x) : int(x) + patch] for n, (y, x) in enumerate(boxes)]
        return torch.cat(crops, 0)


def stroke_perceptual_loss(patch_out: Tensor, thumb_target: Tensor, loss_net: FeatureNet,
                           layer: str | None = None) -> Tensor:
    """``L_sp = mean((F_l(patch_out) - F_l(thumb_target))^2)`` at ``layer`` (default: the loss
    network's first layer, its stroke layer).  ``thumb_target`` is detached here whatever the
    caller passes, so no gradient ever reaches the thumbnail branch through it."""
    name = layer or loss_net.layers[0]
    if patch_out.shape != thumb_target.shape:
        raise ValueError(f"stroke loss: patch {tuple(patch_out.shape)} and target {tuple(thumb_target.shape)} differ")
    with torch.no_grad():
        target = loss_net(thumb_target.detach(), (name,))[name]
    return F.mse_loss(loss_net(patch_out, (name,))[name], target)


def mean_std(feat: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel mean and sqrt(unbiased var + 1e-5), each ``(N, C)``."""
    return kernels.calc_mean_std(feat, STATS_EPS, unbiased=True)


def stats_style_loss(out_feats: Mapping[str, Tensor], style_feats: Mapping[str, Tensor],
                     layers: tuple[str, ...]) -> Tensor:
    """Sum over ``layers`` of ``mse(mean(out), mean(style)) + mse(std(out), std(style))``."""
    total = out_feats[layers[0]].new_zeros(())
    for name in layers:
        om, os_ = mean_std(out_feats[name])
        sm, ss = mean_std(style_feats[name])
        total = total + F.mse_loss(om, sm) + F.mse_loss(os_, ss)
    return total


def gram(feat: Tensor) -> Tensor:
    """``(N, C, C)`` Gram matrices normalised by ``C * H * W`` (Johnson et al.)."""
    n, c, h, w = feat.shape
    f = feat.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def gram_style_loss(out_feats: Mapping[str, Tensor], style_grams: Mapping[str, Tensor],
                    layers: tuple[str, ...]) -> Tensor:
    """Sum over ``layers`` of ``mse(gram(out), style_gram)`` (the style Grams broadcast over N)."""
    total = out_feats[layers[0]].new_zeros(())
    for name in layers:
        g = gram(out_feats[name])
        total = total + F.mse_loss(g, style_grams[name].expand_as(g))
    return total


def _signal_distance(res: Mapping[str, Tensor], sty: Mapping[str, Tensor]) -> Tensor:
    """``(N, N)`` distances between result i's and style j's modulation signals: statistics of
    both style-encoder features plus the squared error of the four modulation vectors."""
    def pair(a: Tensor, b: Tensor) -> Tensor:
        return ((a[:, None] - b[None, :]) ** 2).mean(-1)

    d = res["s1"].new_zeros(())
    for key in ("s1", "s2"):
        am, as_ = mean_std(res[key])
        bm, bs = mean_std(sty[key])
        d = d + pair(am, bm) + pair(as_, bs)
    for key in ("w1", "b1", "w2", "b2"):
        d = d + pair(res[key], sty[key])
    return d


def ssc_loss(res_signals: Mapping[str, Tensor], style_signals: Mapping[str, Tensor]) -> Tensor:
    """MicroAST's style signal contrastive loss: for each result i, the distance of its style
    signals (style-encoder features ``s1, s2`` and modulation ``w1, b1, w2, b2``) to its own
    style's over the sum of distances to the other styles of the batch.  Needs two or more
    samples; a batch of one gives 0 (no negatives).  (Upstream compares result i's first
    feature with result j's for the negatives; here every negative is a style, as the paper
    describes the loss.)"""
    n = res_signals["s1"].shape[0]
    if n < 2:
        return res_signals["s1"].new_zeros(())
    d = _signal_distance(res_signals, style_signals)
    pos = d.diagonal()
    neg = d.sum(1) - pos
    return (pos / neg.clamp_min(1e-12)).sum()


def microast_loss(out_feats: Mapping[str, Tensor], content_feats: Mapping[str, Tensor],
                  style_feats: Mapping[str, Tensor], ssc: Tensor, *, content_layer: str,
                  style_layers: tuple[str, ...], weights: tuple[float, float, float]) -> dict[str, Tensor]:
    """MicroAST's ``L_o = wc * L_c + ws * L_s + wssc * L_ssc`` on the stylized thumbnail;
    ``weights = (wc, ws, wssc)`` (upstream 1, 3, 3)."""
    wc, ws, wssc = weights
    lc = F.mse_loss(out_feats[content_layer], content_feats[content_layer].detach())
    ls = stats_style_loss(out_feats, {k: v.detach() for k, v in style_feats.items()}, style_layers)
    return {"content": lc, "style": ls, "ssc": ssc, "original": wc * lc + ws * ls + wssc * ssc}


def johnson_loss(out_feats: Mapping[str, Tensor], content_feats: Mapping[str, Tensor],
                 style_grams: Mapping[str, Tensor], *, content_layer: str, style_layers: tuple[str, ...],
                 weights: tuple[float, float]) -> dict[str, Tensor]:
    """Johnson et al.'s perceptual ``L_o = wc * L_feat + ws * L_style`` (Gram matrices)."""
    wc, ws = weights
    lc = F.mse_loss(out_feats[content_layer], content_feats[content_layer].detach())
    ls = gram_style_loss(out_feats, {k: v.detach() for k, v in style_grams.items()}, style_layers)
    return {"content": lc, "style": ls, "original": wc * lc + ws * ls}


def total_loss(original: Tensor, stroke: Tensor | None, stroke_weight: float) -> Tensor:
    """``L = L_o + lambda * L_sp`` (``stroke`` None or ``lambda`` 0: ``L_o`` alone)."""
    if stroke is None or stroke_weight == 0.0:
        return original
    return original + stroke_weight * stroke
