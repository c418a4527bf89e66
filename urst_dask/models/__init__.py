"""Style networks: one module per network, each ending in a :class:`Network` value.

:func:`load_model` resolves, verifies and loads a network's checkpoint files and returns a
frozen :class:`~urst_dask.models.base.StyleModel`.  Add a network by publishing a
:class:`Network` in the ``urst_dask.networks`` entry-point group (see :mod:`.registry`).
"""

from __future__ import annotations

from pathlib import Path

from ..io.weights import file_status, load_state_dict
from . import adain, johnson, linearwct, microast, msgnet, passthrough, wct, wct16x
from .base import ModelInfo, StyleModel
from .registry import ENTRY_POINT_GROUP, Network, NetworksView, Registry

REGISTRY = Registry(tuple(m.NETWORK for m in (wct16x, johnson, microast, wct, adain, linearwct, msgnet, passthrough)))
# Every network this process can find, by name: built-in, registered, and entry points.
METHODS = NetworksView(REGISTRY)


def register_method(network: Network) -> None:
    """Add ``network`` in this process (tests, notebooks).  For Dask workers in other processes,
    publish it as an entry point instead: they then find it by name with nothing else to do."""
    REGISTRY.register(network)


def method_entry(name: str) -> Network:
    """The network called ``name``; an unknown name lists the valid ones."""
    return REGISTRY.get(name)


def load_model(name: str, weights_dir: Path, variant: str | None = None) -> StyleModel:
    """Load network ``name`` (and style ``variant`` for baked-in-style networks) on the CPU."""
    network = method_entry(name)
    dicts = {wf.relpath: load_state_dict(weights_dir, wf) for wf in network.weights(variant)}
    return network.build(dicts, variant)


def weights_report(weights_dir: Path) -> dict[str, dict[str, str]]:
    """``{method: {relpath: 'ok'|'missing'|'bad-hash'}}`` for every network found."""
    return {name: {wf.relpath: file_status(weights_dir, wf) for wf in net.catalogue} for name, net in METHODS.items()}


__all__ = ["ENTRY_POINT_GROUP", "Network", "ModelInfo", "StyleModel", "METHODS", "load_model", "method_entry",
           "register_method", "weights_report"]
