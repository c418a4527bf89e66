"""urst-dask: ultra-resolution neural style transfer (URST / Thumbnail Instance Normalization)
as an out-of-core Dask pipeline over chunked Zarr arrays."""

from ._version import __version__
from .errors import UrstError  # noqa: E402
from .settings import ComputeOptions, NormMode, StyleOptions  # noqa: E402
from .stats import NormStats, StyleCode  # noqa: E402
from .tiling import Blend, TilePlan  # noqa: E402


def __getattr__(name: str):  # lazy: keep `import urst_dask` light for workers
    if name in ("stylize", "export", "compare"):
        from . import api

        return getattr(api, name)
    if name == "ClusterOptions":
        from .cluster import ClusterOptions

        return ClusterOptions
    raise AttributeError(name)


__all__ = ["Blend", "ClusterOptions", "ComputeOptions", "NormMode", "NormStats", "StyleCode", "StyleOptions", "TilePlan",
           "UrstError", "__version__", "compare", "export", "stylize"]
