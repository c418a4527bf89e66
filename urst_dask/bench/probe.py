"""One measurement of the memory sweep, run as its own process (``python -m urst_dask.bench.probe SPEC``).

A fresh process per (method, mode, size) makes every peak belong to that run alone.  The
process starts a local cluster of one worker *inside itself* (one worker thread; client,
scheduler and worker share the process, so its high-water mark covers everything the run
held), runs one :func:`urst_dask.api.stylize` and prints one JSON line with:

* ``peak_rss_mb``: the process's peak resident memory (``ru_maxrss`` = ``VmHWM``);
* ``rss_start_mb``: its resident memory once the cluster is up, before the run (Python,
  torch, Dask: the floor under every figure);
* on CUDA ``torch.cuda.max_memory_allocated`` and ``max_memory_reserved``;
* the wall time of the ``stylize`` call and the megapixels per second.

One process instead of a worker process per run saves two interpreter starts per run, which
on a loaded 2-core machine cost about a minute each.  SPEC is a JSON object: content, style
("demo" for the generated painting, else a path or a style name), out, method, weights,
whole, device, side.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

MIB = 2**20


def _hwm_mb() -> float:
    """This process's peak resident memory in MiB (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / MIB


def _cuda_peaks() -> dict[str, float] | None:
    import torch

    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return {"allocated": torch.cuda.max_memory_allocated() / MIB, "reserved": torch.cuda.max_memory_reserved() / MIB}


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one stylize as ``spec`` says and return the peaks, the wall time and the throughput."""
    from .. import api
    from ..pipeline.cluster import connect
    from ..settings import ClusterOptions
    from ..synthetic import demo_style

    style: Any = demo_style(768) if spec["style"] == "demo" else spec["style"]
    side = int(spec["side"])
    with connect(ClusterOptions(workers=1, threads_per_worker=1, processes=False)) as client:
        start = _rss_mb()
        t0 = time.perf_counter()
        api.stylize(spec["content"], style, spec["out"], method=spec["method"], weights=spec["weights"],
                    client=client, overwrite=True, whole=bool(spec["whole"]), device=spec["device"])
        wall = time.perf_counter() - t0
    cuda = _cuda_peaks()
    mp = side * side / 1e6
    return {"wall_s": round(wall, 2), "mp_per_s": round(mp / wall, 4), "rss_start_mb": round(start, 1),
            "peak_rss_mb": round(_hwm_mb(), 1),
            "cuda_allocated_mb": None if cuda is None else round(cuda["allocated"], 1),
            "cuda_reserved_mb": None if cuda is None else round(cuda["reserved"], 1)}


def main(argv: list[str]) -> int:
    from ..errors import UrstError

    spec = json.loads(argv[0])
    try:
        result = {"ok": True, **measure(spec)}
    except UrstError as exc:
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    except Exception as exc:  # noqa: BLE001 - reported as the run's status, one line
        result = {"ok": False, "error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"}
    print("URST-PROBE " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
