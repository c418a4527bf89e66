"""Differentiable forward passes of the trainable networks, with thumbnail statistics.

Inference prepares the style once as a numpy :class:`~urst_dask.stats.StyleCode` and never
needs gradients.  Training needs the same computation with gradients, a batch of styles,
and URST's two passes per sample:

1. the thumbnail, normalized with its own statistics (which are recorded), and
2. the patch, normalized with the thumbnail's recorded statistics (TIN), as at inference.

The recorded statistics are detached before the patch pass: the stroke loss trains how the
network paints a patch given the thumbnail's statistics, not the statistics themselves.
Images are NCHW float RGB in [0, 1]; outputs are not clamped for MicroAST (as upstream
training); Johnson's network clamps its output to [0, 1] in its own ``run``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .. import kernels
from ..models import johnson as johnson_model
from ..models import microast as microast_model
from ..stats import StyleCode

Compute = Callable[[Tensor], dict[str, Tensor]]


class TensorRecorder:
    """A statistics source computing each point's statistics (with gradients) and keeping them."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, Tensor]] = {}

    def get(self, point: str, feat: Tensor, compute: Compute) -> dict[str, Tensor]:
        out = compute(feat)
        self.seen[point] = out
        return out

    def frozen(self) -> TensorFrozen:
        return TensorFrozen({p: {k: v.detach() for k, v in d.items()} for p, d in self.seen.items()})


class TensorFrozen:
    """A statistics source returning fixed (thumbnail) statistics: TIN."""

    def __init__(self, stats: dict[str, dict[str, Tensor]]) -> None:
        self.stats = stats

    def get(self, point: str, feat: Tensor, compute: Compute) -> dict[str, Tensor]:
        return self.stats[point]


def microast_style_signals(model: microast_model.MicroAST, style: Tensor) -> dict[str, Tensor]:
    """Style encoder features ``s1, s2`` and modulation vectors ``w1, b1, w2, b2`` (each ``(N, C)``)
    of a batch of style images."""
    s1, s2 = model.style_encoder(style)
    return {"s1": s1, "s2": s2, **model.modulator(s1, s2)}


def microast_run(model: microast_model.MicroAST, content: Tensor, signals: dict[str, Tensor], source) -> Tensor:
    """MicroAST's decoder path (as :meth:`MicroAST.run`, alpha 1) with per-sample styles."""
    st1, st2 = microast_model.adain_stats(signals["s1"]), microast_model.adain_stats(signals["s2"])

    def vec(t: Tensor) -> Tensor:
        return t.reshape(t.shape[0], -1, 1, 1)

    def adain(point: str, y: Tensor, style_stats: dict[str, Tensor]) -> Tensor:
        c = source.get(point, y, microast_model.adain_stats)
        return kernels.adain(y, c["mean"], c["std"], style_stats["mean"], style_stats["std"])

    _, c2 = model.content_encoder(content)
    y = adain("adain1", c2, st2)
    y = model.decoder.dec1(y, vec(signals["w2"]), vec(signals["b2"]))
    y = adain("adain2", y, st1)
    y = model.decoder.dec2(y, vec(signals["w1"]), vec(signals["b1"]))
    return model.decoder.dec3(y)


_EMPTY_CODE = StyleCode.build(johnson_model.NAME, {})


def johnson_run(model: johnson_model.JohnsonNet, content: Tensor, source) -> Tensor:
    """Johnson's network (style baked in) with statistics from ``source``; output in [0, 1]."""
    return model.run(content, _EMPTY_CODE, source, 1.0)


def two_passes(run: Callable[[Tensor, object], Tensor], thumb: Tensor, patch: Tensor) -> tuple[Tensor, Tensor]:
    """Stylize the thumbnail (recording its statistics), then the patch with them (TIN).

    Returns ``(thumb_out, patch_out)``, both with gradients to the network."""
    rec = TensorRecorder()
    thumb_out = run(thumb, rec)
    patch_out = run(patch, rec.frozen())
    return thumb_out, patch_out


def unfreeze(model: torch.nn.Module) -> torch.nn.Module:
    """Training mode, every parameter trainable (the loaders return frozen networks)."""
    model.train()
    for p in model.parameters():
        p.requires_grad_(True)
    return model
