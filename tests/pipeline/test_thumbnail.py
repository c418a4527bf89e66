import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from urst_dask.pipeline.conditioning import thumbnail
from urst_dask.preprocess import area_reduce_block, area_weights, thumb_shape, to_unit
from urst_dask.testing import random_image


@pytest.mark.parametrize("h, w, t, expected", [(4000, 3000, 1024, (1365, 1024)), (1000, 800, 1024, (1000, 800)),
                                               (3000, 40000, 1024, (1024, 13653)), (5, 100000, 2, (2, 40000))])
def test_thumb_shape(h, w, t, expected):
    assert thumb_shape(h, w, t) == expected


def test_area_weights_rows_sum_to_one():
    _, wts = area_weights(1000, 333, 0, 1000)
    np.testing.assert_allclose(wts.sum(axis=1), 1.0)


@pytest.mark.parametrize("chunks", [(13, 17, 3), (64, 64, 3), (120, 90, 3)])
def test_chunked_reduction_equals_block_mean(chunks):
    """Integer factor: the area reduction is the exact block mean, whatever the chunking."""
    image = random_image(120, 90, seed=2)
    thumb = dask.compute(thumbnail(da.from_array(image, chunks=chunks), 30), scheduler="sync")[0]
    ref = to_unit(image).astype(np.float64).reshape(40, 3, 30, 3, 3).mean(axis=(1, 3))
    assert thumb.shape == (40, 30, 3)
    np.testing.assert_allclose(thumb, ref, atol=1e-6)


def test_fractional_factor_matches_dense_matrix():
    image = random_image(101, 77, seed=4)
    thumb = dask.compute(thumbnail(da.from_array(image, chunks=(20, 30, 3)), 23), scheduler="sync")[0]
    th, tw = thumb_shape(101, 77, 23)
    _, wy = area_weights(101, th, 0, 101)
    _, wx = area_weights(77, tw, 0, 77)
    ref = np.einsum("ij,jkc,lk->ilc", wy, to_unit(image).astype(np.float64), wx)
    np.testing.assert_allclose(thumb, ref, atol=1e-6)


def test_small_image_is_its_own_thumbnail():
    image = random_image(50, 60, seed=5)
    thumb = dask.compute(thumbnail(da.from_array(image, chunks=(16, 16, 3)), 1024), scheduler="sync")[0]
    np.testing.assert_array_equal(thumb, to_unit(image))


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 60), w=st.integers(1, 60), th=st.integers(1, 60), tw=st.integers(1, 60),
       y0=st.integers(0, 40), x0=st.integers(0, 40), dy=st.integers(1, 60), dx=st.integers(1, 60))
def test_area_reduce_block_is_the_dense_weighted_sum(h, w, th, tw, y0, x0, dy, dx):
    """The banded sum equals the dense ``wy @ block @ wx.T`` for any block of any reduction."""
    th, tw = min(th, h), min(tw, w)  # a reduction
    y0, x0 = min(y0, h - 1), min(x0, w - 1)
    dy, dx = min(dy, h - y0), min(dx, w - x0)
    block = np.random.default_rng(h * 1000 + w).random((dy, dx, 2), dtype=np.float32)
    oy, ox, got = area_reduce_block(block, (h, w), (th, tw), y0, x0)
    ry, wy = area_weights(h, th, y0, y0 + dy)
    rx, wx = area_weights(w, tw, x0, x0 + dx)
    want = np.einsum("oy,yxc,px->opc", wy, block.astype(np.float64), wx)
    assert (oy, ox) == (ry, rx) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
