"""An array input is identified by its dask name and three sampled blocks, computed here only
when they are cheap: a block that needs the whole image is not computed in the calling process."""

from __future__ import annotations

import dask.array as da
import numpy as np

from urst_dask.pipeline.provenance import sample_digest


def test_cheap_blocks_are_sampled_and_see_the_content():
    a = np.zeros((64, 96, 3), dtype=np.uint8)
    b = a.copy()
    b[-1, -1, 0] = 1  # in the last block
    one, other = (sample_digest(da.from_array(x, chunks=(32, 32, 3))) for x in (a, b))
    assert one is not None and other is not None and one != other
    assert sample_digest(da.from_array(a, chunks=(32, 32, 3))) == one


def test_blocks_that_need_the_whole_image_are_not_computed_here():
    """``d / d.max()``: a 71 MB lazy scan was computed in the calling process, one thread, before
    its run started on the cluster.  Here no block of it is read (an image under 64 MB is sampled
    all the same: a share of it is read quickly)."""
    reads = []

    def read(block: np.ndarray) -> np.ndarray:
        reads.append(block.shape)
        return block

    d = da.ones((3000, 3000, 3), dtype=np.float32, chunks=(250, 250, 3)).map_blocks(  # 108 MB
        read, meta=np.empty((0, 0, 0), dtype=np.float32))
    assert sample_digest(d / d.max()) is None
    assert reads == []
    assert sample_digest(d) is not None and len(reads) == 3  # the control: a reader's blocks are sampled


def test_a_rechunk_of_small_chunks_is_still_sampled():
    """Many tasks, but few of the graph's: the blocks are sampled, so a rewrite of the source is
    seen (with a plain task count it was not, and a rerun accepted the rewritten input)."""
    small = da.from_array(np.zeros((1024, 1024, 3), dtype=np.uint8), chunks=(32, 32, 3))
    other = np.zeros((1024, 1024, 3), dtype=np.uint8)
    other[0, 0, 0] = 7
    one = sample_digest(small.rechunk((512, 512, 3)))
    two = sample_digest(da.from_array(other, chunks=(32, 32, 3)).rechunk((512, 512, 3)))
    assert one is not None and two is not None and one != two


def test_the_styles_pixels_digest_leaves_the_fingerprint_as_it_was():
    """The style's pixels_sha256, recorded since the same picture as a file or an array shares
    statistics, is left out of the fingerprint (its sha256 decides it): the fingerprints of
    stores written before stay the same, and a rerun resumes them.  Its paths are left out too;
    its sha256 is not."""
    from urst_dask.pipeline.provenance import fingerprint

    before = {"method": "wct", "style": {"path": "a.png", "sha256": "f" * 64}, "content": {"path": "c.png", "x": 1}}
    now = {**before, "style": {**before["style"], "pixels_sha256": "0" * 64}}
    typed = {**before, "style": {**before["style"], "path": "/abs/a.png"}, "content": {"path": "/abs/c.png", "x": 1}}
    assert fingerprint(now) == fingerprint(before) == fingerprint(typed)
    assert fingerprint({**before, "style": {"path": "a.png", "sha256": "e" * 64}}) != fingerprint(before)
