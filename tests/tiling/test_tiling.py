"""The tiling is exact: every pixel written once, in its place, for any shape, chunking and
blend; grid-aligned windows agree with whole-image inference."""

from __future__ import annotations

import dask
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urst_dask.engine import ModelSpec, get_model
from urst_dask.pipeline.conditioning import conditioning
from urst_dask.pipeline.tiles import tile_graph
from urst_dask.pipeline.write import strips
from urst_dask.settings import ComputeOptions, Precision, StyleOptions
from urst_dask.stats import NormStats
from urst_dask.testing import random_image
from urst_dask.tiling import Blend, TilePlan, WindowJob

IDENTITY = ModelSpec("identity", ".")
LOCALMEAN = ModelSpec("identity", ".", variant="localmean")
POOL16 = ModelSpec("identity", ".", variant="pool16")


def _job(dtype, **compute) -> WindowJob:
    return WindowJob(StyleOptions(), ComputeOptions(precision=Precision.FLOAT32, **compute), str(np.dtype(dtype)))


def _stats(spec: ModelSpec, image: np.ndarray) -> NormStats:
    return dask.compute(conditioning(dask.array.from_array(image, chunks=(64, 64, 3)), None, spec,
                                     StyleOptions(thumb_size=16, style_size=16, alpha=1.0)), scheduler="sync")[0][1]


def _tiled(spec, image, plan, stats=None, whole=False, in_chunks=(37, 41, 3), batch=1):
    """(lazy, computed) tiled result; ``plan`` is resolved against the toy network."""
    arr = dask.array.from_array(image, chunks=in_chunks)
    style = get_model(spec).prepare_style(None)
    out = tile_graph(arr, spec, style, stats, plan, _job(image.dtype, whole=whole, batch=batch))
    return out, out.compute(scheduler="sync")


