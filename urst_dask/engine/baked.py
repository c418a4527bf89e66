"""A window network with its statistics and style baked in: ``module(x) -> y``.

Under TIN the statistics are fixed for the whole image, so the per-window network is a plain
feed-forward CNN per (statistics, style, alpha).  That is what the compiled backends trace:

* a cascaded WCT (``wct``, ``wct16x``) becomes encoder -> one 1x1 convolution per level ->
  decoder: :func:`urst_dask.kernels.wct_affine` folds the thumbnail's whitening, the style's
  colouring and the alpha blend into the convolution's weight ``A`` and bias ``b`` once, in
  float64, stored as float32 (exactly what the eager path applies);
* any other network runs its own ``run`` with the statistics and the style code turned into
  tensors once (a frozen source that no longer converts numpy arrays per call).

The models themselves are not changed: this wraps them from the outside.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

from .. import kernels
from ..models.base import StyleModel, weights_sha256
from ..models.cascade import CascadedWct
from ..stats import FrozenSource, NormStats, StyleCode


class _TensorSource(FrozenSource):
    """A :class:`FrozenSource` whose tensors are made once, on the model's device."""

    def __init__(self, stats: NormStats, device: torch.device) -> None:
        super().__init__(stats)
        self._tensors = {p: stats.tensors(p, device) for p in stats.points()}

    def get(self, point: str, feat: Tensor, compute) -> dict[str, Tensor]:  # noqa: ANN001 - protocol
        return self._tensors[point]


class _TensorStyle(StyleCode):
    """A :class:`StyleCode` whose tensors are made once per device."""

    def tensors(self, point: str, device: torch.device | str = "cpu") -> dict[str, Tensor]:
        cache = self.__dict__.setdefault("_cache", {})
        key = (point, str(device))
        if key not in cache:
            cache[key] = super().tensors(point, device)
        return cache[key]


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return contextlib.nullcontext() if dtype is None else torch.autocast(device_type=device.type, dtype=dtype)


class BakedNetwork(nn.Module):
    """Any :class:`StyleModel` with fixed statistics, style and alpha; ``dtype``: autocast
    dtype inside the forward pass (``None``: float32)."""

    def __init__(self, model: StyleModel, style: StyleCode, stats: NormStats, alpha: float,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.model = model
        self.style = _TensorStyle(method=style.method, entries=style.entries)
        self.source = _TensorSource(stats, model.device)
        self.alpha = float(alpha)
        self.dtype = dtype

    def forward(self, x: Tensor) -> Tensor:
        with _autocast(x.device, self.dtype):
            return self.model.run(x, self.style, self.source, self.alpha).float()


class FoldedCascade(nn.Module):
    """A cascaded WCT as a fixed CNN: per level encoder, 1x1 convolution (float32), decoder."""

    def __init__(self, model: CascadedWct, style: StyleCode, stats: NormStats, alpha: float,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.levels = tuple(str(k) for k in model.levels)
        self.encoders, self.decoders = model.encoders, model.decoders
        self.clamp_output = bool(model.clamp_output)
        self.dtype = dtype
        device = model.device
        for k in self.levels:
            c, s = stats.tensors(f"level{k}", device), style.tensors(f"level{k}", device)
            a, b = kernels.wct_affine(c["mean"], c["whiten"], s["mean"], s["colour"], alpha)
            self.register_buffer(f"a{k}", a.to(torch.float32)[:, :, None, None].contiguous())
            self.register_buffer(f"b{k}", b.to(torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        return self.run(x, *self.affines())

    def affines(self) -> list[Tensor]:
        """The baked weights and biases, level by level (``a5, b5, a4, b4...``)."""
        return [t for k in self.levels for t in (getattr(self, f"a{k}"), getattr(self, f"b{k}"))]

    def run(self, x: Tensor, *affines: Tensor) -> Tensor:
        """The forward pass with the 1x1 convolutions' weights given (see :class:`Parametric`)."""
        with _autocast(x.device, self.dtype):
            for i, k in enumerate(self.levels):
                f = self.encoders[k](x)
                a, b = affines[2 * i], affines[2 * i + 1]
                with torch.autocast(device_type=x.device.type, enabled=False):  # the affine map stays in its dtype (float32)
                    f = torch.nn.functional.conv2d(f.to(a.dtype), a, b).to(f.dtype)
                x = self.decoders[k](f)
            y = x.clamp(0.0, 1.0) if self.clamp_output else x
            return y.float()

    def parametric(self) -> "Parametric":
        return Parametric(self)

    def identity(self) -> str:
        """What the network is, statistics aside: its class, levels and weights (a sha256)."""
        return weights_sha256(f"{type(self).__name__}{self.levels}{self.clamp_output}", self.encoders, self.decoders)


class Parametric(nn.Module):
    """A :class:`FoldedCascade` whose 1x1 convolutions are inputs, not constants: one traced
    graph per (network, window shape) serves every image and style (OpenVINO converts it once
    per machine, see :mod:`urst_dask.engine.backends`)."""

    def __init__(self, folded: FoldedCascade) -> None:
        super().__init__()
        self.folded = folded

    def forward(self, x: Tensor, *affines: Tensor) -> Tensor:
        return self.folded.run(x, *affines)


def bake(model: StyleModel, style: StyleCode, stats: NormStats, alpha: float,
         dtype: torch.dtype | None = None) -> nn.Module:
    """The fixed feed-forward network of ``model`` for these statistics, style and alpha
    (NCHW float32 [0, 1] in, NCHW float32 out, on ``model.device``), in eval mode."""
    if isinstance(model, CascadedWct):
        net: nn.Module = FoldedCascade(model, style, stats, alpha, dtype)
    else:
        net = BakedNetwork(model, style, stats, alpha, dtype)
    return net.eval()
