"""``bench memory``: peak memory against resolution per method and mode (the paper's Table 1)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

RAW = argparse.RawDescriptionHelpFormatter
BENCH_EXAMPLES = """Examples:
  urst-dask bench memory --out results/ --methods wct16x --sizes 1000 2000 4000
  urst-dask bench memory --out results/ --report-only
  urst-dask bench seams benchmarks/results/seams-*.json --out plots/
"""
MEMORY_EXAMPLES = """Examples:
  urst-dask bench memory --out results/                       every network, tiled and whole, 1000-10000 px
  urst-dask bench memory --out results/ --methods wct16x --modes tiled --sizes 1000 4000 16000 --budget 60
  urst-dask bench memory --out results/ --image cornell.jpg --name photo --device cuda
  urst-dask bench memory --out results/ --report-only          rewrite the tables and plot from the journal
"""
SEAMS_EXAMPLES = """Examples:
  urst-dask bench seams benchmarks/results/seams-cornell.json --out plots/
  urst-dask bench seams benchmarks/results/seams-*.json --out plots/
"""


def register(sub: argparse._SubParsersAction) -> None:
    from ..bench.config import DEFAULT_SIZES, Mode
    from ..bench.predict import DEFAULT_SAFETY

    p = sub.add_parser("bench", help="benchmarks: `bench memory` (memory against resolution)",
                       epilog=BENCH_EXAMPLES, formatter_class=RAW)
    bsub = p.add_subparsers(dest="bcmd", required=True, title="commands", metavar="BENCHMARK")
    m = bsub.add_parser("memory", help="peak memory, wall time and MP/s against image size, per method and mode",
                        description="Each (method, mode, size) runs in a fresh process (a local cluster of one "
                                    "worker); whole-image runs predicted not to fit in memory are skipped and "
                                    "recorded as out of memory.  Writes <name>.csv/.md/.json/.png under --out.",
                        epilog=MEMORY_EXAMPLES, formatter_class=RAW)
    m.add_argument("--methods", nargs="+", metavar="METHOD",
                   help="networks to measure (default: every network; methods without weights run with random "
                        "weights in their official layout, labelled 'random'; passthrough on request)")
    m.add_argument("--sizes", nargs="+", type=int, metavar="SIDE", default=list(DEFAULT_SIZES),
                   help="square image sides in pixels; default 1000 2000 ... 10000")
    m.add_argument("--modes", nargs="+", choices=[x.value for x in Mode], default=[x.value for x in Mode],
                   help="tiled (URST) and/or whole (the whole image as one window); default both")
    m.add_argument("--image", type=Path, help="a photograph scaled to each size (default: generated content)")
    m.add_argument("--style", default="demo", help="style image (default: a generated painting; johnson: candy)")
    m.add_argument("-o", "--out", type=Path, required=True, help="folder for the CSV, Markdown, JSON and PNG")
    m.add_argument("--name", default="memory", help="file name prefix under --out; default memory")
    m.add_argument("--device", default="auto", help="auto | cpu | cuda; default auto")
    m.add_argument("--weights", type=Path, help="weights folder (default: $URST_DASK_WEIGHTS, then the user cache)")
    m.add_argument("--scratch", type=Path, help="cached inputs and outputs (default: $URST_BENCH_SCRATCH/memory "
                                                "or /tmp/urst-bench/memory)")
    m.add_argument("--safety", type=float, default=DEFAULT_SAFETY,
                   help=f"share of the available memory a whole-image run may be predicted to take; default {DEFAULT_SAFETY}")
    m.add_argument("--budget", type=float, metavar="MINUTES",
                   help="do not start runs predicted to end after this many minutes")
    m.add_argument("--timeout", type=float, metavar="SECONDS", help="stop any single run after this long")
    m.add_argument("--no-resume", action="store_true", help="start afresh instead of keeping the runs in the journal")
    m.add_argument("--report-only", action="store_true",
                   help="run nothing: rewrite the tables and plot from the journal <name>-runs.jsonl under --out")
    m.set_defaults(func=_cmd_memory)

    s = bsub.add_parser("seams", help="plot the seam score against the margin of seam sweeps (seams-*.json)",
                        epilog=SEAMS_EXAMPLES, formatter_class=RAW)
    s.add_argument("json", nargs="+", type=Path, help="seam sweep results (benchmarks/results/seams-*.json)")
    s.add_argument("-o", "--out", type=Path, required=True, help="folder for one PNG per JSON")
    s.set_defaults(func=_cmd_seams)


def _cmd_seams(a: argparse.Namespace) -> None:
    from ..bench.config import _check_out
    from ..bench.seams import plot_seams

    out = _check_out(a.out)
    print("wrote " + " ".join(str(plot_seams(js, out / f"memory-{js.stem}.png")) for js in a.json))


def _cmd_memory(a: argparse.Namespace) -> None:
    from ..bench import memory_sweep
    from ..bench.config import SweepConfig
    from ..errors import bad_value

    if a.report_only:
        from ..bench import memory_report

        paths = memory_report(a.out, a.name)
        print("wrote " + " ".join(str(p) for p in paths.values()))
        return
    if a.budget is not None and not a.budget > 0:
        raise bad_value("budget", a.budget, "must be a number of minutes > 0")
    if a.timeout is not None and not a.timeout > 0:  # named as typed (the API's name is timeout_s)
        raise bad_value("timeout", a.timeout, "must be a number of seconds > 0")

    given = {"out": a.out, "sizes": a.sizes, "modes": a.modes, "image": a.image, "style": a.style, "name": a.name,
             "device": a.device, "weights": a.weights, "safety": a.safety, "resume": not a.no_resume,
             "budget_s": None if a.budget is None else a.budget * 60.0, "timeout_s": a.timeout}
    if a.methods:
        given["methods"] = a.methods
    if a.scratch:
        given["scratch"] = a.scratch
    cfg = SweepConfig(**given)
    rows = memory_sweep(cfg)
    ok = sum(r["status"] == "ok" for r in rows)
    print(f"{ok} of {len(rows)} runs measured", file=sys.stderr)
    files = [cfg.out / f"{cfg.name}.{ext}" for ext in ("csv", "md", "json", "png")]
    print("wrote " + " ".join(str(f) for f in files if f.exists()))
    failed = [r for r in rows if r["status"].startswith("failed")]  # not an out-of-memory or budget verdict
    if failed:
        from ..errors import UrstError

        raise UrstError(f"bench memory: {len(failed)} of {len(rows)} runs failed (first: {failed[0]['status']}); "
                        f"the others are in {cfg.out / (cfg.name + '.md')}")
