"""Memory diagnostics for people measuring memory against resolution.

Peaks are per worker process: ``ru_maxrss`` (high-water mark of resident memory since the
process started, so use a fresh cluster per measurement) and, on GPU workers,
``torch.cuda.max_memory_allocated`` (since the process started, likewise).
"""

from __future__ import annotations

import resource
from typing import Any


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _cuda_peak_mb() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None


def _short(addr: str) -> str:
    return addr.rsplit(":", 1)[-1] if addr.startswith("tcp://127.0.0.1") else addr


def peak_rss_per_worker(client: Any) -> dict[str, float]:
    """``{worker: peak resident memory in MiB}`` over each worker process's life."""
    return {_short(k): round(v, 1) for k, v in client.run(_peak_rss_mb).items()}


def cuda_peak_per_worker(client: Any) -> dict[str, float | None]:
    """``{worker: torch.cuda.max_memory_allocated in MiB}`` (``None`` on CPU workers)."""
    return {_short(k): (None if v is None else round(v, 1)) for k, v in client.run(_cuda_peak_mb).items()}

