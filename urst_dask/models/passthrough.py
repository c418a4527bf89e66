"""``passthrough``: a weightless network for measuring the pipeline itself.

It normalizes each window with the thumbnail statistics (one TIN point) and undoes it, so
the output equals the input; everything else (thumbnail stage, statistics broadcast, window
reads, padding, Zarr writes) runs exactly as for a real network.  Use it to benchmark I/O and
tiling overhead at sizes where a real network on a CPU would take hours.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import kernels
from ..stats import StatsSource, StyleCode
from .base import ModelInfo, StyleModel
from .layers import in_stats
from .registry import Network

WEIGHTS: tuple = ()


INFO = ModelInfo("passthrough", size_multiple=1, receptive_field=1, takes_style_image=True, supports_alpha=True)


class Passthrough(StyleModel):
    def __init__(self) -> None:
        super().__init__()
        self.device_anchor = nn.Parameter(torch.zeros(1), requires_grad=False)
        self.info = INFO

    def prepare_style(self, style: Tensor | None) -> StyleCode:
        return StyleCode.build("passthrough", {})

    def run(self, x: Tensor, style: StyleCode, source: StatsSource, alpha: float) -> Tensor:
        st = source.get("in", x, in_stats)
        shape = (-1, x.shape[1], 1, 1)
        return kernels.tin(x, st["mean"], st["std"]) * st["std"].reshape(shape) + st["mean"].reshape(shape)


def build(state_dicts: dict, variant: str | None = None) -> Passthrough:
    return Passthrough().freeze()


NETWORK = Network(INFO, "no network: output = input through one TIN point (benchmarks the pipeline's own I/O and tiling)",
                  build, catalogue=WEIGHTS)
