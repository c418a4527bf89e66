"""Network calls over a batch of windows, with the out-of-memory fallback.

The only state is the process's batch cap per device (:mod:`urst_dask.engine.batchcap`): once a
device has run out of memory at some batch size, later calls in that process start at the
smaller size.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch

from .. import engine
from ..engine.batchcap import batch_cap, lower_batch_cap
from ..errors import UrstError
from ..models.base import StyleModel
from ..stats import NormStats, StyleCode

if TYPE_CHECKING:  # pragma: no cover
    from .window import WindowJob

log = logging.getLogger("urst_dask")


class WindowMemoryError(UrstError, MemoryError):
    """A window does not fit the device's memory, even after freeing cached blocks (one line
    on the command line, exit 2: the message says which window and what to lower)."""


def _free_cache(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run_in_batches(model: StyleModel, x: torch.Tensor, style: StyleCode, stats: NormStats | None,
                   job: "WindowJob") -> torch.Tensor:
    """``model`` over the (N, 3, H, W) batch ``x`` (float32 [0, 1], on the model's device) in
    slices no larger than this process's cap for the device; out of memory halves the slice
    (down to one window, each retried once after freeing the cache).
    Returns (N, 3, H, W) float32."""
    device = x.device
    n = x.shape[0]
    size = min(n, batch_cap(device) or n)
    outs: list[torch.Tensor] = []
    i, retried = 0, False
    while i < n:
        try:
            y = engine.forward(model, x[i : i + size], style, stats, job.style, job.compute)
        except torch.OutOfMemoryError:
            y = None
        if y is not None:
            outs.append(y)
            i += size
            retried = False  # the retry is per window: a later one gets its own
            continue
        _free_cache(device)  # outside the except block: the failed call's tensors are released
        if size > 1:
            size //= 2
            lower_batch_cap(device, size)
            log.warning("out of memory on %s: windows per network call lowered to %d", device, size)
        elif not retried:
            retried = True  # another task's tensors may have been cached: retry once
        else:
            raise WindowMemoryError(
                f"out of memory on {device} for a {x.shape[-2]}x{x.shape[-1]} window even after freeing the cache; "
                "use a smaller --stride (windows are stride + 2 * margin), --precision float16/bfloat16, "
                "or fewer --threads-per-worker"
            )
    return outs[0] if len(outs) == 1 else torch.cat(outs)

