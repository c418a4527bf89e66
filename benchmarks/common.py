"""Shared helpers for the benchmark scripts: machine description, inputs, recording."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

# where record() writes: benchmarks/results, or $URST_BENCH_RESULTS (tests write into a tmp folder)
RESULTS = Path(os.environ.get("URST_BENCH_RESULTS") or Path(__file__).parent / "results")
SCRATCH = Path(os.environ.get("URST_BENCH_SCRATCH", "/tmp/urst-bench"))


def machine() -> dict:
    import torch

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        mem = subprocess.run(["free", "-g"], capture_output=True, text=True).stdout.split("\n")[1].split()[1] + " GiB"
    except (OSError, IndexError):
        pass
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory": mem,
        "amx": "amx_bf16" in flags,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }


def weights_dir() -> Path:
    from urst_dask.io.weights import resolve_weights_dir

    return resolve_weights_dir(None)


def synthetic_zarr(side_h: int, side_w: int, seed: int = 0) -> Path:
    """A cached synthetic input Zarr (generated chunk by chunk, never whole in memory)."""
    import dask
    import zarr

    from urst_dask.pipeline.synthetic import synthetic_array

    path = SCRATCH / f"synthetic-{side_h}x{side_w}-s{seed}.zarr"
    if (path / "zarr.json").exists():
        return path
    SCRATCH.mkdir(parents=True, exist_ok=True)
    arr = synthetic_array((side_h, side_w), seed=seed, chunk=1000)
    target = zarr.create_array(str(path), shape=arr.shape, chunks=(1000, 1000, 3), dtype="uint8", overwrite=True)
    with dask.config.set(scheduler="threads"):
        arr.store(target, lock=False)
    return path


def record(name: str, payload: dict) -> Path:
    """Write ``<RESULTS>/<name>.json`` (``$URST_BENCH_RESULTS`` or ``benchmarks/results``) with the machine description, and print it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    doc = {"benchmark": name, "machine": machine(), **payload}
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"recorded {out}")
    return out
