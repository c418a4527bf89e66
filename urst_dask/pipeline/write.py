"""Writing the tile stage's blocks into the output Zarr (whole chunks), only the missing ones
when a run resumes, strip after strip so the ``map_overlap`` frontier stays narrow.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np

from ..io import chunkio


def _write_block(block: np.ndarray, *, path: str, array_token: str,
                 block_info: dict[Any, Any] | None = None) -> np.ndarray:
    assert block_info is not None  # dask passes it to every block
    (y0, _), (x0, _), _ = block_info[0]["array-location"]
    chunkio.write_region(path, y0, x0, block, array_token)
    return np.ones((1, 1), dtype=bool)


def missing_blocks(stylized: da.Array, chunk: int, present: set[tuple[int, int]]) -> list[tuple[int, int]]:
    """Blocks (row, col) of ``stylized`` with any output chunk (``chunk`` px) not in ``present``."""
    offsets = [np.cumsum((0,) + stylized.chunks[i]) for i in (0, 1)]
    todo = []
    for i in range(stylized.numblocks[0]):
        rows = range(offsets[0][i] // chunk, (offsets[0][i + 1] - 1) // chunk + 1)
        for j in range(stylized.numblocks[1]):
            cols = range(offsets[1][j] // chunk, (offsets[1][j + 1] - 1) // chunk + 1)
            if any((r, c) not in present for r in rows for c in cols):
                todo.append((i, j))
    return todo


BLEND_MIN_COLUMNS = 16  # strips at least this wide when blending: <= 12.5 % recomputed windows


def strips(blocks: list[tuple[int, int]], n_rows: int, threads: int, min_columns: int = 4) -> list[list[tuple[int, int]]]:
    """Split the windows to write into vertical strips of block-columns, computed one strip
    after another.

    ``map_overlap`` needs a window's neighbours, so a graph over the whole image keeps a
    frontier of blocks as wide as the image in memory (it grows with the width: measured
    +60 % per worker at 40000 px).  A strip of ``k`` columns keeps it ``k`` blocks wide,
    whatever the image size.  ``k`` is at least ``min_columns`` and large enough that a
    strip holds ~8 windows per worker thread, so every thread stays busy.  With blending, a
    strip also computes the window column on each side of it (their pieces feather into the
    strip's edge blocks): ``2 / k`` extra windows, so blending callers pass a larger
    ``min_columns`` (:data:`BLEND_MIN_COLUMNS`).
    """
    if not blocks:
        return []
    k = max(min_columns, -(-8 * max(1, threads) // max(1, n_rows)))
    grouped: dict[int, list[tuple[int, int]]] = {}
    for i, j in sorted(blocks, key=lambda b: (b[1] // k, b[0], b[1])):
        grouped.setdefault(j // k, []).append((i, j))
    return list(grouped.values())


def write_blocks(stylized: da.Array, path: str, blocks: list[tuple[int, int]] | None = None) -> list[da.Array]:
    """Lazy writes of the given blocks (all if ``None``); computing them stores each block.
    Blocks not asked for are culled with their windows, so a resumed run computes only those."""
    # the store's image_token, read here once: the workers' open handles follow the store's shape
    # (passed as array_token: map_blocks keeps ``token=`` for the graph's name)
    written = stylized.map_blocks(
        _write_block,
        path=str(path),
        array_token=chunkio.image_token(path),
        dtype=bool,
        drop_axis=2,
        chunks=(tuple(1 for _ in stylized.chunks[0]), tuple(1 for _ in stylized.chunks[1])),
        meta=np.empty((0, 0), dtype=bool),
    )
    if blocks is None:
        return [written]
    return [written.blocks[i, j] for i, j in blocks]


def write_tiles(client: Any, stylized: da.Array, out_path: str, present: set[tuple[int, int]], *,
                stride: int, windows: tuple[int, ...], min_columns: int, bar: Any) -> None:
    """The tile stage: compute and store every block of ``stylized`` missing from ``present``
    (output chunks of ``stride`` px), strip after strip (:func:`strips`), on ``client``.
    ``windows``: the windows of each block column (the progress ``bar`` counts windows)."""
    from .culling import StripGraphs
    from .progress import run_counted

    todo = missing_blocks(stylized, stride, present)
    if not todo:
        return
    threads = sum(w.get("nthreads", 1) for w in client.scheduler_info().get("workers", {}).values())
    graphs = StripGraphs(write_blocks(stylized, str(out_path))[0])  # expanded once, not once per strip
    for strip in strips(todo, stylized.numblocks[0], threads, min_columns):
        run_counted(client, graphs.strip(strip), [windows[j] for _, j in strip], bar, label="tile stage")


def window_counts(stylized: da.Array, stride: int, present: set[tuple[int, int]],
                  windows: tuple[int, ...]) -> tuple[int, int]:
    """(all windows, windows whose blocks are already written) of a tile stage."""
    todo = set(missing_blocks(stylized, stride, present))
    total = stylized.numblocks[0] * sum(windows)
    done = sum(windows[j] for i in range(stylized.numblocks[0]) for j in range(stylized.numblocks[1])
               if (i, j) not in todo)
    return total, done
