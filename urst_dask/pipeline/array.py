"""``stylize_array``: the lazy, dask-image-style call for users who compose their own graphs."""

from __future__ import annotations

import os
from typing import Any

import dask
import dask.array as da
import numpy as np

from ..engine.backends import precheck
from ..engine.models import ModelSpec
from ..errors import ParameterError
from ..io import remote
from ..io.readers import require_unit_range
from ..io.validate import check_min_side
from ..io.weights import files_record, network_digest
from ..settings import NormMode
from ..stats import NormStats
from ..tiling import WindowJob
from . import inputs
from .conditioning import conditioning, model_info, stats_layout
from .config import RunConfig
from .tiles import tile_graph


def stylize_array(array: np.ndarray | da.Array, style: str | os.PathLike[str] | np.ndarray, *,
                  config: RunConfig | None = None, stats: NormStats | str | os.PathLike[str] | None = None,
                  **overrides: Any) -> da.Array:
    """The stylized image of ``array`` as a lazy dask array.

    ``array``: (H, W, C) numpy or dask array, layout HWC (height, width, channels), C = 3 (RGB),
    4 (RGBA: alpha passed through) or 1 (gray: luminance transfer); dtype uint8 or uint16
    (the dtype's full range) or float32 with values in [0, 1] (or any range with
    ``intensity="percentile:LO,HI"``), in host memory.  ``style``: a style image (path, or an
    (H, W, 3) array: uint8/uint16 over the dtype's range or float in [0, 1]) or, for baked-in-style
    methods, a style name/checkpoint.  Settings as :func:`urst_dask.stylize`
    (``config`` and/or flat keywords: ``method``, ``alpha``, ``stride``, ``device``...), but
    for the cluster's and the output store's (``scheduler``, ``workers``, ``memory``,
    ``overwrite``, ``scratch``...): the array is computed where you compute it, so those are
    refused here.

    Returns (H, W, C) in the input's dtype and value range, chunked by ``stride`` (``batch``
    strides wide), equal byte for byte to the array :func:`urst_dask.stylize` stores.  Nothing
    but the network's geometry (loaded in this process) is computed when this is called: the
    thumbnail, the style code and the thumbnail statistics are part of the returned graph, one
    key each, computed once with it (with ``intensity="percentile:LO,HI"`` the thumbnail's
    range is computed at the call, since every window's job carries it).  The network runs on ``device``
    (``"auto"``: CUDA where the worker has it), loaded once per worker process and kept in its
    cache.  ``stats``: statistics to reuse (a NormStats or an output store) instead of the
    thumbnail's.  ``precision="auto"`` runs wct16x in float32 here: its bf16 probe
    (:mod:`urst_dask.engine.probe`) needs the thumbnail pass before the windows are built,
    which :func:`urst_dask.stylize` runs and this lazy graph does not.
    """
    cfg = RunConfig.from_kwargs(config, "stylize_array()", **overrides)
    _refuse_unused(cfg)
    array, style, stats = (remote.attach(v, cfg.flags.storage_options, arg) for v, arg in (
        (array, "content"), (style, "style"), (stats, "stats")))  # URLs carry their options, as in stylize
    entry, wdir, wfiles = inputs.network(cfg, style)
    src = inputs.content_source(array, cfg.flags.axes, cfg.flags.allow_large_images)
    style_img, baked, style_meta = inputs.style_input(style, entry.takes_style_image, cfg.flags.allow_large_images)
    variant = cfg.variant if entry.takes_style_image else baked
    digest = network_digest(files_record(wdir, wfiles))  # in the graph's keys: another checkpoint, other keys
    given = inputs.given_stats(stats, cfg.method, variant, cfg.style.norm, digest,
                               inputs.run_conditions(entry, style_meta, cfg))
    precheck(cfg.compute)
    spec = ModelSpec(method=cfg.method, weights_dir=str(wdir), variant=inputs.worker_variant(entry, variant),
                     device=cfg.compute.device, files_digest=digest)
    if cfg.style.intensity.percentiles is None:
        src = require_unit_range(src)
    with_stats = cfg.style.norm is NormMode.TIN and given is None
    info = model_info(spec).compute()
    if given is not None:
        inputs.check_stats_layout(given, stats_layout(spec).compute(), variant)
    check_min_side(cfg.method, info.size_multiple, shape=src.shape, where="array", thumb_size=cfg.style.thumb_size,
                   style_size=cfg.style.style_size if style_img is not None else None)
    cond = conditioning(src.level_for(cfg.style.thumb_size), style_img, spec, cfg.style, with_stats=with_stats)
    if cfg.style.intensity.percentiles is None:  # lazy: the style code and the statistics are graph keys
        code, thumb_stats, intensity_range = cond[0], (cond[1] if with_stats else None), None
    else:  # the percentile range is part of every window's frozen job: computed now
        code, thumb_stats, intensity_range = dask.compute(cond)[0][:3]
    if cfg.style.norm is NormMode.TIN and given is not None:
        thumb_stats = given
    grid = cfg.tiles.resolve(info.size_multiple, info.seam_margin, info.receptive_field)
    job = WindowJob(cfg.style, cfg.compute, str(src.array.dtype), intensity_range)
    return tile_graph(src.array, spec, code, thumb_stats, grid, job)


UNUSED = ("scheduler", "workers", "threads_per_worker", "processes", "torch_threads", "memory", "connect_timeout",
          "verbose", "overwrite", "scratch", "progress")


def _refuse_unused(cfg: RunConfig) -> None:
    """Refuse settings of a cluster or an output store given to the lazy call, where they
    would be silently ignored."""
    default = RunConfig()
    changed = [f"{name}={getattr(group, name)!r}" for name in UNUSED
               for group, base in ((cfg.cluster, default.cluster), (cfg.flags, default.flags))
               if hasattr(group, name) and getattr(group, name) != getattr(base, name)]
    if changed:
        raise ParameterError(f"stylize_array: {', '.join(changed)} would have no effect: the lazy array is computed "
                             "by whatever computes it (your scheduler or client); these settings are for stylize()")
