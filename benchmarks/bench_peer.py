"""End to end on one photograph: urst-dask against the original implementation, in one run.

Ours runs as a user runs it - ``python -m urst_dask stylize ... -v`` in a fresh process, so
process start, imports, the cluster, decoding, the thumbnail, style encoding, compilation,
the windows, the pyramid and the completion marker all count - once per worker layout
(``--layouts 1x2,2x1``: workers x threads) and backend.  The original (czczup/URST
``test.py --URST`` with the 16x WCT) runs through ``../shared/peer/run_urst_peer.sh``
(``MIRROR`` and ``VENV`` as ../shared/README.md says).  Both get the same content and style.

Run (quiet machine):
  flock -x /tmp/urst-cpu.lock python benchmarks/bench_peer.py --content /tmp/urst-bench/cornell-3840x2160.jpg
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from common import SCRATCH, record

SHARED = Path(__file__).resolve().parents[2] / "shared"


def ours(content: str, style: str, layout: str, backend: str, precision: str, out: Path) -> dict:
    workers, threads = (int(v) for v in layout.split("x"))
    cmd = [sys.executable, "-m", "urst_dask", "stylize", content, style, "-o", str(out), "--overwrite", "--no-progress",
           "-v", "--workers", str(workers), "--threads-per-worker", str(threads), "--backend", backend,
           "--precision", precision]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"ours failed ({proc.returncode}): {proc.stderr[-2000:]}")
    stages = {}
    for line in proc.stderr.splitlines():
        m = re.match(r"^  (\S.*?)\s+([0-9.]+) s$", line) or re.match(r"^    (of which .*?)\s+([0-9.]+) s$", line)
        if m:
            stages[m.group(1).strip()] = float(m.group(2))
    print(proc.stderr[proc.stderr.find("[urst-dask] time per stage"):], file=sys.stderr)
    return {"layout": layout, "backend": backend, "precision": precision, "wall_s": round(wall, 2), "stages": stages,
            "command": " ".join(cmd)}


def peer(content: str, style: str, outdir: Path) -> dict:
    env = dict(os.environ, MIRROR=os.environ.get("MIRROR", "/work/.mirror"),
               VENV=os.environ.get("PEER_VENV", "/tmp/peer-venv"))
    cmd = ["bash", str(SHARED / "peer" / "run_urst_peer.sh"), content, style, "urst", str(outdir)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    text = proc.stdout + proc.stderr
    m = re.search(r"wall_s=([0-9.]+) peak_rss_mib=([0-9]+)", text)
    rc = re.search(r"rc=(\d+)", text)
    print(text[-1500:], file=sys.stderr)
    return {"wall_s": float(m.group(1)) if m else None, "peak_rss_mib": int(m.group(2)) if m else None,
            "rc": int(rc.group(1)) if rc else None, "outer_wall_s": round(wall, 2), "command": " ".join(cmd)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--content", default=str(SCRATCH / "cornell-3840x2160.jpg"))
    ap.add_argument("--style", default=str(SHARED / "images" / "style" / "starry_night.jpg"))
    ap.add_argument("--layouts", default="1x2,2x1", help="worker x thread layouts of our runs")
    ap.add_argument("--backends", default="auto")
    ap.add_argument("--precision", default="float32")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    SCRATCH.mkdir(parents=True, exist_ok=True)
    runs = []
    for backend in a.backends.split(","):
        for layout in a.layouts.split(","):
            r = ours(a.content, a.style, layout, backend, a.precision, SCRATCH / "peer-ours.zarr")
            print(f"ours {layout} {backend}: {r['wall_s']:.1f} s", flush=True)
            runs.append(r)
    other = None if a.no_peer else peer(a.content, a.style, SCRATCH / "peer-original")
    best = min(r["wall_s"] for r in runs)
    speedup = round(other["wall_s"] / best, 2) if other and other.get("wall_s") else None
    print(f"original: {other and other.get('wall_s')} s; ours best {best:.1f} s; speed-up {speedup}x (target >= 8x)")
    from PIL import Image

    with Image.open(a.content) as im:
        size = im.size
    record(f"peer-{Path(a.content).stem}{a.tag}", {
        "load_average_at_end": [round(v, 1) for v in os.getloadavg()], "content": a.content, "size": list(size), "style": a.style,
                                                  "ours": runs, "original": other, "speedup_best": speedup,
                                                  "target_speedup": 8})


if __name__ == "__main__":
    main()
