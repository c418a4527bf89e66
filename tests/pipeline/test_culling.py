"""The write graph is expanded once and each strip sends only its own tasks, annotations kept."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np

from urst_dask.pipeline.culling import StripGraphs
from urst_dask.pipeline.write import strips


def _written(resources: dict | None = None) -> da.Array:
    """A toy write graph: blocks read with overlap, a 'network' step (annotated), one key per block."""
    image = da.arange(64 * 256, dtype=np.float32).reshape(64, 256).rechunk(16)
    with dask.annotate(resources=resources) if resources else dask.config.set({}):
        net = image.map_overlap(lambda b: b * 2.0, depth=4, boundary="reflect", name="network")
    return net.map_blocks(lambda b: np.full((1, 1), b.sum()), chunks=((1,) * 4, (1,) * 16), dtype=np.float32)


def test_a_strip_sends_only_its_tasks_and_computes_the_same_blocks():
    written = _written()
    graphs = StripGraphs(written)
    plan = strips([(i, j) for i in range(4) for j in range(16)], n_rows=4, threads=1, min_columns=4)
    assert len(plan) == 4
    whole = len(dict(written.__dask_graph__()))
    for strip in plan:
        items = graphs.strip(strip)
        sent = len(dict(items[0].__dask_graph__()))
        assert sent < whole / 2, (sent, whole)  # its columns and their overlap neighbours, not the image
        got = dask.compute(*items, scheduler="sync")
        want = [written.blocks[i, j].compute(scheduler="sync") for i, j in strip]
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def test_every_layers_annotations_stay_with_its_tasks():
    """A GPU cluster routes the network tasks by their layers' ``resources``: each layer of a
    strip's graph carries its original layer's annotations, and only those."""
    written = _written(resources={"GPU": 1})
    original = written.__dask_graph__().layers
    layers = StripGraphs(written).strip([(0, 0), (1, 0)])[0].__dask_graph__().layers
    assert set(layers) <= set(original)
    assert {name: layer.annotations for name, layer in layers.items()} == \
        {name: original[name].annotations for name in layers}
    assert layers["network"].annotations == {"resources": {"GPU": 1}}
    assert any(not layer.annotations for layer in layers.values())  # the reads and the writes are not pinned
