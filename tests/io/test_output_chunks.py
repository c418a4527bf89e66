"""Every chunk a run writes exists on disk, also one equal to the fill value: the resume scan
counts chunks present as done (``store.present_chunks``)."""

from __future__ import annotations

import numpy as np

import urst_dask
from urst_dask.io import store


def test_a_chunk_equal_to_the_fill_value_is_still_written(tmp_path):
    out = store.create_output(tmp_path / "o.zarr", (8, 12, 3), 4, "uint8", {}, None)
    store.write_region(str(out), 0, 0, np.zeros((4, 4, 3), np.uint8))  # all fill value (0)
    store.write_region(str(out), 0, 4, np.full((4, 4, 3), 7, np.uint8))
    assert store.present_chunks(out) == {(0, 0), (0, 1)}
    store.mark_complete(out)
    np.testing.assert_array_equal(store.open_output(out)[:4, :8].compute()[:, 4:], 7)


def test_a_black_image_leaves_no_chunk_missing(tmp_path, client):
    """A black photograph stylized by the identity network is black: each of its 2 x 3 chunks
    is on disk all the same, so a rerun finds nothing to do."""
    image = np.zeros((96, 140, 3), np.uint8)
    style = np.full((32, 32, 3), 128, np.uint8)
    out = urst_dask.stylize(image, style, tmp_path / "black.zarr", method="identity", weights=tmp_path,
                            client=client, stride=48, margin=8)
    assert store.open_output(out).compute().max() == 0
    assert store.present_chunks(out) == {(r, c) for r in range(2) for c in range(3)}
