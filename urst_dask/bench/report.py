"""CSV, Markdown and JSON of the memory sweep.

The Markdown is laid out like the paper's Table 1: one row per resolution, one column per
method x mode (whole = the original method on the whole image, tiled = URST), cells in GB
(10^9 bytes): the peak resident memory of the run's process (client, scheduler and the one
worker inside it; Python, torch and Dask included) on CPUs, ``torch.cuda.max_memory_reserved``
on GPUs.  "-" marks out of memory (predicted by the guard, or stopped by the watchdog), as in
the paper; "n/r" a run not made (time budget, or not asked for); "fail" a run that failed.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable

MIB = 2**20
COLUMNS = ("method", "weights", "mode", "side", "megapixels", "device", "status", "memory_gb", "peak_rss_mib",
           "rss_start_mib", "sampled_tree_peak_mib",
           "cuda_allocated_mib", "cuda_reserved_mib", "wall_s", "mp_per_s", "predicted_mib", "available_mib", "usable_mib")
MODES = ("whole", "tiled")


def memory_gb(row: dict[str, Any]) -> float | None:
    """The table's figure for a row: CUDA reserved peak on GPUs, else the worker's peak RSS, in GB."""
    if row.get("status") != "ok":
        return None
    mib = row.get("cuda_reserved_mib") if row.get("cuda_reserved_mib") is not None else row.get("peak_rss_mib")
    return None if mib is None else round(mib * MIB / 1e9, 3)


def _method_order(methods: Iterable[str]) -> list[str]:
    from ..models import METHODS

    known = list(METHODS)
    return sorted(set(methods), key=lambda m: (known.index(m) if m in known else len(known), m))


def ordered(rows: list[dict[str, Any]], methods: Iterable[str] | None = None,
            sizes: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """Rows (restricted to ``methods`` and ``sizes`` if given) by method, size, mode."""
    keep = [r for r in rows if (methods is None or r["method"] in set(methods)) and (sizes is None or r["side"] in set(sizes))]
    order = _method_order(r["method"] for r in keep)
    return sorted(keep, key=lambda r: (order.index(r["method"]), r["side"], MODES.index(r["mode"])))


def _cell(row: dict[str, Any] | None, field: str = "memory") -> str:
    if row is None:
        return "n/r"
    status = row["status"]
    if status.startswith("out of memory"):
        return "-"
    if status.startswith("not run"):
        return "n/r"
    if status != "ok":
        return "fail"
    if field == "memory":
        return f"{memory_gb(row):.2f}"
    return f"{row['mp_per_s']:.3f}"


def ratios(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per method: whole/tiled memory at the largest size where both ran, and the tiled spread."""
    out: dict[str, dict[str, Any]] = {}
    for m in _method_order(r["method"] for r in rows):
        ok = {(r["mode"], r["side"]): r for r in rows if r["method"] == m and r["status"] == "ok"}
        both = sorted(s for (mode, s) in ok if mode == "whole" and ("tiled", s) in ok)
        tiled = [g for (mode, _), r in ok.items() if mode == "tiled" and (g := memory_gb(r)) is not None]
        entry: dict[str, Any] = {"largest_whole_side": max((s for mode, s in ok if mode == "whole"), default=None)}
        if both:
            s = both[-1]
            w, t = memory_gb(ok[("whole", s)]) or 0.0, memory_gb(ok[("tiled", s)]) or 0.0
            entry.update(side=s, whole_gb=w, tiled_gb=t, ratio=round(w / t, 2) if t else None)
        if tiled:
            entry.update(tiled_min_gb=min(tiled), tiled_max_gb=max(tiled),
                         tiled_sides=sorted(s for mode, s in ok if mode == "tiled"))
        out[m] = entry
    return out


def _atomic_write(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**{k: "" for k in COLUMNS}, **{k: v for k, v in r.items() if v is not None}, "memory_gb": memory_gb(r) or ""})
    return buf.getvalue()


def _grid(rows: list[dict[str, Any]], field: str) -> list[str]:
    methods = _method_order(r["method"] for r in rows)
    modes = [m for m in MODES if any(r["mode"] == m for r in rows)]
    label = {r["method"]: r["method"] + (" (random)" if r["weights"] == "random" else "") for r in rows}
    cells = {(r["method"], r["mode"], r["side"]): r for r in rows}
    cols = [(m, mode) for m in methods for mode in modes]
    head = "| resolution | " + " | ".join(f"{label[m]} {mode}" for m, mode in cols) + " |"
    lines = [head, "|---" * (len(cols) + 1) + "|"]
    for s in sorted({r["side"] for r in rows}):
        lines.append(f"| {s}^2 | " + " | ".join(_cell(cells.get((m, mode, s)), field) for m, mode in cols) + " |")
    return lines


