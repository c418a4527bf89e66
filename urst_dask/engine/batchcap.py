"""The batch cap per device: how many windows per network call still fit after an
out-of-memory error in this process (only ever lowered)."""

from __future__ import annotations

import threading

import torch

_lock = threading.Lock()
_batch_caps: dict[str, int] = {}


def batch_cap(device: torch.device | str) -> int | None:
    """The most windows per network call this process still tries on ``device`` since it ran
    out of memory there (``None``: it never did)."""
    return _batch_caps.get(str(device))


def lower_batch_cap(device: torch.device | str, size: int) -> None:
    """Remember that ``device`` only fits ``size`` windows per call (only ever lowers)."""
    with _lock:
        _batch_caps[str(device)] = min(int(size), _batch_caps.get(str(device), int(size)))


def reset_batch_caps() -> None:
    """Forget every cap (tests)."""
    with _lock:
        _batch_caps.clear()
