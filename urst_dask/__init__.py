"""urst-dask: ultra-resolution neural style transfer (URST / Thumbnail Instance Normalization)
as an out-of-core Dask pipeline over chunked Zarr arrays."""

from importlib import import_module
from typing import TYPE_CHECKING

from ._version import __version__
from .errors import UrstError
from .settings import ClusterOptions, ComputeOptions, Intensity, NormMode, StyleOptions

if TYPE_CHECKING:
    from .api import compare, export, stylize, stylize_array
    from .pipeline.config import RunConfig
    from .stats import NormStats, StyleCode
    from .tiling.plan import Blend, TilePlan

# Imported on first use: `import urst_dask` (and the command line up to the start of its cluster,
# see urst_dask.cli.images) stays without torch, which takes seconds to import.
_LAZY = {"stylize": "api", "stylize_array": "api", "export": "api", "compare": "api", "RunConfig": "pipeline.config",
         "NormStats": "stats", "StyleCode": "stats", "Blend": "tiling.plan", "TilePlan": "tiling.plan"}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'urst_dask' has no attribute {name!r}")
    return getattr(import_module(f".{_LAZY[name]}", __name__), name)


__all__ = ["Blend", "ClusterOptions", "ComputeOptions", "Intensity", "NormMode", "NormStats", "RunConfig", "StyleCode",
           "StyleOptions", "TilePlan", "UrstError", "__version__", "compare", "export", "stylize", "stylize_array"]