def _predictions(rows: list[dict[str, Any]]) -> list[str]:
    """The guard's line for whole-image sizes in the table that were not measured (GB), and whether
    it would skip them at the usable memory of the method's last guard decision."""
    from .predict import fit

    sides = sorted({r["side"] for r in rows})
    out = []
    for m in _method_order(r["method"] for r in rows):
        whole = {r["side"]: r for r in rows if r["method"] == m and r["mode"] == "whole"}
        pts = [(s * s, r["peak_rss_mib"]) for s, r in whole.items() if r["status"] == "ok"]
        usable = [r["usable_mib"] for r in whole.values() if r.get("usable_mib")]
        missing = [s for s in sides if s not in whole or whole[s]["status"] != "ok"]
        if len(pts) < 2 or not missing:
            continue
        line, cap = fit(pts), (usable[-1] if usable else None)
        if line is None:
            continue
        cells = []
        for s in missing:
            gb = line(s * s) * MIB / 1e9
            over = cap is not None and line(s * s) > cap
            cells.append(f"{s}^2: {gb:.2f}" + (" (over the usable memory: skipped)" if over else ""))
        out.append(f"- {m} (fit of {len(pts)} whole-image runs): " + "; ".join(cells))
    if not out:
        return []
    seen = [r["usable_mib"] for r in rows if r.get("usable_mib")]
    note = f" (the lowest usable memory the guard saw: {min(seen) * MIB / 1e9:.1f} GB)" if seen else ""
    return ["", f"Whole-image memory predicted by the guard's linear fit (GB) where it was not measured{note}:", ""] + out


def to_markdown(rows: list[dict[str, Any]], machine: dict[str, Any]) -> str:
    gpu = any(r.get("cuda_reserved_mib") is not None for r in rows)
    what = "torch.cuda.max_memory_reserved" if gpu else "peak resident memory (RSS) of the run's process"
    where = f"{machine.get('cpu')}, {machine.get('cores')} cores, {machine.get('memory_gb')} GB" + (
        f", GPU {machine['gpu']['name']}" if gpu and machine.get("gpu") else "")
    lines = [f"## Memory (GB) for one image: {what}", "",
             f"Machine: {where}; torch {machine.get('torch')}; {machine.get('date')}.  "
             "whole = the method on the whole image (one window); tiled = URST (windows + thumbnail statistics).  "
             '"-" = out of memory (predicted by the guard or stopped by the watchdog), "n/r" = not run, '
             '"fail" = failed; "(random)" = random weights in the official layout (no weights here).', ""]
    lines += _grid(rows, "memory")
    lines += ["", "## Throughput (MP/s, wall time of the whole stylize call, thumbnail stage included)", ""]
    lines += _grid(rows, "mp_per_s")
    lines += ["", "## whole / tiled memory at the largest size where both were measured", "",
              "(the largest whole-image size that fits, where the guard or the watchdog stopped the larger ones)", "",
              "| method | size | whole GB | tiled GB | whole/tiled | tiled GB over all sizes (min-max) |",
              "|---|---|---|---|---|---|"]
    for m, e in ratios(rows).items():
        spread = f"{e['tiled_min_gb']:.2f}-{e['tiled_max_gb']:.2f} ({min(e['tiled_sides'])}^2-{max(e['tiled_sides'])}^2)" \
            if "tiled_min_gb" in e else "n/r"
        if e.get("ratio") is not None:
            lines.append(f"| {m} | {e['side']}^2 | {e['whole_gb']:.2f} | {e['tiled_gb']:.2f} | {e['ratio']:.2f} | {spread} |")
        else:
            lines.append(f"| {m} | n/r | n/r | n/r | n/r | {spread} |")
    lines += _predictions(rows)
    skipped = [r for r in rows if r["status"] not in ("ok",)]
    if skipped:
        lines += ["", "Runs not measured (other n/r cells were not attempted):", ""]
        lines += [f"- {r['method']} {r['mode']} {r['side']}^2: {r['status']}" for r in skipped]
    return "\n".join(lines) + "\n"


def write_tables(out: Path, name: str, rows: list[dict[str, Any]], machine: dict[str, Any],
                 config: dict[str, Any]) -> dict[str, Path]:
    """Write ``<name>.csv``, ``<name>.md`` and ``<name>.json`` under ``out`` (each atomically)."""
    rows = ordered(rows)
    doc = {"benchmark": name, "machine": machine, "config": config, "summary": ratios(rows), "rows": rows}
    return {"csv": _atomic_write(out / f"{name}.csv", to_csv(rows)),
            "md": _atomic_write(out / f"{name}.md", to_markdown(rows, machine)),
            "json": _atomic_write(out / f"{name}.json", json.dumps(doc, indent=2) + "\n")}
