"""Cascaded multi-level WCT (levels coarse to fine), shared by ``wct`` and ``wct16x``.

For k in ``levels``: encode to relu{k}_1, whiten with the content statistics from the
source (the thumbnail's under TIN: content mean and ``(cov + I)^-1/2``), colour with the
style's, blend by alpha, decode.  Subclasses provide the ``encoders``/``decoders``
(``nn.ModuleDict`` keyed by level) and ``info``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import kernels
from ..errors import ParameterError
from ..stats import FrozenSource, StatsSource, StyleCode
from .base import StyleModel


def whitening_from_moments(n: int, s1: Tensor, s2: Tensor) -> dict[str, Tensor]:
    """Content statistics of one WCT level from its feature moments
    (:func:`~urst_dask.kernels.feature_moments`): mean and whitening matrix (float64)."""
    mean, cov = kernels.covariance_from_moments(n, s1, s2)
    return {"mean": mean, "whiten": kernels.whitening_matrix(cov)}


def whitening_stats(feat: Tensor) -> dict[str, Tensor]:
    """Content statistics of one WCT level: mean and whitening matrix (float64)."""
    return whitening_from_moments(*kernels.feature_moments(feat))


class CascadedWct(StyleModel):
    levels: tuple[int, ...]
    encoders: nn.ModuleDict  # str(level) -> encoder to relu{level}_1
    decoders: nn.ModuleDict  # str(level) -> its decoder
    clamp_output: bool = False  # the pipeline clamps anyway; set for a [0, 1] model output

    def prepare_style(self, style: Tensor | None) -> StyleCode:
        if style is None:
            raise ParameterError(f"style=None: {self.info.name} needs a style image")
        entries = {}
        with torch.inference_mode():
            for k in self.levels:
                mean, cov = kernels.feature_covariance(self.encoders[str(k)](style.float()))
                entries[f"level{k}"] = {"mean": mean.cpu().numpy(), "colour": kernels.colouring_matrix(cov).cpu().numpy()}
        return StyleCode.build(self.info.name, entries)

    def run(self, x: Tensor, style: StyleCode, source: StatsSource, alpha: float) -> Tensor:
        if x.shape[0] > 1 and not isinstance(source, FrozenSource):
            # per-sample statistics: whitening matrices differ per sample
            return torch.cat([self.run(x[i : i + 1], style, source, alpha) for i in range(x.shape[0])])
        for k in self.levels:
            point = f"level{k}"
            f = self.encoders[str(k)](x)  # relu{k}_1
            content = source.get(point, f, whitening_stats)
            s = style.tensors(point, f.device)
            f = kernels.whiten_colour(f, content["mean"], content["whiten"], s["mean"], s["colour"], alpha)
            x = self.decoders[str(k)](f)  # unclamped between levels, as upstream
        return x.clamp(0.0, 1.0) if self.clamp_output else x
