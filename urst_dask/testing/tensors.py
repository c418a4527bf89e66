"""Shared synthetic test tensors and the weights lookup for the per-network tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from . import weights_dir


def image(h: int, w: int, seed: int = 0, n: int = 1) -> torch.Tensor:
    """Deterministic smooth noise plus gradients and fine noise, NCHW in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    seeds = torch.rand(n, 3, h // 8 + 1, w // 8 + 1, generator=g)
    coarse = F.interpolate(seeds, size=(h, w), mode="bicubic", align_corners=False)
    yy = torch.linspace(0, 1, h).view(1, 1, h, 1)
    xx = torch.linspace(0, 1, w).view(1, 1, 1, w)
    ramps = torch.cat([yy.expand(n, 1, h, w), xx.expand(n, 1, h, w), (yy * xx).expand(n, 1, h, w)], 1)
    fine = torch.rand(n, 3, h, w, generator=g)
    return (0.55 * coarse + 0.3 * ramps + 0.15 * fine).clamp(0, 1)


def smooth_image(seed: int, size: int = 64, n: int = 1) -> torch.Tensor:
    """A smooth, image-like random RGB picture in [0, 1] (coarse noise, upsampled, plus a ramp)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 6, 6, generator=g)
    img = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    ramp = torch.linspace(0, 1, size)[None, None, None, :] * torch.rand(n, 3, 1, 1, generator=g)
    return (0.7 * img + 0.3 * ramp).clamp(0, 1)


def weights_root(subdir: str) -> Path:
    """The weights folder holding ``subdir``; skips the test (with the reason) when absent."""
    root = weights_dir()
    if root is None or not (root / subdir).is_dir():
        pytest.skip(f"{subdir} weights not found (set URST_DASK_WEIGHTS to a folder with {subdir}/)")
    return root


def assert_patch_matches_full(model, style, *, top: int, left: int, margin: int, tol: float) -> None:
    """With the full image's frozen statistics, a patch (the image from ``top``, ``left`` on)
    gives the full image's output wherever it is more than ``margin`` px from the patch's
    top/left edge (``margin`` >= half the receptive field), and differs at that edge, where
    reflection padding is not the image (so the check can fail)."""
    h, w = 128, 160
    x = image(h, w, seed=3)
    assert margin >= model.info.receptive_field / 2
    with torch.inference_mode():
        _, stats = model.collect_stats(x, style)
        full = model(x, style, stats)
        patch = model(x[:, :, top:, left:], style, stats)
    a = patch[:, :, margin:, margin:]
    b = full[:, :, top + margin :, left + margin :]
    assert a.shape[-2:] == (h - top - margin, w - left - margin)
    assert (a - b).abs().max().item() <= tol
    assert (patch[:, :, :4, :4] - full[:, :, top : top + 4, left : left + 4]).abs().max().item() > 1e-3


def assert_shape_and_range(model, style, h: int, w: int) -> None:
    """(1, 3, h, w) float32 output in [0, 1] for an (h, w) input of the network's size multiple."""
    assert h % model.info.size_multiple == 0 and w % model.info.size_multiple == 0
    with torch.inference_mode():
        y = model(image(h, w, seed=h + w), style)
    assert y.shape == (1, 3, h, w) and y.dtype == torch.float32
    assert y.min().item() >= 0.0 and y.max().item() <= 1.0


def assert_batch_statistics_per_sample(model, style, *, size: int, atol: float, min_change: float) -> None:
    """Instance mode (no statistics) normalizes each sample of a batch by its own statistics;
    frozen statistics (sample 0's) are applied to every sample, so sample 1 changes."""
    x = smooth_image(5, size, n=2)
    with torch.inference_mode():
        both = model(x, style, None)
        torch.testing.assert_close(both[1:2], model(x[1:2], style, None), atol=atol, rtol=0)
        _, stats = model.collect_stats(x[0:1], style)
        frozen = model(x, style, stats)
    torch.testing.assert_close(frozen[0:1], both[0:1], atol=atol, rtol=0)
    assert (frozen[1:2] - both[1:2]).abs().mean() > min_change
