"""The machine description recorded with every benchmark result."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil

from ..io import host


def _cpu_name() -> str:
    return host.cpuinfo().get("model name") or platform.processor() or "unknown"


def _code() -> str:
    """Which code ran: ``$URST_BENCH_CODE`` if set (e.g. for a snapshot), else the git commit of the checkout."""
    given = os.environ.get("URST_BENCH_CODE")
    if given:
        return given
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"git {out.stdout.strip()} ({root})" if out.returncode == 0 else f"no git checkout ({root})"


def describe(device: str = "auto") -> dict[str, Any]:
    """CPU, cores, memory, GPU (if torch sees one), versions, date and time."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = None
    if torch.cuda.is_available() and device != "cpu":
        props = torch.cuda.get_device_properties(0)
        gpu = {"name": props.name, "memory_gb": round(props.total_memory / 1e9, 1)}
    return {"code": _code(), "cpu": _cpu_name(), "cores": cores, "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
            "gpu": gpu, "device": device, "os": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M %Z")}
