"""The one function the window kernel calls: :func:`forward`."""

from __future__ import annotations

import contextlib
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


def _eager(model: StyleModel, x: Tensor, style: StyleCode, stats: NormStats | None, alpha: float,
           precision: Precision) -> Tensor:
    dtype = torch_dtype(precision)
    cast = contextlib.nullcontext() if dtype is None else torch.autocast(device_type=x.device.type, dtype=dtype)
    with torch.inference_mode(), cast:
        return model(x, style, stats, alpha=alpha)


def forward(model: StyleModel, x: Tensor, style: StyleCode, stats: NormStats | None,
            options: StyleOptions | None = None, compute: ComputeOptions | None = None) -> Tensor:
    """Stylize the window batch ``x`` ((N, 3, H, W) float32 in [0, 1], on ``model.device``)
    as the run's frozen option objects say (defaults: their defaults): ``options.alpha`` and
    ``options.preserve_color``; ``compute.precision`` and ``compute.backend``.

    ``precision`` (``auto``: bf16 where native, for the networks that hold it) and ``backend`` (``auto``: the fastest
    measured) are resolved for the device; a compiled backend runs the network baked for
    (``stats``, ``style``, ``alpha``) from this process's cache, compiled for ``x``'s shape
    (the tile stage pads an image's windows to at most four shapes,
    :func:`urst_dask.tiling.window_padding`, for every backend alike, so that they give the
    same pixels).  ``stats=None`` (each window's own statistics) always runs eager.
    Returns (N, 3, H, W) float32, unclamped.
    """
    options = options if options is not None else StyleOptions()
    compute = compute if compute is not None else ComputeOptions()
    alpha, preserve_color, backend = options.alpha, options.preserve_color, compute.backend
    device = x.device
    prec = resolve_precision(compute.precision, device, model.info.name)
    used = resolve_backend(backend, model.info.name, device, prec, stats is not None)
    if used is Backend.EAGER:
        y = _eager(model, x, style, stats, alpha, prec)
    else:
        assert stats is not None  # resolve_backend runs eager without statistics
        xc = x.contiguous(memory_format=torch.channels_last)
        runner, _ = runner_for(model, style, stats, alpha, xc, prec, used)
        y = runner(xc)
    if preserve_color:
        with torch.inference_mode():
            y = preserve_colour(x, y)
    return y.float()
