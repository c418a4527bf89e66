"""PNG plots of the benchmarks (matplotlib: the optional extra ``urst-dask[plot]``).

:func:`plot_memory`: peak memory against megapixels, one line per method and mode (solid:
tiled, dashed: whole), sizes on a log axis (they span decades), memory on a log axis when it
spans more than 8x (whole-image runs) and on a linear one from 0 otherwise (tiled only); a whole-image run the
guard skipped is an ``x`` at its predicted memory, above the dotted line of the memory that was
usable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import UrstError

MIB = 2**20
EXTRA = "pip install 'urst-dask[plot]'"


class PlotUnavailable(UrstError, ImportError):
    """matplotlib is not installed."""


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable(f"plots need matplotlib, the 'plot' extra: {EXTRA}") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.partial.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    return path


def _axes(ax: Any, xs: list[float], ys: list[float]) -> None:
    """x: log, ticks at the sizes measured, plain numbers.  y: log (plain labels at 1, 2, 5 x 10^k)
    when the memories span more than 8x, else linear from 0, where a flat line looks flat."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_xscale("log")
    if xs:
        ax.set_xticks(xs)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.4g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    if ys and max(ys) > 8 * min(ys):
        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "125" else "")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
    else:
        ax.set_ylim(0, 1.15 * max(ys, default=1.0))


def plot_memory(rows: list[dict[str, Any]], path: Path, *, title: str = "peak memory per run",
                size: tuple[float, float] = (9.0, 6.0)) -> Path:
    """Write a PNG of memory (GB) against megapixels for ``rows`` (see :mod:`.report`); return its path."""
    from .report import memory_gb, ordered

    plt = _pyplot()
    rows = ordered(rows)
    fig, ax = plt.subplots(figsize=size)
    colours = plt.get_cmap("tab10")
    methods = list(dict.fromkeys(r["method"] for r in rows))
    usable = [r["predicted_mib"] for r in rows if r.get("predicted_mib") and r["status"].startswith("out of memory")]
    for i, m in enumerate(methods):
        for mode, style in (("tiled", "-"), ("whole", "--")):
            mine = [r for r in rows if r["method"] == m and r["mode"] == mode]
            pts = [(r["megapixels"], memory_gb(r)) for r in mine if r["status"] == "ok"]
            if pts:
                random = any(r["weights"] == "random" for r in rows if r["method"] == m)
                ax.plot(*zip(*pts), style, marker="o" if mode == "tiled" else "s", ms=4, color=colours(i % 10),
                        label=f"{m}{' (random)' if random else ''} {mode}")
            skipped = [(r["megapixels"], r["predicted_mib"] * MIB / 1e9) for r in rows if r["method"] == m and r["mode"] == mode
                       and r["status"].startswith("out of memory") and r.get("predicted_mib")]
            if skipped:
                ax.plot(*zip(*skipped), "x", ms=8, mew=2, color=colours(i % 10))
    avail = [r["usable_mib"] for r in rows if r.get("usable_mib")]
    ys = [v for v in (memory_gb(r) for r in rows) if v] + [r["predicted_mib"] * MIB / 1e9 for r in rows if r.get("predicted_mib")]
    if avail:
        ax.axhline(min(avail) * MIB / 1e9, ls=":", color="grey", label="lowest usable memory the guard saw (whole-image runs)")
        ys.append(min(avail) * MIB / 1e9)
    if usable:
        ax.plot([], [], "x", color="black", label="whole, skipped: predicted out of memory")
    _axes(ax, sorted({r["megapixels"] for r in rows}), ys)
    ax.set_xlabel("image size (megapixels)")
    gpu = any(r.get("cuda_reserved_mib") is not None for r in rows)
    ax.set_ylabel("peak GPU memory reserved (GB)" if gpu else "peak RSS of the run (GB)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # no run measured: no legend (matplotlib warned)
        ax.legend(fontsize=7, ncol=2, loc="upper left")
    fig.tight_layout()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)
