"""The written contract of a style network, and the registry that finds networks by name.

A network is one :class:`Network` value: its :class:`ModelInfo` (name, capabilities,
geometry), its weight catalogue, and its builder.  Built-in networks are listed in
:mod:`urst_dask.models`; a user's network is registered in the current process with
:func:`register`, or - so that every Dask worker finds it without any preload - published as
a Python entry point in the ``urst_dask.networks`` group whose object is a :class:`Network`::

    [project.entry-points."urst_dask.networks"]
    mynet = "my_package.mynet:NETWORK"

Entry points are read the first time a name is not found, in whatever process asks.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib import metadata
from typing import Callable, Iterator, Mapping

from torch import Tensor

from ..errors import ParameterError
from ..io.weights import WeightFile
from .base import ModelInfo, StyleModel

ENTRY_POINT_GROUP = "urst_dask.networks"
StateDicts = dict[str, dict[str, Tensor]]


@dataclass(frozen=True)
class Network:
    """One style network: what it is, which checkpoint files it loads, how it is built.

    ``catalogue`` lists every file the network knows (for ``urst-dask methods`` and
    ``weights fetch``); ``files_for(variant)`` the ones a variant loads (default: the whole
    catalogue); ``build({relpath: state_dict}, variant)`` returns a frozen model on the CPU.
    """

    info: ModelInfo
    summary: str
    build: Callable[[StateDicts, str | None], StyleModel]
    catalogue: tuple[WeightFile, ...] = ()
    files_for: Callable[[str | None], tuple[WeightFile, ...]] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.info, ModelInfo):
            raise ParameterError(f"info={self.info!r}: must be a ModelInfo")
        if not callable(self.build):
            raise ParameterError(f"build={self.build!r}: must be callable")

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def takes_style_image(self) -> bool:
        return self.info.takes_style_image

    @property
    def supports_alpha(self) -> bool:
        return self.info.supports_alpha

    def weights(self, variant: str | None = None) -> tuple[WeightFile, ...]:
        """The checkpoint files ``variant`` loads."""
        return self.files_for(variant) if self.files_for is not None else self.catalogue


class Registry:
    """Networks by name: the built-ins, then those registered, then entry points (read once)."""

    def __init__(self, builtins: tuple[Network, ...]) -> None:
        self._networks = {n.name: n for n in builtins}
        self._builtin = frozenset(self._networks)
        self._plugins_read = False
        self._lock = threading.Lock()

    def register(self, network: Network) -> None:
        if not isinstance(network, Network):
            raise ParameterError(f"network={network!r}: must be a urst_dask.models.Network")
        if network.name in self._builtin:  # it would inherit the built-in's checked backends and bf16 choice
            raise ParameterError(f"network name {network.name!r}: is a built-in network; register yours under "
                                 "another name")
        self._networks[network.name] = network

    def _read_plugins(self) -> None:
        with self._lock:
            if self._plugins_read:
                return
            self._plugins_read = True
            for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
                try:
                    network = ep.load()
                except Exception as exc:  # a broken plugin must not hide the built-in networks
                    raise ParameterError(f"entry point {ep.name!r} ({ep.value}): cannot be loaded: {exc}") from exc
                if not isinstance(network, Network):
                    raise ParameterError(f"entry point {ep.name!r} ({ep.value}): is a {type(network).__name__}, "
                                         "not a urst_dask.models.Network")
                if network.name in self._builtin:
                    raise ParameterError(f"entry point {ep.name!r} ({ep.value}): network name {network.name!r} is a "
                                         "built-in network's; the plugin must use another name")
                self._networks.setdefault(network.name, network)

    def get(self, name: str) -> Network:
        if name not in self._networks:
            self._read_plugins()
        try:
            return self._networks[name]
        except KeyError:
            raise ParameterError(f"method={name!r}: must be one of {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        self._read_plugins()
        return list(self._networks)

    def all(self) -> dict[str, Network]:
        self._read_plugins()
        return dict(self._networks)


class NetworksView(Mapping[str, Network]):
    """A read-only live mapping over a :class:`Registry` (what ``urst_dask.models.METHODS`` is)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def __getitem__(self, name: str) -> Network:
        return self._registry.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry.names())

    def __len__(self) -> int:
        return len(self._registry.names())
