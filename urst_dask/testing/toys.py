"""Weightless test networks that go through the real registry, runtime and tiling path.

* ``identity``: normalizes with its statistics and undoes it, so the output equals the input
  (exactly, once quantized back to the input dtype) whatever the statistics; any tile
  misplacement, seam or lost pixel shows.
* ``localmean``: 3x3 mean with an explicit per-pixel sum (no convolution algorithm whose
  summation order depends on the input size): its receptive field is 3 px, inside any margin
  >= 1, so tiled output must equal whole-image output exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from urst_dask import kernels
from urst_dask.models import Network, register_method
from urst_dask.models.base import ModelInfo, StyleModel
from urst_dask.stats import FrozenSource, StatsSource, StyleCode


def _mean_std(feat: Tensor) -> dict[str, Tensor]:
    mean, std = kernels.calc_mean_std(feat)
    return {"mean": mean[0], "std": std[0]}


WINDOWS = {"count": 0}  # windows stylized with frozen statistics in this process (resume tests)


class Identity(StyleModel):
    def __init__(self, multiple: int = 8) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1), requires_grad=False)  # gives the module a device
        self.info = ModelInfo("identity", multiple, 1, True, True)

    def prepare_style(self, style: Tensor | None) -> StyleCode:
        return StyleCode.build("identity", {})

    def run(self, x: Tensor, style: StyleCode, source: StatsSource, alpha: float) -> Tensor:
        if isinstance(source, FrozenSource):
            WINDOWS["count"] += 1
        st = source.get("in1", x, _mean_std)
        y = kernels.tin(x, st["mean"], st["std"])
        return y * st["std"].reshape(1, -1, 1, 1) + st["mean"].reshape(1, -1, 1, 1)


class LocalMean(Identity):
    def __init__(self) -> None:
        super().__init__(multiple=1)
        self.info = ModelInfo("localmean", 1, 3, True, True)

    def run(self, x: Tensor, style: StyleCode, source: StatsSource, alpha: float) -> Tensor:
        source.get("in1", x, _mean_std)
        p = F.pad(x, (1, 1, 1, 1), mode="replicate")
        h, w = x.shape[-2:]
        acc = torch.zeros_like(x)
        for dy in range(3):
            for dx in range(3):
                acc = acc + p[..., dy : dy + h, dx : dx + w]
        return acc / 9.0


class FailsInTiles(Identity):
    """Collects statistics fine, then fails in the tile stage (an interrupted run)."""

    def run(self, x: Tensor, style: StyleCode, source: StatsSource, alpha: float) -> Tensor:
        if isinstance(source, FrozenSource):
            raise RuntimeError("simulated worker failure in the tile stage")
        return super().run(x, style, source, alpha)


def build(state_dicts: dict, variant: str | None = None) -> StyleModel:
    kinds = {"localmean": LocalMean, "fails": FailsInTiles, "pool16": globals()["Pool16"]}
    return kinds.get(variant or "", Identity)().freeze()


def build_fails(state_dicts: dict, variant: str | None = None) -> StyleModel:
    return FailsInTiles().freeze()


def register() -> None:
    register_method(Network(ModelInfo("identity", 1, 1, True, True), "test: identity through TIN", build))
    register_method(Network(ModelInfo("identity-fails", 1, 1, True, True), "test: fails in the tile stage", build_fails))


class Pool16(Identity):
    """Average-pools 16x16 cells and upsamples back: size multiple 16, receptive field one
    cell.  Tiling with windows on the 16-px grid equals whole-image inference bit for bit;
    windows off the grid pool different cells (the seams of unaligned tiling)."""

    def __init__(self) -> None:
        super().__init__(multiple=16)
        self.info = ModelInfo("pool16", 16, 16, True, True)

    def run(self, x: Tensor, style: StyleCode, source: StatsSource, alpha: float) -> Tensor:
        source.get("in1", x, _mean_std)
        return F.interpolate(F.avg_pool2d(x, 16), scale_factor=16, mode="nearest")
