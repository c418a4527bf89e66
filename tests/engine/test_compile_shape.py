"""The shapes a compiled backend runs windows at: few per image, and never much padding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from urst_dask.engine import compile_shape
from urst_dask.engine.run import EDGE_BUCKET, EDGE_SHARE
from urst_dask.tiling.plan import Blend, TileGrid


@pytest.mark.parametrize(("h", "w", "standard", "multiple", "want"), [
    (1072, 1072, (1072, 1072), 16, (1072, 1072)),  # an interior window
    (1040, 1072, (1072, 1072), 16, (1072, 1072)),  # the first row (no top margin): padded
    (900, 1000, (1072, 1072), 16, (1072, 1072)),   # 84 % and 93 % of the standard: padded
    (192, 1072, (1072, 1072), 16, (192, 1072)),    # a 160-px bottom row: its own shape
    (192, 880, (1072, 1072), 16, (192, 1072)),     # a corner: 880 is 82 % of 1072, padded
    (200, 300, (1072, 1072), 16, (256, 320)),      # rounded up to 64 px
    (200, 300, (1072, 1072), 48, (384, 384)),      # ... and to the network's multiple
    (21, 37, (40, 56), 8, (40, 56)),               # small windows: never above the standard
])
def test_compile_shape_table(h, w, standard, multiple, want):
    assert compile_shape(h, w, standard, multiple) == want


@settings(max_examples=200, deadline=None)
@given(h=st.integers(1, 9000), w=st.integers(1, 9000), stride=st.sampled_from([200, 512, 1000]),
       margin=st.sampled_from([0, 32, 64]), multiple=st.sampled_from([1, 8, 16]))
def test_an_image_compiles_at_most_four_shapes_and_pads_little(h, w, stride, margin, multiple):
    grid = TileGrid(stride=stride, margin=margin, multiple=multiple, blend=Blend.CROP)
    rows, cols = grid.axis_windows(h), grid.axis_windows(w)
    sizes = [(r.hi - r.lo, c.hi - c.lo) for r in rows for c in cols]
    std_h = max(s[0] for s in sizes)
    std_w = max(s[1] for s in sizes)
    standard = (std_h + (-std_h) % multiple, std_w + (-std_w) % multiple)
    shapes = {compile_shape(sh, sw, standard, multiple) for sh, sw in sizes}
    assert len(shapes) <= 4
    for (sh, sw) in sizes:
        ch, cw = compile_shape(sh, sw, standard, multiple)
        assert sh <= ch <= standard[0] and sw <= cw <= standard[1]
        assert ch % multiple == 0 or ch == standard[0]
        # each side is either the standard's or short, with at most a bucket of padding
        bucket = EDGE_BUCKET * multiple
        for n, c, s in ((sh, ch, standard[0]), (sw, cw, standard[1])):
            assert c == s or (n < EDGE_SHARE * s and c - n < bucket)
