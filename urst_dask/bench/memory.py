"""The memory sweep: peak memory, wall time and throughput against resolution, per method and mode.

For each size (smallest first), method and mode, one probe process (a fresh process with a local
cluster of one worker inside it) runs one ``stylize`` of a square image; see :mod:`urst_dask.bench.probe` for what
is measured.  Before each whole-image run the guard (:mod:`urst_dask.bench.predict`) predicts
its memory from the method's smaller whole-image runs and skips it when it would not fit; a
watchdog kills any run that still drives the machine's available memory below a floor.

Every finished run is appended to the journal ``<out>/<name>-runs.jsonl`` and the CSV,
Markdown, JSON and PNG are rewritten (each to a temporary name, then renamed), so an
interrupted sweep leaves complete files for the runs done, and rerunning the same sweep
(``resume``) only does the runs missing.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import OutputError, ParameterTypeError
from ..logs import LOGGER
from . import report
from .config import Mode, SweepConfig
from .inputs import content_path
from .machine import describe
from .predict import guard
from .random_weights import RANDOM, weights_for
from .runner import available_mb, default_floor_mb, run_probe

Log = Callable[[str], None]
MIB = 2**20


def _stderr(line: str) -> None:
    LOGGER.info(line)


def _journal(cfg: SweepConfig) -> Path:
    return cfg.out / f"{cfg.name}-runs.jsonl"


def _read_journal(path: Path, log: Log | None = None) -> list[dict[str, Any]]:
    """The journal's rows in order; a torn line (a full disk, a kill mid-write, an edit) is
    skipped with a warning, not a traceback on every resume."""
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            (log or _stderr)(f"warning: {path}: line {n} is not a whole run record; skipped")
    return rows


def _settings(cfg: SweepConfig) -> dict[str, Any]:
    """What a row's figures depend on beyond its method, mode and size: a row measured with
    other settings is measured again, not reused under these."""
    return {"image": str(cfg.image) if cfg.image else None, "style": cfg.style, "device": cfg.device}


def _load_journal(cfg: SweepConfig, log: Log | None = None) -> list[dict[str, Any]]:
    path = _journal(cfg)
    if not cfg.resume or not path.is_file():
        return []
    last: dict[tuple[str, str, int], dict[str, Any]] = {}
    for row in _read_journal(path, log):
        last[(row["method"], row["mode"], row["side"])] = row  # a later run of the same cell wins
    # failures and time-budget skips are tried again; so are rows measured with other settings
    # (rows of older versions, which did not record them, are taken as they were)
    mine = _settings(cfg)
    return [r for r in last.values() if (r["status"] == "ok" or r["status"].startswith("out of memory"))
            and r.get("settings", mine) == mine]


def _drop_methods(path: Path, methods: tuple[str, ...], log: Log | None) -> None:
    """``resume=False``: this sweep's methods are measured again; the rows of other methods
    (sweeps sharing the journal) stay."""
    if path.is_file():
        kept = [r for r in _read_journal(path, log) if r["method"] not in methods]
        path.write_text("".join(json.dumps(r) + "\n" for r in kept))


def _style_for(method: str, cfg: SweepConfig) -> str:
    from ..models import method_entry

    return cfg.style if method_entry(method).takes_style_image else "candy"


def _points(rows: list[dict[str, Any]], method: str, mode: str) -> list[tuple[float, float]]:
    return [(r["side"] ** 2, r["peak_rss_mib"]) for r in rows
            if r["method"] == method and r["mode"] == mode and r["status"] == "ok"]


def _baseline(rows: list[dict[str, Any]], method: str, mode: str) -> float:
    """The probe process's memory before the image (its start RSS), least over the runs."""
    starts = [float(r["rss_start_mib"]) for r in rows if r["method"] == method and r["mode"] == mode
              and r["status"] == "ok" and r.get("rss_start_mib") is not None]
    return min(starts) if starts else 0.0


def _time_estimate(rows: list[dict[str, Any]], method: str, mode: str, pixels: int) -> float | None:
    """Seconds for ``pixels``, proportional to the largest run of the same method and mode (an
    over-estimate when part of the time is fixed)."""
    done = [r for r in rows if r["method"] == method and r["mode"] == mode and r["status"] == "ok"]
    if not done:
        return None
    last = max(done, key=lambda r: r["side"])
    return last["wall_s"] * pixels / last["side"] ** 2


