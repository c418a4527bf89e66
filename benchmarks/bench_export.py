"""Exports of a finished store: wall time and peak RSS of `urst-dask export` to .tif and .png,
with the progress line off and on, alternated, each in a fresh process.

The store is given (`--store`), or made once from the synthetic image with the passthrough
network (`--side`, cached under the scratch folder; not timed).

Run: python benchmarks/bench_export.py --store /tmp/me/big.zarr --formats tif,png --rounds 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from common import SCRATCH, record, synthetic_zarr


def made_store(side: int) -> Path:
    """A complete store of the synthetic image, stylized by the passthrough network (cached)."""
    import urst_dask
    from urst_dask.io import store
    from urst_dask.synthetic import demo_style

    out = SCRATCH / f"export-source-{side}.zarr"
    try:
        if store.read_attrs(out).get("status") == "complete":
            return out
    except Exception:  # noqa: BLE001 - not there yet, or left by a killed run: make it again
        pass
    urst_dask.stylize(str(synthetic_zarr(side, side)), demo_style(256), out, method="passthrough", overwrite=True,
                      progress=False)
    return out


def one_export(store: Path, fmt: str, progress: bool) -> dict:
    """Export ``store`` in a fresh process; its wall time and peak RSS."""
    out = SCRATCH / f"bench-export.{fmt}"
    argv = [sys.executable, "-m", "urst_dask", "export", str(store), str(out), "--overwrite"]
    argv += [] if progress else ["--no-progress"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    if status != 0:
        raise SystemExit(f"export failed ({status}): {err[-500:]}")
    lines = [line for line in err.splitlines() if " rows " in line]
    return {"format": fmt, "progress": progress, "wall_s": round(wall, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "size_mb": round(out.stat().st_size / 2**20, 1), "progress_lines": len(lines)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, help="a finished output store (default: made from --side)")
    ap.add_argument("--side", type=int, default=4000, help="side of the synthetic store made without --store")
    ap.add_argument("--formats", default="tif,png")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    SCRATCH.mkdir(parents=True, exist_ok=True)
    store = a.store or made_store(a.side)
    from urst_dask.io import store as store_io

    h, w, c = store_io.open_output(store).shape
    rows = []
    for r in range(a.rounds):
        for fmt in a.formats.split(","):
            for progress in ((False, True) if r % 2 == 0 else (True, False)):  # alternated
                row = {"round": r, **one_export(store, fmt, progress)}
                print(row, flush=True)
                rows.append(row)
    record(f"export-{h}x{w}{a.tag}", {"store": str(store), "shape": [h, w, c],
                                      "megapixels": round(h * w / 1e6, 1), "runs": rows})


if __name__ == "__main__":
    main()
