"""The shapes the network runs an image's windows at: few per image (one compiled network
each), and the window's own size at the image's border."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from urst_dask.tiling.plan import Blend, TileGrid, run_shape


@pytest.mark.parametrize(("h", "w", "standard", "at_border", "multiple", "want"), [
    (1072, 1072, (1072, 1072), (False, False), 16, (1072, 1072)),  # an interior window
    (1040, 1072, (1072, 1072), (False, False), 16, (1072, 1072)),  # the first row (no top margin): padded
    (192, 1072, (1072, 1072), (True, False), 16, (192, 1072)),     # a 160-px bottom row: its own height
    (192, 880, (1072, 1072), (True, True), 16, (192, 880)),        # the corner: its own size
    (1000, 900, (1072, 1072), (True, True), 16, (1008, 912)),      # ... padded to the multiple only
    (1040, 1072, (1040, 1072), (True, True), 16, (1040, 1072)),    # one window: the whole image
    (21, 37, (40, 56), (False, False), 8, (40, 56)),               # small interior windows: the standard
    (21, 37, (40, 56), (True, True), 1, (21, 37)),
])
def test_run_shape_table(h, w, standard, at_border, multiple, want):
    assert run_shape(h, w, standard, at_border=at_border, multiple=multiple) == want


def test_without_border_information_a_window_keeps_its_own_size():
    """The default is the safe one: never mirrored pixels past an image edge."""
    assert run_shape(200, 300, (1072, 1072), multiple=16) == (208, 304)


@settings(max_examples=200, deadline=None)
@given(h=st.integers(1, 9000), w=st.integers(1, 9000), stride=st.sampled_from([200, 512, 1000]),
       margin=st.sampled_from([0, 32, 64]), multiple=st.sampled_from([1, 8, 16]))
def test_an_image_compiles_at_most_four_shapes_and_its_border_runs_at_eagers_size(h, w, stride, margin, multiple):
    grid = TileGrid(stride=stride, margin=margin, multiple=multiple, blend=Blend.CROP)
    rows, cols = grid.axis_windows(h), grid.axis_windows(w)
    std_h = max(r.hi - r.lo for r in rows)
    std_w = max(c.hi - c.lo for c in cols)
    standard = (std_h + (-std_h) % multiple, std_w + (-std_w) % multiple)
    shapes = set()
    for r in rows:
        for c in cols:
            sh, sw = r.hi - r.lo, c.hi - c.lo
            border = (r.hi == h, c.hi == w)
            ch, cw = run_shape(sh, sw, standard, at_border=border, multiple=multiple)
            shapes.add((ch, cw))
            for n, got, std, at in ((sh, ch, standard[0], border[0]), (sw, cw, standard[1], border[1])):
                own = n + (-n) % multiple  # the window itself, padded to the multiple
                assert got == (own if at else std)
                assert n <= got <= std
    assert len(shapes) <= 4
