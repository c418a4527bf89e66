"""The pyramid stage: 2x-reduced levels ``"1"``, ``"2"``... beside the store's ``"0"`` and the
NGFF multiscales metadata.

:mod:`urst_dask.io.ome` opens the group, creates each level's empty array and writes the
metadata; the reduction itself (:func:`urst_dask.io.ome.half` of the previous level, read back
from the store) is a lazy ``da.store(..., compute=False)`` graph per level, computed here on the
run's cluster (or the current scheduler without one) and reported on the run's progress line.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import dask
import dask.array as da

from ..engine import timing
from ..io import ome
from .progress import WindowBar


def write_pyramid(
    store_path: str | os.PathLike[str],
    *,
    client: Any = None,
    bar: WindowBar | None = None,
    pixel_size: ome.PixelSize | None = None,
    channel_names: Sequence[str] | None = None,
    channels: str | None = None,
    min_size: int = 256,
    chunk: int | None = None,
) -> tuple[str, ...]:
    """Add the reduced levels and NGFF metadata to the group at ``store_path``; returns the
    dataset paths (``("0", "1", ...)``).

    Each level is the area mean of 2 x 2 pixels of the previous one, written chunk by chunk,
    until the longer side is <= ``min_size``; chunks are ``chunk`` (default: ``"0"``'s spatial
    chunk) or the level size.  Levels keep ``"0"``'s layout and dtype; stale deeper levels of an
    earlier pyramid are removed.  ``channels`` ("gray" | "rgb" | "rgba", default from C) sets
    the ``omero`` colours; ``pixel_size``/``channel_names`` go into the scales and labels.
    ``client``: compute on that cluster (default: the current scheduler); ``bar``: the run's
    progress line, which shows ``pyramid level k/n``.
    """
    target = ome.open_pyramid(store_path, channels=channels, chunk=chunk)
    h, w, _ = target.shape
    n = ome.level_count(h, w, min_size)
    prev = ome.level_yxc(target.base, target.layout)
    paths = ["0"]
    with timing.stage("pyramid"):
        for level in range(1, n + 1):
            if bar is not None:
                bar.step(f"pyramid level {level}/{n}")
            nxt = ome.half(prev, target.chunk)
            arr, chunks_yxc = ome.create_level(target, level, int(nxt.shape[0]), int(nxt.shape[1]))
            src = nxt.rechunk(chunks_yxc)
            stored = da.store(src.transpose(2, 0, 1) if target.layout == "cyx" else src, arr, lock=False,
                              compute=False)
            _compute(client, stored)
            prev = ome.level_yxc(arr, target.layout)
            paths.append(str(level))
        if bar is not None and n:
            bar.step(f"pyramid: {n} levels written")
        return ome.finish_pyramid(target, paths, pixel_size=pixel_size, channel_names=channel_names)


def _compute(client: Any, collection: Any) -> None:
    if client is None:
        dask.compute(collection)
    else:
        client.gather(client.compute(collection))
