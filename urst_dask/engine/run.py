"""The one function the window kernel calls: :func:`forward`."""

from __future__ import annotations

import contextlib
import math
from typing import cast

import torch
from torch import Tensor

from ..models.base import StyleModel
from ..preprocess import preserve_colour
from ..settings import Backend, ComputeOptions, Precision, StyleOptions
from ..stats import NormStats, StyleCode
from .backends import auto_backend, check_backend
from .cache import runner_for
from .precision import resolve_precision, torch_dtype

_checked: dict[tuple[str, str], Backend] = {}

# an edge dimension shorter than this share of the standard window's gets its own compiled
# shape (rounded up to EDGE_BUCKET) instead of being padded: padding a 192-px bottom row of a
# 3840x2160 image to 1064 px ran 12 full windows where 8.3 useful ones were needed
EDGE_SHARE = 0.75
EDGE_BUCKET = 64


def compile_shape(h: int, w: int, standard: tuple[int, int], multiple: int = 1) -> tuple[int, int]:
    """The (H, W) a compiled backend runs an ``h`` x ``w`` window at, for an image whose largest
    window is ``standard``: each dimension padded to the standard's, unless that would waste
    more than a quarter of it, then to the next multiple of :data:`EDGE_BUCKET` (and of the
    network's ``multiple``), never above the standard.  So an image compiles at most four
    networks (interior, bottom row, right column, corner), and similar images share them."""
    bucket = EDGE_BUCKET * multiple // math.gcd(EDGE_BUCKET, multiple)

    def one(n: int, std: int) -> int:
        if n >= EDGE_SHARE * std:
            return max(n, std)
        return min(std, n + (-n) % bucket)

    return one(h, standard[0]), one(w, standard[1])


def resolve_backend(backend: Backend | str, method: str, device: torch.device, precision: Precision,
                    frozen_stats: bool = True) -> Backend:
    """The backend that runs: ``auto`` resolved (:func:`~.backends.auto_backend`), a named one
    checked (:class:`~.backends.BackendUnavailable` if it cannot run here).  Without frozen
    statistics (``--norm in``) the network is not fixed, so it runs eager."""
    backend = cast(Backend, Backend.parse(backend, "backend"))
    if not frozen_stats:
        return Backend.EAGER
    if backend is Backend.AUTO:
        return auto_backend(method, device, precision)
    key = (backend.value, str(device))
    if key not in _checked:
        _checked[key] = check_backend(backend, device)
    return backend


def _symmetric_pad(x: Tensor, h: int, w: int) -> Tensor:
    """Pad NCHW ``x`` on the bottom/right to (h, w) by mirroring (numpy's ``symmetric``)."""
    while x.shape[-2] < h:
        x = torch.cat([x, x[..., -min(h - x.shape[-2], x.shape[-2]):, :].flip(-2)], dim=-2)
    while x.shape[-1] < w:
        x = torch.cat([x, x[..., -min(w - x.shape[-1], x.shape[-1]):].flip(-1)], dim=-1)
    return x


def _eager(model: StyleModel, x: Tensor, style: StyleCode, stats: NormStats | None, alpha: float,
           precision: Precision) -> Tensor:
    dtype = torch_dtype(precision)
    cast = contextlib.nullcontext() if dtype is None else torch.autocast(device_type=x.device.type, dtype=dtype)
    with torch.inference_mode(), cast:
        return model(x, style, stats, alpha=alpha)


def forward(model: StyleModel, x: Tensor, style: StyleCode, stats: NormStats | None,
            options: StyleOptions | None = None, compute: ComputeOptions | None = None, *,
            shape: tuple[int, int] | None = None) -> Tensor:
    """Stylize the window batch ``x`` ((N, 3, H, W) float32 in [0, 1], on ``model.device``)
    as the run's frozen option objects say (defaults: their defaults): ``options.alpha`` and
    ``options.preserve_color``; ``compute.precision`` and ``compute.backend``.

    ``precision`` (``auto``: bf16 where native) and ``backend`` (``auto``: the fastest
    measured) are resolved for the device; a compiled backend runs the network baked for
    (``stats``, ``style``, ``alpha``) from this process's cache, with the batch padded
    (mirrored) on the bottom/right to :func:`compile_shape` of the image's standard window
    ``shape`` when given, so that an image's windows share at most four compiled networks; the
    output is cropped back.  ``stats=None`` (each window's own
    statistics) always runs eager.  Returns (N, 3, H, W) float32, unclamped.
    """
    options = options if options is not None else StyleOptions()
    compute = compute if compute is not None else ComputeOptions()
    alpha, preserve_color, backend = options.alpha, options.preserve_color, compute.backend
    device = x.device
    prec = resolve_precision(compute.precision, device)
    used = resolve_backend(backend, model.info.name, device, prec, stats is not None)
    if used is Backend.EAGER:
        y = _eager(model, x, style, stats, alpha, prec)
    else:
        assert stats is not None  # resolve_backend runs eager without statistics
        h, w = x.shape[-2:]
        th, tw = compile_shape(h, w, shape, model.info.size_multiple) if shape is not None else (h, w)
        xp = _symmetric_pad(x, max(h, th), max(w, tw)).contiguous(memory_format=torch.channels_last)
        runner, _ = runner_for(model, style, stats, alpha, xp, prec, used)
        y = runner(xp)[..., :h, :w]
    if preserve_color:
        with torch.inference_mode():
            y = preserve_colour(x, y)
    return y.float()
