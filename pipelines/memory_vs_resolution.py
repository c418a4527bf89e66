"""Recipe for people measuring memory against resolution (the paper's Table 1 on your machine).

A thin layer over :func:`urst_dask.bench.memory_sweep` (also ``urst-dask bench memory``): each
(method, mode, size) runs in a fresh process; whole-image runs predicted not to fit in memory
are skipped ("-" in the table, as in the paper); CSV, Markdown, JSON and PNG go under --out.

    python pipelines/memory_vs_resolution.py --out mem-out                       # all networks, 1000..10000
    python pipelines/memory_vs_resolution.py --out mem-out --methods wct16x microast --paper-sizes
    python pipelines/memory_vs_resolution.py --out mem-out --seams benchmarks/results/seams-*.json

``--paper-sizes`` takes the paper's rows (1000, 2000, 3000, 4000, 6000, 10000); ``--seams``
also plots the seam score against the margin of seam sweeps (one PNG per JSON).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from urst_dask.bench import DEFAULT_SIZES, PAPER_SIZES, memory_sweep
from urst_dask.bench.seams import plot_seams


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--methods", nargs="+", help="default: every network")
    ap.add_argument("--sizes", nargs="+", type=int, default=list(DEFAULT_SIZES))
    ap.add_argument("--paper-sizes", action="store_true", help="the paper's rows: " + " ".join(map(str, PAPER_SIZES)))
    ap.add_argument("--modes", nargs="+", default=["tiled", "whole"])
    ap.add_argument("--image", type=Path, help="a photograph scaled to each size (default: generated content)")
    ap.add_argument("--seams", nargs="*", type=Path, default=[], help="seam sweep JSON files to plot")
    a = ap.parse_args(argv)
    settings = {"out": a.out, "sizes": PAPER_SIZES if a.paper_sizes else a.sizes, "modes": a.modes, "image": a.image}
    if a.methods:
        settings["methods"] = a.methods
    rows = memory_sweep(**settings)
    print(f"{sum(r['status'] == 'ok' for r in rows)} of {len(rows)} runs measured; tables in {a.out}")
    for js in a.seams:
        print(plot_seams(js, a.out / f"memory-{js.stem}.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
