import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from urst_dask.pipeline import conditioning as conditioning_module
from urst_dask.pipeline.conditioning import conditioning, local_thumbnail, thumbnail
from urst_dask.preprocess import area_band, area_reduce_block, thumb_shape, to_unit
from urst_dask.testing import random_image


def area_weights(n_in: int, n_out: int, lo: int, hi: int) -> tuple[int, np.ndarray]:
    """The reference: rows of the dense ``n_out x n_in`` box-filter matrix for inputs
    ``[lo, hi)`` (each input weighted by its overlap with the output's interval)."""
    r = n_in / n_out
    o_lo, o_hi = min(int(np.floor(lo / r)), n_out - 1), min(int(np.ceil(hi / r)), n_out)
    o = np.arange(o_lo, o_hi, dtype=np.float64)[:, None]
    p = np.arange(lo, hi, dtype=np.float64)[None, :]
    overlap = np.minimum(p + 1, (o + 1) * r) - np.maximum(p, o * r)
    return o_lo, np.clip(overlap, 0.0, None) / r


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


@settings(max_examples=80, deadline=None)
@given(n_in=st.integers(1, 300), n_out=st.integers(1, 300), lo=st.integers(0, 299), size=st.integers(1, 300))
def test_area_band_is_the_dense_matrix(n_in, n_out, lo, size):
    """The bands hold exactly the dense matrix's non-zero weights, at the right inputs."""
    n_out = min(n_out, n_in)
    lo = min(lo, n_in - 1)
    hi = min(lo + size, n_in)
    o_lo, index, weight = area_band(n_in, n_out, lo, hi)
    ref_lo, ref = area_weights(n_in, n_out, lo, hi)
    dense = np.zeros_like(ref)
    np.add.at(dense, (np.arange(len(index))[:, None].repeat(index.shape[1], 1), index), weight)
    assert o_lo == ref_lo and index.min() >= 0 and index.max() < hi - lo
    np.testing.assert_array_equal(dense, ref)


def test_a_long_strip_at_its_own_size_needs_no_square_matrix():
    """An 8 x 40000 strip is its own thumbnail: its bands are (40000, 2), where a dense weight
    matrix would have been 40000² float64 (12.8 GB, the process killed)."""
    _, index, weight = area_band(40000, 40000, 0, 40000)
    assert weight.shape == index.shape == (40000, 2)
    image = random_image(8, 40000, seed=9)
    np.testing.assert_array_equal(local_thumbnail(da.from_array(image, chunks=(8, 40000, 3)), 1024),
                                  to_unit(image))


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


# ------------------------------------------------------------------------ reduced in this process


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("shape, chunks, size", [((101, 77, 3), (20, 30, 3), 23), ((64, 200, 1), (64, 64, 1), 16),
                                                 ((40, 50, 4), (16, 16, 4), 1024)])
def test_the_local_thumbnail_is_the_graphs_thumbnail(dtype, shape, chunks, size):
    """Reduced in this process (a small image) or by the graph on a cluster: the same bytes."""
    rng = np.random.default_rng(shape[0])
    image = rng.random(shape, dtype=np.float32)
    if dtype is not np.float32:
        image = (image * np.iinfo(dtype).max).astype(dtype)
    arr = da.from_array(image, chunks=chunks)
    local = local_thumbnail(arr, size)
    graph = dask.compute(thumbnail(arr, size), scheduler="threads")[0]
    assert local is not None and local.dtype == np.float32
    np.testing.assert_array_equal(local, graph)


def test_an_image_above_the_budget_is_left_to_the_cluster(monkeypatch):
    arr = da.from_array(random_image(60, 80, seed=3), chunks=(32, 32, 3))
    monkeypatch.setattr(conditioning_module, "LOCAL_THUMB_BYTES", arr.nbytes - 1)
    assert local_thumbnail(arr, 16) is None
    monkeypatch.setattr(conditioning_module, "LOCAL_THUMB_BYTES", arr.nbytes)
    assert local_thumbnail(arr, 16).shape == (16, 21, 3)


def test_a_given_thumbnail_is_one_key_and_no_reduction(tmp_path):
    """conditioning() with the thumbnail given builds no reduction task: the array is one key."""
    from urst_dask.engine.models import ModelSpec
    from urst_dask.settings import StyleOptions

    arr = da.from_array(random_image(60, 80, seed=3), chunks=(32, 32, 3))
    spec, options = ModelSpec("identity", str(tmp_path)), StyleOptions(thumb_size=16)
    style = random_image(32, 32, seed=4)

    def names(thumb):
        graph = dict(conditioning(arr, style, spec, options, thumb=thumb).__dask_graph__())
        return [str(k[0] if isinstance(k, tuple) else k).rsplit("-", 1)[0] for k in graph]

    assert names(None).count("_block_partial") == 6
    given_names = names(local_thumbnail(arr, 16))
    assert "_block_partial" not in given_names and "_band" not in given_names
    assert given_names.count("ndarray") == 1


def test_a_thumbnail_lost_with_its_worker_is_scattered_again(client, monkeypatch):
    """The thumbnail reduced here lives on one worker; if it dies with it (here: cancelled, as
    dask does then), the stage scatters it again and runs once more instead of failing."""
    from urst_dask.pipeline.conditioning import run_conditioning

    scattered = []
    real = client.scatter

    def scatter_and_lose_the_first(data, **kw):
        future = real(data, **kw)
        scattered.append(future)
        if len(scattered) == 1:
            client.cancel(future)
        return future

    monkeypatch.setattr(client, "scatter", scatter_and_lose_the_first)
    thumb = np.ones((8, 8, 3))
    got = run_conditioning(client, lambda f: dask.delayed(np.sum)(f), thumb, progress=False, label="thumbnail")
    assert got == 192.0 and len(scattered) == 2
