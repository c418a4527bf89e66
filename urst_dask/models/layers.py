"""Building blocks shared by the networks: the reflection-padded convolution, and the one
instance-statistics function every normalization point asks its source for.

Each network keeps its upstream checkpoint keys: :class:`ConvLayer` names its inner
convolution after the upstream attribute (``conv2d`` for Johnson and MSG-Net, ``conv_layer``
for MicroAST).
"""

from __future__ import annotations

from functools import partial

import torch.nn.functional as F
from torch import Tensor, nn

from .. import kernels


def reflect_conv(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """``conv`` on ``x`` (NCHW) reflection-padded by ``kernel_size // 2`` on every side (none for 1x1)."""
    pad = conv.kernel_size[0] // 2
    return conv(F.pad(x, (pad,) * 4, mode="reflect") if pad else x)


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
