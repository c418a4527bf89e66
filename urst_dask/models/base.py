"""The one interface every style network implements.

A :class:`StyleModel` is an ``nn.Module`` whose forward pass is a pure function of its
inputs: ``forward(x, style, stats)``.  Normalization statistics never live on layers; the
forward pass asks a :class:`~urst_dask.stats.StatsSource` for them at each normalization
point, so the same frozen module is safe to share between threads.

Images are NCHW float RGB in [0, 1] on the model's device, in and out; a network trained
on another range (Johnson's [0, 255]) converts inside.
"""

from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass
from typing import Self

import torch
from torch import Tensor, nn

from ..stats import FrozenSource, InstanceSource, NormStats, RecordingSource, StatsSource, StyleCode


@dataclass(frozen=True)
class ModelInfo:
    """What the pipeline needs to know about a network."""

    name: str
    size_multiple: int  # input H and W must be multiples of this (2 ** number of poolings)
    receptive_field: int  # rough receptive field of one output pixel, in input pixels
    takes_style_image: bool  # False: the style is baked into the weights (Johnson)
    supports_alpha: bool
    # smallest margin (px) whose tile seams are invisible on real photographs, measured by
    # benchmarks/bench_seams.py; None: not measured (``--margin auto`` then guesses from the
    # receptive field, see urst_dask.tiling.plan.auto_margin)
    seam_margin: int | None = None
    # True when every normalization point sees features of the content alone (AdaIN's relu4_1):
    # its statistics then serve any style; a cascade's later levels, or a point after a style
    # modulation, see the style too, and given statistics must come from the same style
    content_only_stats: bool = False


class StyleModel(nn.Module, abc.ABC):
    """Base class: subclasses implement :meth:`prepare_style` and :meth:`run`."""

    info: ModelInfo

    def freeze(self) -> Self:
        """Inference only: eval mode and no gradients for any parameter."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    @abc.abstractmethod
    def prepare_style(self, style: Tensor | None) -> StyleCode:
        """Encode a style image once per run.

        ``style`` is ``(1, 3, S, S)`` float RGB in [0, 1] on the model's device, or ``None``
        for networks whose style is baked in.  Returns a device-independent StyleCode.
        """

    @abc.abstractmethod
    def run(self, x: Tensor, style: StyleCode, source: StatsSource, alpha: float) -> Tensor:
        """Stylize ``x`` (NCHW, [0, 1]), asking ``source`` for statistics at each point."""

    def forward(self, x: Tensor, style: StyleCode, stats: NormStats | None = None, alpha: float = 1.0) -> Tensor:
        """Stylize a window.  ``stats=None`` uses the window's own statistics (plain IN)."""
        source: StatsSource = InstanceSource() if stats is None else FrozenSource(stats)
        return self.run(x, style, source, alpha)

    def collect_stats(self, thumb: Tensor, style: StyleCode, alpha: float = 1.0) -> tuple[Tensor, NormStats]:
        """Run the thumbnail through the whole network, recording every point's statistics.

        Returns the stylized thumbnail and the :class:`NormStats`.
        """
        rec = RecordingSource()
        out = self.run(thumb, style, rec, alpha)
        return out, rec.result(self.info.name)

    def stats_layout(self) -> dict[str, dict[str, tuple[int, ...]]]:
        """``{point: {field: shape}}`` of the statistics this network records: what a
        :class:`NormStats` given for it must hold.  Taken from a pass over a small random image
        (4 x 4 pooling cells, a 64-px random style); the shapes do not depend on the size."""
        gen = torch.Generator().manual_seed(0)
        side = 4 * self.info.size_multiple
        x = torch.rand(1, 3, side, side, generator=gen).to(self.device)
        style = torch.rand(1, 3, 64, 64, generator=gen).to(self.device) if self.info.takes_style_image else None
        with torch.inference_mode():
            _, stats = self.collect_stats(x, self.prepare_style(style))
        return {p: {f: tuple(v.shape) for f, v in stats[p].items()} for p in stats.points()}

    @property
    def device(self) -> torch.device:
        try:
            return next(self.parameters()).device
        except StopIteration:  # a network without parameters (passthrough)
            return torch.device("cpu")


def stacked_receptive_field(bodies: tuple[tuple[str, ...], ...]) -> int:
    """Receptive field of encoder/decoder pairs run one after another (each body: layer names,
    ``"P"`` for a 2x2 pool, anything else a 3x3 conv).

    Each 3x3 conv at scale s grows it by 2s, each pool by s; a decoder mirrors its encoder.
    """
    rf = 1
    for body in bodies:
        scale, growth = 1, 0
        for name in body:
            if name == "P":
                growth += scale
                scale *= 2
            else:
                growth += 2 * scale
        rf += 2 * growth
    return rf


def weights_sha256(salt: str, *modules: nn.Module) -> str:
    """A sha256 of ``salt`` and every parameter and buffer of ``modules``: names and values, in
    logical order whatever the memory format (a channels_last weight hashes as its NCHW self)."""
    h = hashlib.sha256(salt.encode())
    for module in modules:
        for name, t in module.state_dict().items():
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
