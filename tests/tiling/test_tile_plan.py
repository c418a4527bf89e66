"""Tile geometry: validation, chunks, grid-aligned windows, blend weights."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from urst_dask.errors import ParameterError, ParameterTypeError
from urst_dask.tiling import AxisWindow, Blend, TilePlan, auto_margin, axis_weights


@pytest.mark.parametrize(
    "kwargs, exc, fragment",
    [
        ({"stride": 8}, ParameterError, "stride=8"),
        ({"stride": 15}, ParameterError, "stride=15"),
        ({"stride": 100, "margin": 50}, ParameterError, "margin=50"),
        ({"stride": 100, "margin": 70}, ParameterError, "stride/2 = 50"),
        ({"margin": -1}, ParameterError, "margin=-1"),
        ({"margin": "wide"}, ParameterError, "margin='wide': must be a number of pixels or 'auto'"),
        ({"stride": 10.5}, ParameterTypeError, "stride=10.5"),
        ({"stride": "1000"}, ParameterTypeError, "stride='1000'"),
        ({"blend": "feather"}, ParameterError, "blend='feather': must be one of crop, linear, gaussian"),
        ({"align": "yes"}, ParameterTypeError, "align='yes'"),
    ],
)
def test_tileplan_rejects(kwargs, exc, fragment):
    with pytest.raises(exc, match=fragment.replace("(", r"\(").replace(".", r"\.")):
        TilePlan(**kwargs)


def test_stride_too_small_for_the_network_names_the_need():
    with pytest.raises(ParameterError, match=r"stride=16: too small for margin=7 .* size multiple is 16; needs stride >= 22"):
        TilePlan(stride=16, margin=7).resolve(16)


def test_paper_geometry():
    plan = TilePlan.paper()
    assert (plan.stride, plan.margin, plan.blend, plan.align) == (1000, 32, Blend.CROP, True)
    grid = plan.resolve(16)
    assert grid.window == 1064
    wins = grid.axis_windows(4000)
    assert [w.hi - w.lo for w in wins[1:-1]] == [1072, 1072]  # 1064 rounded out to the 16-px grid
    assert [w.start for w in wins] == [0, 1000, 2000, 3000]


def test_default_is_the_seam_free_setting():
    plan = TilePlan()
    assert (plan.stride, plan.margin, plan.blend, plan.align) == (1000, "auto", Blend.CROP, True)
    assert plan.resolve(16, seam_margin=64).margin == 64  # wct16x's measured margin


def test_margin_auto_uses_the_measured_table_then_the_receptive_field():
    assert TilePlan(margin="AUTO").margin == "auto"
    assert TilePlan(margin="auto").resolve(16, seam_margin=96).margin == 96
    assert auto_margin(None, 513, 16) == 128  # a quarter of the receptive field, capped
    assert auto_margin(None, 69, 8) == 32  # at least 32
    assert auto_margin(None, 200, 16) == 64  # rounded up to the size multiple
    assert TilePlan(stride=100, margin="auto").resolve(4, seam_margin=96).margin == 49  # stays < stride/2


@pytest.mark.parametrize(
    "length, expected",
    [
        (1, (1,)),
        (1000, (1000,)),
        (1001, (1001,)),  # a 1-px tail is narrower than the reach: merged
        (1046, (1046,)),
        (1047, (1000, 47)),  # reach = margin 32 + size multiple 16 - 1
        (2500, (1000, 1000, 500)),
        (2010, (1000, 1010)),
    ],
)
def test_axis_chunks(length, expected):
    grid = TilePlan.paper().resolve(16)
    assert grid.axis_chunks(length) == expected


@settings(max_examples=300, deadline=None)
@given(length=st.integers(1, 5000), stride=st.integers(16, 1200), margin_frac=st.floats(0, 0.49),
       multiple=st.sampled_from([1, 2, 4, 8, 16, 32]), blend=st.sampled_from(list(Blend)))
def test_every_window_origin_is_on_the_grid(length, stride, margin_frac, multiple, blend):
    margin = int(margin_frac * stride)
    try:
        grid = TilePlan(stride=stride, margin=margin, blend=blend).resolve(multiple)
    except ParameterError:
        assert stride < margin + multiple - 1  # refused only when the network's grid cannot fit
        return
    wins = grid.axis_windows(length)
    assert sum(w.stop - w.start for w in wins) == length
    assert [w.start for w in wins[1:]] == [w.stop for w in wins[:-1]]
    depth = grid.axis_depth(length)
    for w in wins:
        assert w.lo % multiple == 0  # the origin, in global coordinates, is on the size-multiple grid
        assert w.hi % multiple == 0 or w.hi == length  # the end too, or the image border (padded like whole)
        assert w.lo <= max(0, w.start - margin) and w.hi >= min(length, w.stop + margin)  # full context
        assert w.lo <= w.keep_lo <= w.start <= w.stop <= w.keep_hi <= w.hi  # the support lies in the window
        if len(wins) > 1:
            assert max(w.start - w.lo, w.hi - w.stop) <= depth <= min(x.stop - x.start for x in wins)


def test_unaligned_windows_are_off_the_grid():
    """The control for the test above: without alignment windows start at k*stride - margin."""
    wins = TilePlan(margin=32, align=False).resolve(16).axis_windows(4000)
    assert [w.lo for w in wins] == [0, 968, 1968, 2968]
    assert any(w.lo % 16 for w in wins)


@pytest.mark.parametrize("blend", [Blend.LINEAR, Blend.GAUSSIAN])
def test_blend_weights_are_positive_on_the_support_and_linear_sums_to_one(blend):
    grid = TilePlan(margin=32, blend=blend).resolve(16)
    a, b = grid.axis_windows(3000)[:2]
    wa, wb = axis_weights(a, blend), axis_weights(b, blend)
    assert (wa > 0).all() and (wb > 0).all()
    band = np.arange(b.keep_lo, a.keep_hi)  # the 64-px overlap band around x = 1000
    assert len(band) == 64
    pair = wa[band - a.keep_lo] + wb[band - b.keep_lo]
    if blend is Blend.LINEAR:
        np.testing.assert_allclose(pair, 1.0, atol=1e-6)
        assert wa[0] == 1.0 and wa[-1] < 0.01  # one at the image border side, fading into the neighbour
    assert wa[band - a.keep_lo][0] > wa[band - a.keep_lo][-1]  # the outgoing window fades


def test_crop_weights_are_one_on_the_chunk_only():
    w = AxisWindow(start=1000, stop=2000, lo=960, hi=2048, keep_lo=968, keep_hi=2032)
    crop = axis_weights(w, Blend.CROP)
    assert crop.sum() == 1000 and crop[32] == 1 and crop[31] == 0 and crop[-33] == 1 and crop[-32] == 0
