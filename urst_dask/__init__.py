"""urst-dask: ultra-resolution neural style transfer (URST / Thumbnail Instance Normalization)
as an out-of-core Dask pipeline over chunked Zarr arrays."""

from ._version import __version__
from .errors import UrstError  # noqa: E402
from .settings import ClusterOptions, ComputeOptions, Intensity, NormMode, StyleOptions  # noqa: E402
from .stats import NormStats, StyleCode  # noqa: E402
from .tiling import Blend, TilePlan  # noqa: E402


def __getattr__(name: str):  # lazy: keep `import urst_dask` light for workers
    if name in ("stylize", "stylize_array", "export", "compare"):
        from . import api

        return getattr(api, name)
    if name == "RunConfig":
        from .pipeline.config import RunConfig

        return RunConfig
    raise AttributeError(name)


__all__ = ["Blend", "ClusterOptions", "ComputeOptions", "Intensity", "NormMode", "NormStats", "RunConfig", "StyleCode",
           "StyleOptions", "TilePlan", "UrstError", "__version__", "compare", "export", "stylize", "stylize_array"]
