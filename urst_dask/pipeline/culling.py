"""The tile stage's write graph, materialized once and culled strip by strip on the client.

Submitting each strip as blocks of the whole lazy graph made the scheduler expand and cull
the whole ``map_overlap`` layer again for every strip: O(N) per strip, so O(N^1.5) for a run
of N windows, with the workers idle meanwhile (10^4 windows: 0.9 s per strip, 22.8 s in all;
4x10^4: 3.0 s and 151 s; benchmarks/results/strip-graphs.json).  Here the graph is expanded once, and each strip
sends only its own tasks (culled from that strip's block keys), layer by layer so that the
layers' annotations (the network tasks' ``resources``) stay with their tasks.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer
from dask.optimization import cull


class StripGraphs:
    """The graph of ``written`` (one key per output block, ``(written.name, i, j)``) expanded
    once; :meth:`strip` gives the collections that compute some of its blocks."""

    def __init__(self, written: da.Array) -> None:
        self.name = written.name
        graph = written.__dask_graph__()
        # expanded as built, layer by layer: no fusion moves a network task's resources onto its
        # neighbours (annotated graphs were sent so before, Client.compute(optimize_graph=False)).
        # dask's array optimizations once over the whole graph fused 7 % of the keys away but cost
        # 6x the expansion (benchmarks/results/strip-graphs.json: 16.9 s against 2.7 s at 10^4 windows)
        self._annotations = {name: layer.annotations for name, layer in graph.layers.items()}
        self._deps = {name: set(deps) for name, deps in graph.dependencies.items()}
        self._tasks: dict[Any, Any] = {}
        self._layer_of: dict[Any, str] = {}
        for layer_name, layer in graph.layers.items():
            for key, task in layer.items():
                self._tasks[key] = task
                self._layer_of[key] = layer_name

    def strip(self, blocks: list[tuple[int, int]]) -> list[Delayed]:
        """One collection per block ``(i, j)``, sharing one graph of just the tasks they need."""
        keys = [(self.name, i, j) for i, j in blocks]
        needed, _ = cull(self._tasks, keys)
        by_layer: dict[str, dict[Any, Any]] = {}
        for key, task in needed.items():
            by_layer.setdefault(self._layer_of[key], {})[key] = task
        layers = {name: MaterializedLayer(tasks, annotations=self._annotations[name])
                  for name, tasks in by_layer.items()}
        deps = {name: {d for d in self._deps.get(name, ()) if d in layers} for name in layers}
        graph = HighLevelGraph(layers, deps)
        return [Delayed(key, graph, layer=self.name) for key in keys]