def _blocked(rows: list[dict[str, Any]], method: str, mode: str, side: int) -> str | None:
    """A smaller size of the same method and mode already ran out of memory: so would this one."""
    for r in rows:
        if r["method"] == method and r["mode"] == mode and r["side"] < side and r["status"].startswith("out of memory"):
            return f"out of memory (as at {r['side']}^2: {r['status'][len('out of memory ('):-1]})"
    return None


def _row(method: str, label: str, mode: Mode, side: int, cfg: SweepConfig) -> dict[str, Any]:
    return {"method": method, "weights": label, "mode": mode.value, "side": side,
            "megapixels": round(side * side / 1e6, 4), "device": cfg.device, "settings": _settings(cfg), "status": ""}


def _measure(row: dict[str, Any], spec: dict[str, Any], cfg: SweepConfig) -> None:
    res = run_probe(spec, default_floor_mb(), cfg.timeout_s)
    data = res.data
    row["sampled_tree_peak_mib"] = res.sampled_peak_mb
    if not data.get("ok"):
        row["status"] = data["error"] if res.killed else f"failed: {data['error']}"
        return
    row.update(wall_s=data["wall_s"], mp_per_s=data["mp_per_s"], peak_rss_mib=data["peak_rss_mb"],
               rss_start_mib=data["rss_start_mb"], cuda_allocated_mib=data["cuda_allocated_mb"],
               cuda_reserved_mib=data["cuda_reserved_mb"], status="ok")


def _one_run(method: str, weights: tuple[Path, str], mode: Mode, side: int, cfg: SweepConfig,
             rows: list[dict[str, Any]], started: float) -> dict[str, Any]:
    row = _row(method, weights[1], mode, side, cfg)
    blocked = _blocked(rows, method, mode.value, side)
    if blocked:
        row["status"] = blocked
        return row
    if mode is Mode.WHOLE:
        avail = available_mb()
        verdict = guard(_points(rows, method, mode.value), side * side, avail, cfg.safety,
                        _baseline(rows, method, mode.value))
        row["predicted_mib"] = None if verdict.predicted_mb is None else round(verdict.predicted_mb, 1)
        row["available_mib"], row["usable_mib"] = round(avail, 1), round(verdict.usable_mb, 1)
        if not verdict.run:
            row["status"] = verdict.status
            return row
    if cfg.budget_s is not None:
        left = cfg.budget_s - (time.monotonic() - started)
        need = _time_estimate(rows, method, mode.value, side * side)
        if left <= 0 or (need is not None and need > left):
            row["status"] = (f"not run (time budget: predicted {need / 60:.1f} min > {max(left, 0) / 60:.1f} min left)"
                             if need is not None else "not run (time budget spent)")
            return row
    content = content_path(side, cfg.scratch, cfg.image)
    out = cfg.scratch / f"out-{method}-{mode.value}-{side}.zarr"
    spec = {"content": str(content), "style": _style_for(method, cfg), "out": str(out), "method": method,
            "weights": str(weights[0]), "whole": mode is Mode.WHOLE, "device": cfg.device, "side": side}
    try:
        _measure(row, spec, cfg)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return row


def _progress(i: int, n: int, row: dict[str, Any]) -> str:
    head = f"[{i}/{n}] {row['method']} {row['mode']} {row['side']}x{row['side']}"
    if row["status"] != "ok":
        return f"{head}: {row['status']}"
    cuda = "" if row["cuda_reserved_mib"] is None else f", CUDA reserved {row['cuda_reserved_mib'] * MIB / 1e9:.2f} GB"
    return (f"{head}: {row['wall_s']:.1f} s, {row['mp_per_s']:.3f} MP/s, peak RSS "
            f"{row['peak_rss_mib'] * MIB / 1e9:.2f} GB (at start {row['rss_start_mib'] * MIB / 1e9:.2f} GB){cuda}")


def _write_all(cfg: SweepConfig, rows: list[dict[str, Any]], machine: dict[str, Any], log: Log,
               config_doc: dict[str, Any] | None = None) -> dict[str, Path]:
    paths = report.write_tables(cfg.out, cfg.name, rows, machine, config_doc or _config_doc(cfg))
    try:
        from .plot import plot_memory

        paths["png"] = plot_memory(rows, cfg.out / f"{cfg.name}.png", title=f"{cfg.name}: peak memory per run")
    except ImportError as exc:  # the table is still written; the plot needs the extra
        log(f"no plot: {exc}")
    return paths


