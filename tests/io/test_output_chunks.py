"""Every chunk a run writes exists on disk, also one equal to the fill value: the resume scan
counts chunks present as done (``chunkio.present_chunks``)."""

from __future__ import annotations

import numpy as np

import urst_dask
from urst_dask.io import chunkio, store


def test_a_chunk_equal_to_the_fill_value_is_still_written(tmp_path):
    out = store.create_output(tmp_path / "o.zarr", (8, 12, 3), 4, "uint8", {}, None)
    chunkio.write_region(str(out), 0, 0, np.zeros((4, 4, 3), np.uint8))  # all fill value (0)
    chunkio.write_region(str(out), 0, 4, np.full((4, 4, 3), 7, np.uint8))
    assert chunkio.present_chunks(out) == {(0, 0), (0, 1)}
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
    assert chunkio.present_chunks(out) == {(r, c) for r in range(2) for c in range(3)}


def test_a_store_replaced_by_another_shape_gets_a_fresh_handle(tmp_path):
    """A long-lived worker keeps its handle of an output array: after the store is replaced by
    a taller one (another run, --overwrite), the writes past the old shape must land, not be
    dropped by the old handle."""
    out = tmp_path / "o.zarr"
    store.create_output(out, (8, 8, 3), 4, "uint8", {}, None)
    chunkio.write_region(str(out), 0, 0, np.full((4, 4, 3), 1, np.uint8), chunkio.image_token(out))
    store.create_output(out, (16, 8, 3), 4, "uint8", {}, None, overwrite=True)
    token = chunkio.image_token(out)
    for y0 in range(0, 16, 4):
        for x0 in (0, 4):
            chunkio.write_region(str(out), y0, x0, np.full((4, 4, 3), 9, np.uint8), token)
    store.mark_complete(out)
    assert chunkio.present_chunks(out) == {(r, c) for r in range(4) for c in range(2)}
    np.testing.assert_array_equal(store.open_output(out).compute(), 9)


def test_a_persistent_cluster_overwrites_with_another_shape(tmp_path, client, style_image):
    """Two runs into one output path on the same workers, the second of a taller image with
    --overwrite: the store equals the second run's in a store of its own."""
    from urst_dask.testing import random_image

    kw = dict(method="identity", weights=tmp_path, client=client, stride=48, margin=8)
    first, second = random_image(96, 140, seed=2), random_image(200, 100, seed=3)
    out = urst_dask.stylize(first, style_image, tmp_path / "o.zarr", **kw)
    out = urst_dask.stylize(second, style_image, tmp_path / "o.zarr", overwrite=True, **kw)
    alone = urst_dask.stylize(second, style_image, tmp_path / "alone.zarr", **kw)
    got = store.open_output(out).compute()
    assert got.shape == (200, 100, 3)
    np.testing.assert_array_equal(got, store.open_output(alone).compute())


def test_a_full_disk_names_the_chunk_file(tmp_path, monkeypatch):
    """zarr's error of a full disk names no file: the message names the chunk's own."""
    import errno

    import pytest
    import zarr

    from urst_dask.errors import OutputError

    out = tmp_path / "o.zarr"
    store.create_output(out, (64, 96, 3), 32, "uint8", {}, None)

    def full(self, key, value):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(zarr.Array, "__setitem__", full)
    with pytest.raises(OutputError, match=r"cannot write the chunk at rows 32:64, columns 64:96 \(file "
                                          f"{out}/0/c/0/1/2\\): No space left on device \\(disk full"):
        chunkio.write_region(str(out), 32, 64, np.zeros((32, 32, 3), np.uint8))
