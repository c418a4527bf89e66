"""Shared synthetic test tensors and the weights lookup for the per-network tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import weights_dir


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