def _config_doc(cfg: SweepConfig) -> dict[str, Any]:
    doc = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    doc["modes"] = [m.value for m in cfg.modes]
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in doc.items()}


def memory_report(out: str | Path, name: str = "memory", *, log: Log | None = _stderr) -> dict[str, Path]:
    """Rewrite ``<out>/<name>.csv/.md/.json/.png`` from the journal alone (nothing is run): after
    several sweeps into the same journal (resumed, or run side by side on disjoint methods)."""
    if not (Path(out) / f"{name}-runs.jsonl").is_file():  # before SweepConfig, which makes the folder
        raise OutputError(f"out={str(out)!r}: no journal {name}-runs.jsonl there")
    cfg = SweepConfig(out=Path(out), name=name, methods=("passthrough",), sizes=(1,))
    if not _journal(cfg).is_file():
        raise OutputError(f"out={str(out)!r}: no journal {_journal(cfg).name} there")
    last: dict[tuple[str, str, int], dict[str, Any]] = {}
    for row in _read_journal(_journal(cfg), log):
        last[(row["method"], row["mode"], row["side"])] = row
    devices = {r["device"] for r in last.values()}
    machine = describe(devices.pop() if len(devices) == 1 else "auto")
    measured = [r["measured"] for r in last.values() if r.get("measured")]
    if measured:  # when and by which code the rows were measured, not when the tables were rebuilt
        dates = sorted(m["date"] for m in measured)
        machine = {**machine, "date": dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}",
                   "code": ", ".join(sorted({m["code"] for m in measured})),
                   "cpu": ", ".join(sorted({m["cpu"] for m in measured}))}
    doc = {"rebuilt_from": str(_journal(cfg)), "rebuilt": describe("auto")["date"],
           "note": "one or more sweeps; each row records its own method, mode, size, device, settings and when, "
                   "on which CPU and by which code it was measured (rows of older versions: only the first four)"}
    return _write_all(cfg, list(last.values()), machine, log or (lambda s: None), doc)


def memory_sweep(config: SweepConfig | None = None, *, log: Log | None = _stderr, **settings: Any) -> list[dict[str, Any]]:
    """Run the sweep and return its rows (one dict per method, size and mode asked for, by method then size).

    Settings are a :class:`SweepConfig` or its fields as keywords (``out`` is required):
    ``memory_sweep(out="bench-out", methods=["wct16x"], sizes=[1000, 2000])``.  Writes
    ``<out>/<name>.csv``, ``.md`` (laid out like the paper's Table 1), ``.json`` (rows, summary,
    machine), ``.png`` (needs the ``plot`` extra) and the journal ``<name>-runs.jsonl``; returns
    the rows.  Memory figures are MiB in the rows and GB (10^9 bytes) in the tables.
    """
    if config is not None and not isinstance(config, SweepConfig):
        raise ParameterTypeError(f"config={type(config).__name__}: expected a SweepConfig")
    cfg = dataclasses.replace(config, **settings) if config is not None else SweepConfig(**settings)
    log = log or (lambda line: None)
    from ..io.weights import resolve_weights_dir

    wdir = resolve_weights_dir(cfg.weights)
    machine = describe(cfg.device)
    rows = _load_journal(cfg, log)
    done = {(r["method"], r["mode"], r["side"]) for r in rows}
    todo = [(s, m, mode) for s in cfg.sizes for m in cfg.methods for mode in cfg.modes if (m, mode.value, s) not in done]
    if done:
        log(f"resuming: {len(done)} runs already in {_journal(cfg)}")
    weights = {m: weights_for(m, wdir, cfg.scratch / "random-weights") for m in cfg.methods}
    for m, (_, label) in weights.items():
        if label == RANDOM:
            log(f"{m}: no weights in {wdir}; running with {label} weights in the official layout")
    journal = _journal(cfg)
    if not cfg.resume:
        _drop_methods(journal, cfg.methods, log)
    started = time.monotonic()
    for i, (side, method, mode) in enumerate(todo, 1):
        row = _one_run(method, weights[method], mode, side, cfg, rows, started)
        row["measured"] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "code": machine["code"],
                           "cpu": machine["cpu"]}
        rows.append(row)
        with journal.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        log(_progress(i, len(todo), row))
        _write_all(cfg, rows, machine, log)
    if not todo:
        _write_all(cfg, rows, machine, log)
    modes = {m.value for m in cfg.modes}
    return [r for r in report.ordered(rows, cfg.methods, cfg.sizes) if r["mode"] in modes]
