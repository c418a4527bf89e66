"""The fixed cost of a run: everything outside the windows' own compute, per stage.

Runs ``python -m urst_dask stylize IMAGE STYLE -o ... -v`` in a fresh process (as a user
does) and reads its per-stage summary: process start and imports, cluster start, decoding
the JPEG/PNG into the temporary Zarr, network load, thumbnail and style encoding, the
windows (and the compilation inside them), the pyramid, the completion marker and the
cluster's shutdown.  The fixed cost is the wall time less the windows' compute (compilation
counts as fixed).  Also records ``python -X importtime`` of the CLI's imports.

Run (quiet machine):
  flock -x /tmp/urst-cpu.lock python benchmarks/bench_fixed_cost.py --content /tmp/urst-bench/cornell-3840x2160.jpg
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
TARGET_S = 5.0


def run_cli(content: str, style: str, extra: list[str]) -> dict:
    out = SCRATCH / "fixed-cost.zarr"
    cmd = [sys.executable, "-m", "urst_dask", "stylize", content, style, "-o", str(out), "--overwrite",
           "--no-progress", "-v", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    stages: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        m = re.match(r"^\s+(\S.*?)\s+([0-9.]+) s$", line)
        if m:
            stages[m.group(1).strip()] = float(m.group(2))
    windows = stages.get("windows", 0.0)
    compile_s = stages.get("of which compilation (slowest worker)", 0.0)
    fixed = wall - windows + compile_s
    print(proc.stderr[proc.stderr.find("[urst-dask] time per stage"):], file=sys.stderr)
    print(f"wall {wall:.2f} s; windows {windows:.2f} s (compilation {compile_s:.2f} s); fixed cost {fixed:.2f} s "
          f"(target {TARGET_S} s)", flush=True)
    return {"command": " ".join(cmd), "wall_s": round(wall, 2), "stages": stages, "fixed_cost_s": round(fixed, 2)}


def import_time() -> dict:
    """Cumulative import time (s) of the modules the CLI loads, the ten slowest."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import urst_dask.cli, urst_dask.api"],
                          capture_output=True, text=True)
    rows = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m and len(m.group(3)) <= 3:  # top-level imports only
            rows.append((int(m.group(2)) / 1e6, m.group(4)))
    rows.sort(reverse=True)
    return {name: round(s, 3) for s, name in rows[:10]}


def cpu_ticks() -> list[int]:
    """The machine's ``cpu`` line of ``/proc/stat`` (user nice system idle iowait irq softirq steal ...)."""
    try:
        with open("/proc/stat") as f:
            return [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return []


def steal_percent(before: list[int], after: list[int]) -> float | None:
    """The share of CPU time the hypervisor gave to others (steal) between two readings."""
    if len(before) < 8 or len(after) < 8:
        return None
    total = sum(after) - sum(before)
    return round(100.0 * (after[7] - before[7]) / total, 1) if total > 0 else None


def code_under_test() -> str:
    """The commit of the urst_dask that ``python -m urst_dask`` imports here (``PYTHONPATH`` may
    point at a worktree of another commit), ``+dirty`` with uncommitted changes."""
    where = subprocess.run([sys.executable, "-c", "import os, urst_dask; print(os.path.dirname(os.path.dirname("
                            "urst_dask.__file__)))"], capture_output=True, text=True).stdout.strip()
    head = subprocess.run(["git", "-C", where, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", where, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True).stdout.strip()
    return f"{head.stdout.strip() or 'unknown'}{'+dirty' if dirty else ''} ({where})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--content", default=str(SCRATCH / "cornell-3840x2160.jpg"))
    ap.add_argument("--style", default=str(SHARED / "images" / "style" / "starry_night.jpg"))
    ap.add_argument("--args", default="", help="extra stylize arguments, e.g. '--backend eager --workers 2'")
    ap.add_argument("--tag", default="")
    ap.add_argument("--conditions", default="", help="how quiet the machine was, what ran beside")
    a = ap.parse_args()
    SCRATCH.mkdir(parents=True, exist_ok=True)
    ticks = cpu_ticks()
    result = run_cli(a.content, a.style, a.args.split())
    result["steal_percent"] = steal_percent(ticks, cpu_ticks())
    print(f"steal (CPU time taken by other guests) during the run: {result['steal_percent']} %")
    imports = import_time()
    print("slowest top-level imports (s):", imports)
    from PIL import Image

    with Image.open(a.content) as im:
        size = im.size
    record(f"fixed-cost-{Path(a.content).stem}{a.tag}", {
        "load_average_at_end": [round(v, 1) for v in os.getloadavg()], "code": code_under_test(),
        "conditions": a.conditions, "content": a.content, "size": list(size), "style": a.style,
                                                        **result, "imports_s": imports, "target_s": TARGET_S})


if __name__ == "__main__":
    main()
