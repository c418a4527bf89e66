import dask
import dask.array as da
import numpy as np
import pytest

from urst_dask.pipeline.conditioning import thumbnail
from urst_dask.preprocess import area_weights, thumb_shape, to_unit
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