shapes = st.tuples(st.integers(1, 130), st.integers(1, 130))
plans = st.integers(16, 60).flatmap(lambda s: st.tuples(st.just(s), st.integers(0, (s - 1) // 2)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=shapes, plan=plans, seed=st.integers(0, 2**16), batch=st.sampled_from([1, 1, 2, 3]),
       blend=st.sampled_from(list(Blend)))
def test_identity_tiling_is_bit_exact(shape, plan, seed, batch, blend):
    image = random_image(*shape, seed=seed)
    stats = _stats(IDENTITY, image)
    margin = min(plan[1], plan[0] - 7)  # the identity toy has size multiple 8: reach = margin + 7 <= stride
    out, result = _tiled(IDENTITY, image, TilePlan(stride=plan[0], margin=margin, blend=blend), stats, batch=batch)
    assert result.shape == image.shape and result.dtype == image.dtype
    np.testing.assert_array_equal(result, image)
    # chunks follow the stride (``batch`` strides along x) so each task writes whole output chunks
    assert all(c == plan[0] for c in out.chunks[0][:-1])
    assert all(c == batch * plan[0] for c in out.chunks[1][:-1])


@pytest.mark.parametrize("blend", list(Blend))
@pytest.mark.parametrize("batch", [1, 2])
def test_aligned_tiles_equal_whole_image_inference_bit_for_bit(blend, batch):
    """A network that average-pools 16-px cells (size multiple 16, receptive field one cell)
    at the paper's stride 1000: grid-aligned windows see exactly the cells of the whole
    image, so the stitched result equals whole-image inference byte for byte, blends too."""
    image = random_image(1300, 2150, seed=5)
    stats = _stats(POOL16, image)
    _, whole = _tiled(POOL16, image, TilePlan(), stats, whole=True, in_chunks=(500, 500, 3))
    _, tiled = _tiled(POOL16, image, TilePlan(margin=32, blend=blend), stats, in_chunks=(500, 500, 3), batch=batch)
    np.testing.assert_array_equal(tiled, whole)


def test_unaligned_tiles_differ_from_whole_image_inference():
    """The control: the same network with windows at k*1000 - 32 pools other cells."""
    image = random_image(1300, 2150, seed=5)
    stats = _stats(POOL16, image)
    _, whole = _tiled(POOL16, image, TilePlan(), stats, whole=True, in_chunks=(500, 500, 3))
    _, tiled = _tiled(POOL16, image, TilePlan(blend="crop", align=False), stats, in_chunks=(500, 500, 3))
    differs = np.any(tiled != whole, axis=2)
    assert not differs[:1000, :1000].any()  # the first window starts at 0: on the grid
    assert differs[1000:, 1000:].mean() > 0.5  # windows at 968 and 1968: every cell shifted


@pytest.mark.parametrize("blend", [Blend.LINEAR, Blend.GAUSSIAN])
def test_blends_mix_neighbours_only_inside_the_overlap_band(blend):
    """With a network whose window edges differ from the whole image (3x3 mean, replicate
    padding at each window edge), a blend changes pixels only within ``margin`` of a chunk
    boundary; elsewhere it is the crop result byte for byte."""
    image = random_image(120, 130, seed=9)
    stats = _stats(LOCALMEAN, image)
    _, crop = _tiled(LOCALMEAN, image, TilePlan(stride=40, margin=6, blend="crop"), stats)
    _, blended = _tiled(LOCALMEAN, image, TilePlan(stride=40, margin=6, blend=blend), stats)
    near = np.zeros(image.shape[:2], bool)
    for b in (40, 80):  # rows: chunks 40, 40, 40
        near[b - 6 : b + 6] = True
    for b in (40, 80, 120):  # columns: chunks 40, 40, 40, 10
        near[:, b - 6 : b + 6] = True
    np.testing.assert_array_equal(blended[~near], crop[~near])
    assert (blended[near] != crop[near]).any()  # the blend really mixed the window edges in


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=shapes, plan=plans, seed=st.integers(0, 2**16), batch=st.integers(2, 5))
def test_batched_windows_equal_one_window_per_task(shape, plan, seed, batch):
    """Several windows per task and per network call (``batch``) give the same bytes as one
    window per task, with a network whose output depends on the neighbourhood (3x3)."""
    image = random_image(*shape, seed=seed)
    stats = _stats(LOCALMEAN, image)
    tile_plan = TilePlan(stride=plan[0], margin=max(1, plan[1]))
    _, single = _tiled(LOCALMEAN, image, tile_plan, stats)
    out, batched = _tiled(LOCALMEAN, image, tile_plan, stats, batch=batch)
    np.testing.assert_array_equal(batched, single)
    assert out.numblocks[1] == -(-len(tile_plan.resolve(1).axis_chunks(shape[1])) // batch)


@pytest.mark.parametrize("shape", [(1, 1), (1, 257), (257, 1), (2, 3), (1000, 3), (33, 2010)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_identity_edge_shapes_and_dtypes(shape, dtype):
    image = random_image(*shape, seed=7, dtype=dtype)
    _, result = _tiled(IDENTITY, image, TilePlan(stride=1000, margin=32), _stats(IDENTITY, image))
    assert result.shape == image.shape
    if np.dtype(dtype).kind == "f":
        np.testing.assert_allclose(result, image, atol=1e-6)
    else:
        np.testing.assert_array_equal(result, image)


@settings(max_examples=25, deadline=None)
@given(shape=shapes, plan_a=plans, plan_b=plans, seed=st.integers(0, 2**16))
def test_output_does_not_depend_on_chunking(shape, plan_a, plan_b, seed):
    """A 3x3 network (receptive field inside any margin >= 1): every tiling equals the
    whole-image pass, bit for bit (crop: the window edges, padded, are never kept)."""
    image = random_image(*shape, seed=seed)
    stats = _stats(LOCALMEAN, image)
    _, whole = _tiled(LOCALMEAN, image, TilePlan(stride=plan_a[0], margin=max(1, plan_a[1])), stats, whole=True)
    for stride, margin in (plan_a, plan_b):
        _, tiled = _tiled(LOCALMEAN, image, TilePlan(stride=stride, margin=max(1, margin), blend="crop"), stats)
        np.testing.assert_array_equal(tiled, whole)


def test_margin_zero_shows_seams_with_a_3x3_network():
    """Control for the test above: without margin the seams appear, so the test can fail."""
    image = random_image(90, 90, seed=3)
    stats = _stats(LOCALMEAN, image)
    _, whole = _tiled(LOCALMEAN, image, TilePlan(stride=30, margin=1), stats, whole=True)
    _, seamy = _tiled(LOCALMEAN, image, TilePlan(stride=30, margin=0, blend="crop"), stats)
    diff = np.any(seamy != whole, axis=2)
    assert diff[29:31].any() and not diff[5:25, 5:25].any()


def test_statistics_are_one_graph_key():
    image = random_image(300, 300, seed=1)
    stats = _stats(IDENTITY, image)
    out, _ = _tiled(IDENTITY, image, TilePlan(stride=50, margin=8), stats)
    graph_ = dict(out.__dask_graph__())
    holders = [k for k, v in graph_.items() if isinstance(getattr(v, "value", None), NormStats) or isinstance(v, NormStats)]
    assert len(holders) == 1, holders
    assert out.numblocks[:2] == (6, 6)


@pytest.mark.parametrize("rows, cols, threads", [(25, 40, 2), (2, 40, 16), (1, 1, 1), (5, 3, 4), (40, 25, 64)])
def test_strips_cover_every_window_once_with_a_bounded_width(rows, cols, threads):
    blocks = [(i, j) for i in range(rows) for j in range(cols)]
    parts = strips(blocks, rows, threads)
    flat = [b for part in parts for b in part]
    assert sorted(flat) == blocks  # each window once
    k = max(4, -(-8 * threads // rows))
    for part in parts:
        assert len({j for _, j in part}) <= k  # frontier bounded by the strip, not the image width
        assert len(part) >= min(len(blocks), 8 * threads) or part is parts[-1]
