"""The seam score against the tile margin, from the seam sweeps (``benchmarks/results/seams-*.json``).

Each seam sweep records, per method, one row per (margin, blend) with its seam score (mean
absolute neighbour difference across the tile boundaries over the same elsewhere: 1.0 = the
boundaries are as smooth as the rest of the image) and the whole-image run's score.
:func:`plot_seams` draws one line per method and blend (colour: method, line style: blend)
against the margin, with the whole-image score of each method dotted in its colour.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputImageError
from .plot import _pyplot, _save

STYLES = {"crop": "-", "linear": "--", "gaussian": ":"}


def seam_series(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{method: {"whole": score | None, "curves": {blend: [(margin, score), ...]}}}`` of one sweep
    (aligned tilings only; the unaligned v0.1 row is one point, not a curve)."""
    out: dict[str, dict[str, Any]] = {}
    for method, entry in doc.get("methods", {}).items():
        curves: dict[str, list[tuple[float, float]]] = {}
        whole = None
        for row in entry.get("rows", []):
            if row.get("config") == "whole":
                whole = row["seam"]
            elif row.get("align") and row.get("margin") is not None and row.get("seam") is not None:
                curves.setdefault(row.get("blend", "crop"), []).append((row["margin"], row["seam"]))
        out[method] = {"whole": whole, "curves": {b: sorted(p) for b, p in curves.items()}}
    return out


def plot_seams(json_path: str | Path, png: str | Path, *, size: tuple[float, float] = (9.0, 6.0)) -> Path:
    """Write the seam-score-against-margin PNG of one seam sweep's JSON; return its path."""
    try:
        doc = json.loads(Path(json_path).read_text())
    except (OSError, ValueError) as exc:
        raise InputImageError(f"json={str(json_path)!r}: cannot read a seam sweep ({exc})") from None
    series = seam_series(doc)
    if not any(s["curves"] for s in series.values()):
        raise InputImageError(f"json={str(json_path)!r}: no aligned (margin, seam) rows in it")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=size)
    colours = plt.get_cmap("tab10")
    for i, (method, s) in enumerate(series.items()):
        for blend, pts in s["curves"].items():
            ax.plot([p[0] for p in pts], [p[1] for p in pts], STYLES.get(blend, "-."), marker="o", ms=4,
                    color=colours(i % 10), label=f"{method} {blend}")
        if s["whole"] is not None:
            ax.axhline(s["whole"], color=colours(i % 10), lw=0.8, alpha=0.6, ls=(0, (1, 3)))
    ax.axhline(1.0, color="black", lw=0.8, label="1.0: boundaries as smooth as elsewhere")
    ax.plot([], [], color="grey", lw=0.8, ls=(0, (1, 3)), label="dotted: the method on the whole image")
    margins = sorted({p[0] for s in series.values() for pts in s["curves"].values() for p in pts})
    ax.set_xticks(margins)
    ax.set_xlabel("margin (px of context on each side of a window)")
    ax.set_ylabel("seam score")
    ax.set_title(f"{doc.get('benchmark', Path(json_path).stem)}: {doc.get('image', '')}, stride {doc.get('stride', '?')}",
                 fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    try:
        return _save(fig, Path(png))
    finally:
        plt.close(fig)
