"""Building blocks shared by the networks: the reflection-padded convolution, and the one
instance-statistics function every normalization point asks its source for.

Each network keeps its upstream checkpoint keys: :class:`ConvLayer` names its inner
convolution after the upstream attribute (``conv2d`` for Johnson and MSG-Net, ``conv_layer``
for MicroAST).
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import kernels


def reflect_conv(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """``conv`` on ``x`` (NCHW) reflection-padded by ``kernel_size // 2`` on every side (none for 1x1).

    Run eagerly on a CPU, a stride-1 convolution takes :func:`_border_fixed_conv`'s route: the
    same numbers without PyTorch's reflection pad, which copies the whole map and took 26 % of
    the thumbnail pass (benchmarks/results/reflect-conv-*.json).  A traced or compiled graph
    gets the plain pad, which its compiler fuses.
    """
    pad = conv.kernel_size[0] // 2
    if not pad:
        return conv(x)
    if _border_fix_applies(conv, x, pad):
        return _border_fixed_conv(conv, x, pad)
    return conv(F.pad(x, (pad,) * 4, mode="reflect"))


# Below this many pixels per map the four strip convolutions cost more than the pad saves
# (a 3x3 layer, 2 threads: 1.5-2.3x slower at 32 x 32, 0.86-0.95x from 256 x 256 up).
BORDER_ROUTE_MIN_PIXELS = 192 * 192


def _border_fix_applies(conv: nn.Conv2d, x: Tensor, pad: int) -> bool:
    capturing = torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling()
    return (not capturing and x.device.type == "cpu" and x.dim() == 4 and min(x.shape[-2:]) > 4 * pad
            and x.shape[-2] * x.shape[-1] >= BORDER_ROUTE_MIN_PIXELS
            and conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.padding == (0, 0)
            and conv.kernel_size == (2 * pad + 1,) * 2
            and not (torch.is_grad_enabled() and (x.requires_grad or conv.weight.requires_grad)))  # training: plain


def _reflect_index(first: int, stop: int, size: int) -> list[int]:
    """Indices ``first .. stop - 1`` of an axis of ``size`` reflected into it (-1 -> 1, size -> size - 2)."""
    return [-i if i < 0 else 2 * (size - 1) - i if i >= size else i for i in range(first, stop)]


def _border_fixed_conv(conv: nn.Conv2d, x: Tensor, pad: int) -> Tensor:
    """The reflection-padded convolution as a zero-padded one (oneDNN pads inside the kernel, no
    copy) whose ``pad``-wide border is then recomputed from thin reflection-padded strips.
    Every output pixel sums the same products as on the padded map (oneDNN may order the sums
    differently: equal to float32 rounding)."""
    y = F.conv2d(x, conv.weight, conv.bias, padding=pad, groups=conv.groups)
    for dim in (2, 3):
        size = x.shape[dim]
        across = (pad, pad, 0, 0) if dim == 2 else (0, 0, pad, pad)  # the strip's other axis
        for first in (0, size - pad):  # output rows (columns) first .. first + pad - 1
            index = torch.tensor(_reflect_index(first - pad, first + 2 * pad, size), device=x.device)
            strip = F.pad(x.index_select(dim, index), across, mode="reflect")
            y.narrow(dim, first, pad).copy_(F.conv2d(strip, conv.weight, conv.bias, groups=conv.groups))
    return y


class ConvLayer(nn.Module):
    """Reflection pad ``k // 2``, then a (strided, grouped) kxk convolution: upstream ``ConvLayer``.

    ``key`` is the attribute holding the convolution, so the state-dict keys are
    ``<name>.<key>.weight`` / ``.bias`` as in the upstream checkpoints.
    """

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, *, key: str = "conv2d") -> None:
        super().__init__()
        self.key = key
        self.add_module(key, nn.Conv2d(cin, cout, k, stride, groups=groups))

    @property
    def conv(self) -> nn.Conv2d:
        return getattr(self, self.key)

    def forward(self, x: Tensor) -> Tensor:
        return reflect_conv(self.conv, x)


def instance_stats(feat: Tensor, *, unbiased: bool = False, eps: float = kernels.IN_EPS) -> dict[str, Tensor]:
    """``{"mean", "std"}`` of an NCHW feature map, per sample and channel: :func:`kernels.calc_mean_std`
    in the form a :class:`~urst_dask.stats.StatsSource` computes and records."""
    mean, std = kernels.calc_mean_std(feat, eps, unbiased=unbiased)
    return {"mean": mean, "std": std}


# ``nn.InstanceNorm2d``: biased variance + 1e-5 (Johnson, MSG-Net, passthrough).
in_stats = partial(instance_stats, unbiased=False)
# pytorch-AdaIN's ``calc_mean_std``: unbiased variance + 1e-5 (AdaIN, MicroAST, LinearWCT).
adain_stats = partial(instance_stats, unbiased=True)
