"""How windows are padded before the network: never past the image's border, few shapes per
image (one compiled network each), and a short edge row at its own size."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from urst_dask.tiling.plan import EDGE_SHARE, Blend, TileGrid, window_padding

STD = (1136, 1136)


@pytest.mark.parametrize(("h", "w", "starts", "ends", "want"), [
    (1136, 1136, (False, False), (False, False), (0, 0, 0, 0)),      # an interior window
    (1072, 1136, (True, False), (False, False), (0, 64, 0, 0)),      # the first row: padded below
    (1064, 1136, (False, False), (True, False), (64, 8, 0, 0)),      # a long bottom row: padded above
    (1060, 1136, (False, False), (True, False), (64, 12, 0, 0)),     # (to the multiple below, as eager)
    (224, 1136, (False, False), (True, False), (0, 0, 0, 0)),        # a 160-px bottom row: its own size
    (224, 900, (False, False), (True, True), (0, 0, 224, 12)),       # a corner: short row, long column
    (1000, 900, (True, True), (True, True), (0, 8, 0, 12)),          # the whole image: the multiple only
    (1072, 1072, (True, True), (False, False), (0, 64, 0, 64)),      # the top-left window
])
def test_window_padding_table(h, w, starts, ends, want):
    assert window_padding(h, w, STD, starts=starts, ends=ends, multiple=16) == want


def test_without_border_information_a_window_is_padded_to_the_multiple_only():
    """The default is the safe one: never mirrored pixels past an image's border."""
    assert window_padding(200, 300, STD, multiple=16) == (0, 8, 0, 4)


@settings(max_examples=200, deadline=None)
@given(h=st.integers(1, 9000), w=st.integers(1, 9000), stride=st.sampled_from([200, 512, 1000]),
       margin=st.sampled_from([0, 32, 64]), multiple=st.sampled_from([1, 8, 16]))
def test_an_image_runs_at_most_four_shapes_and_never_pads_past_its_border(h, w, stride, margin, multiple):
    grid = TileGrid(stride=stride, margin=margin, multiple=multiple, blend=Blend.CROP)
    rows, cols = grid.axis_windows(h), grid.axis_windows(w)
    std_h = max(r.hi - r.lo for r in rows)
    std_w = max(c.hi - c.lo for c in cols)
    standard = (std_h + (-std_h) % multiple, std_w + (-std_w) % multiple)
    shapes = set()
    for r in rows:
        for c in cols:
            sh, sw = r.hi - r.lo, c.hi - c.lo
            starts, ends = (r.lo == 0, c.lo == 0), (r.hi == h, c.hi == w)
            top, bottom, left, right = window_padding(sh, sw, standard, starts=starts, ends=ends, multiple=multiple)
            shapes.add((sh + top + bottom, sw + left + right))
            for n, before, after, std, start, end in ((sh, top, bottom, standard[0], starts[0], ends[0]),
                                                      (sw, left, right, standard[1], starts[1], ends[1])):
                own = n + (-n) % multiple  # the window alone, padded to the multiple as whole-image inference does
                assert min(before, after) >= 0 and n + before + after in (own, std)
                if end:  # past the image's border: only the multiple
                    assert after == own - n
                if start:  # nothing above/left of the image's top/left border either
                    assert before == 0
                if n + before + after == own and own < std:  # its own size: only a short edge window
                    assert (start and end) or (end and own < EDGE_SHARE * std)
    assert len(shapes) <= 4
