"""The pyramid stage: 2x-reduced levels ``"1"``, ``"2"``... beside the store's ``"0"`` and the
NGFF multiscales metadata.

:mod:`urst_dask.io.ome` opens the group, creates each level's empty array and writes the
metadata; the reduction (:mod:`urst_dask.io.halving`) of a large level (the previous one, read
back from the store) is a lazy ``da.store(..., compute=False)`` graph, computed here on the
run's cluster (or the current scheduler without one).  The first level of at most
:data:`LOCAL_BYTES` is read once, in this process, and every level after it is reduced from
memory: a cluster round trip per small level cost more than its pixels (a 3840 x 2160 image's
four levels: 0.33-0.54 s through the cluster).  Progress goes to the run's progress line.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import dask
import dask.array as da
import numpy as np

from ..engine import timing
from ..io import halving, ome
from .progress import WindowBar

LOCAL_BYTES = 64 << 20  # a level this small (an 8-MP RGB image is 25 MB) is reduced in memory, with all after it


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

    Each level is the area mean of 2 x 2 pixels of the previous one (:mod:`urst_dask.io.halving`),
    until the longer side is <= ``min_size``; chunks are ``chunk`` (default: ``"0"``'s spatial
    chunk) or the level size.  Large levels are computed chunk by chunk; from the first level of
    at most :data:`LOCAL_BYTES` on, in this process.  Levels keep ``"0"``'s layout and dtype; stale deeper levels of an
    earlier pyramid are removed.  ``channels`` ("gray" | "rgb" | "rgba", default from C) sets
    the ``omero`` colours; ``pixel_size``/``channel_names`` go into the scales and labels.
    ``client``: compute on that cluster (default: the current scheduler); ``bar``: the run's
    progress line, which shows ``pyramid level k/n``.
    """
    target = ome.open_pyramid(store_path, channels=channels, chunk=chunk)
    h, w, _ = target.shape
    n = halving.level_count(h, w, min_size)
    prev = target.base  # the stored level the next one is reduced from
    paths = ["0"]
    with timing.stage("pyramid"):
        for level in range(1, n + 1):
            if prev.nbytes <= LOCAL_BYTES:
                paths += _local_levels(target, ome.read_level(prev, target.layout), level, n, bar)
                break
            if bar is not None:
                bar.step(f"pyramid level {level}/{n}")
            nxt = halving.half(ome.level_yxc(prev, target.layout), target.chunk)
            arr, chunks_yxc = ome.create_level(target, level, int(nxt.shape[0]), int(nxt.shape[1]))
            src = nxt.rechunk(chunks_yxc)
            stored = da.store(src.transpose(2, 0, 1) if target.layout == "cyx" else src, arr, lock=False,
                              compute=False)
            _compute(client, stored)
            prev = arr
            paths.append(str(level))
        if bar is not None and n:
            bar.step(f"pyramid: {n} levels written")
        return ome.finish_pyramid(target, paths, pixel_size=pixel_size, channel_names=channel_names)


def _local_levels(target: ome.PyramidTarget, image: np.ndarray, first: int, last: int,
                  bar: WindowBar | None) -> list[str]:
    """Levels ``first``..``last`` reduced in memory from ``image`` (level ``first - 1``, (h, w, C))
    and written whole; returns their paths."""
    paths = []
    for level in range(first, last + 1):
        if bar is not None:
            bar.step(f"pyramid level {level}/{last}")
        image = halving.half_array(image)
        arr, _ = ome.create_level(target, level, image.shape[0], image.shape[1])
        ome.write_level(arr, image, target.layout)
        paths.append(str(level))
    return paths


def _compute(client: Any, collection: Any) -> None:
    if client is None:
        dask.compute(collection)
    else:
        client.gather(client.compute(collection))
