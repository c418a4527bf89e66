"""Pure normalization kernels on tensors.

No I/O, no global device state, no layer state.  Feature maps are NCHW float tensors on
any device; statistics are per channel.  Whitening/colouring matrices are computed in
float64 for stability and applied in the feature dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor

IN_EPS = 1e-5  # nn.InstanceNorm2d's default


def _float32_region(x: Tensor):
    """Statistics are applied in float32 even inside a bf16/fp16 autocast region."""
    return torch.autocast(device_type=x.device.type, enabled=False)
EIG_EPS = 1e-5  # eigenvalues below this are dropped (reference WCT)


def calc_mean_std(feat: Tensor, eps: float = IN_EPS, *, unbiased: bool = False) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel mean and std of an NCHW feature map.

    Returns two ``(N, C)`` tensors in float32 (or the input's wider dtype).  ``std`` is
    ``sqrt(var + eps)``; ``unbiased=False`` matches ``nn.InstanceNorm2d``, ``True`` matches
    pytorch-AdaIN's ``calc_mean_std``.
    """
    if feat.dim() != 4:
        raise ValueError(f"feat: expected NCHW, got shape {tuple(feat.shape)}")
    flat = feat.flatten(2).to(torch.promote_types(feat.dtype, torch.float32))
    var, mean = torch.var_mean(flat, dim=2, correction=1 if unbiased else 0)
    return mean, (var + eps).sqrt()


def tin(x: Tensor, mean: Tensor, std: Tensor, weight: Tensor | None = None, bias: Tensor | None = None) -> Tensor:
    """Thumbnail instance normalization: ``weight * (x - mean) / std + bias``.

    ``x`` is NCHW; ``mean``/``std`` are ``(C,)`` or ``(N, C)`` statistics taken elsewhere
    (the thumbnail), ``weight``/``bias`` the optional ``(C,)`` affine parameters.  With
    ``mean, std = calc_mean_std(x)`` this is exactly instance normalization.  Computed as one
    multiply-add ``x * scale + shift`` (one pass over the feature map instead of four).
    """
    shape = (-1, x.shape[1], 1, 1)
    scale = 1.0 / std.reshape(shape).to(torch.float32)
    if weight is not None:
        scale = scale * weight.reshape(shape).to(torch.float32)
    shift = -mean.reshape(shape).to(torch.float32) * scale
    if bias is not None:
        shift = shift + bias.reshape(shape).to(torch.float32)
    if x.dtype == torch.float32:
        return torch.addcmul(shift, x, scale)
    with _float32_region(x):
        return torch.addcmul(shift, x.float(), scale).to(x.dtype)


def adain(x: Tensor, content_mean: Tensor, content_std: Tensor, style_mean: Tensor, style_std: Tensor) -> Tensor:
    """AdaIN with explicit statistics: ``style_std * (x - content_mean) / content_std + style_mean``."""
    return tin(x, content_mean, content_std, style_std, style_mean)


MOMENT_BLOCK = 1 << 15  # pixels per float64 block in feature_moments (C=16: 4 MiB)


def feature_moments(feat: Tensor) -> tuple[int, Tensor, Tensor]:
    """Pixel count ``n``, channel sums ``(C,)`` and Gram sums ``(C, C)`` of a ``(1, C, H, W)``
    map, float64.

    Additive: the moments of disjoint parts of a map add up to the whole map's.  Accumulated
    block by block, so no float64 copy of the whole map is ever made (a 4-megapixel,
    16-channel map would need 1 GiB for two).
    """
    if feat.dim() != 4 or feat.shape[0] != 1:
        raise ValueError(f"feat: expected (1, C, H, W), got shape {tuple(feat.shape)}")
    f = feat[0].flatten(1)
    c, n = f.shape
    s1 = torch.zeros(c, dtype=torch.float64, device=f.device)
    s2 = torch.zeros(c, c, dtype=torch.float64, device=f.device)
    for i in range(0, n, MOMENT_BLOCK):
        block = f[:, i : i + MOMENT_BLOCK].double()
        s1 += block.sum(dim=1)
        s2.addmm_(block, block.T)
    return n, s1, s2


def covariance_from_moments(n: int, s1: Tensor, s2: Tensor) -> tuple[Tensor, Tensor]:
    """Mean ``(C,)`` and covariance ``(C, C)`` (divided by n-1) from :func:`feature_moments`."""
    mean = s1 / max(n, 1)
    cov = (s2 - n * torch.outer(mean, mean)) / max(n - 1, 1)
    return mean, (cov + cov.T) / 2


def feature_covariance(feat: Tensor) -> tuple[Tensor, Tensor]:
    """Mean ``(C,)`` and covariance ``(C, C)`` (divided by M-1) of a ``(1, C, H, W)`` map, float64."""
    return covariance_from_moments(*feature_moments(feat))


def _eig_power(cov: Tensor, power: float, eps: float) -> Tensor:
    evals, evecs = torch.linalg.eigh(cov)
    keep = evals >= eps
    evals = torch.where(keep, evals, torch.ones_like(evals)).pow(power) * keep
    return (evecs * evals[None, :]) @ evecs.T


def whitening_matrix(cov: Tensor, *, ridge: float = 1.0, eps: float = EIG_EPS) -> Tensor:
    """``(cov + ridge * I)^(-1/2)``, eigenvalues below ``eps`` dropped (reference WCT)."""
    eye = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
    return _eig_power(cov + ridge * eye, -0.5, eps)


def colouring_matrix(cov: Tensor, *, eps: float = EIG_EPS) -> Tensor:
    """``cov^(1/2)`` with eigenvalues below ``eps`` dropped (reference WCT style side)."""
    return _eig_power(cov, 0.5, eps)


def wct_affine(
    content_mean: Tensor, whiten: Tensor, style_mean: Tensor, colour: Tensor, alpha: float
) -> tuple[Tensor, Tensor]:
    """Fold whitening, colouring and the alpha blend into one affine map ``y = A x + b``.

    ``alpha * (colour @ whiten @ (x - content_mean) + style_mean) + (1 - alpha) * x``.
    Returns ``A (C, C)`` and ``b (C,)`` in float64.
    """
    c = content_mean.shape[0]
    m = colour.double() @ whiten.double()
    eye = torch.eye(c, dtype=torch.float64, device=m.device)
    a = alpha * m + (1.0 - alpha) * eye
    b = alpha * (style_mean.double() - m @ content_mean.double())
    return a, b


def apply_channel_affine(x: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Apply ``y[n, :, i, j] = a @ x[n, :, i, j] + b`` to an NCHW map (a 1x1 convolution),
    in float32 whatever the feature dtype (reduced precision never touches the statistics)."""
    w = a.to(device=x.device, dtype=torch.float32)[:, :, None, None]
    with _float32_region(x):
        y = torch.nn.functional.conv2d(x.float(), w, b.to(device=x.device, dtype=torch.float32))
    return y.to(x.dtype)


def whiten_colour(
    x: Tensor, content_mean: Tensor, whiten: Tensor, style_mean: Tensor, colour: Tensor, alpha: float = 1.0
) -> Tensor:
    """Whitening/colouring transform with explicit content statistics (TIN for WCT).

    ``x`` is NCHW; ``content_mean``/``whiten`` come from the thumbnail (or from ``x`` itself
    for plain WCT), ``style_mean``/``colour`` from the style features.
    """
    a, b = wct_affine(content_mean, whiten, style_mean, colour, alpha)
    return apply_channel_affine(x, a, b)
