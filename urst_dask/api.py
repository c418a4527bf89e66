"""The Python API: ``stylize``, ``stylize_array``, ``export`` and ``compare``.

``stylize`` runs the named stages of :mod:`urst_dask.pipeline` on a Dask cluster (an embedded
local one unless a client or scheduler is given): open the inputs, the resume check,
conditioning (thumbnail, style code, statistics, once), the tile stage writing the output
Zarr chunk by chunk, the NGFF pyramid, and the completion marker, written last.
``stylize_array`` is the lazy form: a dask array in, a dask array out.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

from .engine import timing
from .engine.backends import precheck
from .engine.models import ModelSpec
from .errors import require_path
from .io import remote, store
from .io import scratch as scratch_io
from .io.lock import output_lock
from .io.readers import require_unit_range
from .io.targets import EXPORT_SUFFIXES, check_export_target, check_not_input, check_not_picture
from .io.validate import check_min_side
from .io.weights import files_record, network_digest
from .logs import LOGGER
from .pipeline import inputs, provenance, resume
from .pipeline.array import stylize_array
from .pipeline.cluster import check_client, connect, gpu_resources
from .pipeline.conditioning import (
    conditioning,
    local_thumbnail,
    model_info,
    preload_network,
    run_conditioning,
    stats_layout,
)
from .pipeline.config import RunConfig
from .pipeline.earlystart import start_early
from .pipeline.export import export
from .pipeline.progress import WindowBar, run
from .pipeline.pyramid import write_pyramid
from .pipeline.quality import compare
from .pipeline.tiles import block_windows, tile_graph
from .pipeline.write import BLEND_MIN_COLUMNS, window_counts, write_tiles
from .settings import NormMode
from .stats import NormStats
from .tiling import WindowJob

__all__ = ["EXPORT_SUFFIXES", "RunConfig", "check_export_target", "compare", "export", "stylize", "stylize_array"]


def _decodes(content: Any) -> bool:
    """Whether opening ``content`` reads a file (a path that exists here, or a URL), rather than
    wrapping an array: only then is there work to start the cluster beside."""
    if isinstance(content, (str, os.PathLike)):
        return remote.is_url(str(content)) or Path(content).exists()
    return False


def stylize(
    content: str | os.PathLike[str] | np.ndarray | da.Array,
    style: str | os.PathLike[str] | np.ndarray,
    out: str | os.PathLike[str],
    *,
    config: RunConfig | None = None,
    client: Any = None,
    stats: NormStats | str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> Path | str:
    """Stylize ``content`` with ``style`` into the Zarr store ``out``; return its path (a
    :class:`~urst_dask.io.remote.RemotePath`, a ``str``, for a URL).

    ``content``: an image path (PNG/JPEG, TIFF/BigTIFF/OME-TIFF, Zarr/OME-Zarr) or a
    numpy/dask array in host memory, layout (H, W, C) (also read: (C, H, W) with C <= 4 < W,
    and (H, W) as gray; ``axes`` says it where the shape cannot); RGB, RGBA
    (alpha passed through) or gray (luminance transfer); uint8/uint16/float32 (mapped from the
    dtype's range, float in [0, 1]); never loaded whole.  ``style``: a style image (path, or an
    (H, W, 3) array: uint8/uint16 over the dtype's range or float in [0, 1]) or, for
    baked-in-style methods, a style name/checkpoint.

    Settings: ``config``, a :class:`~urst_dask.pipeline.config.RunConfig`, and/or flat keyword
    ``overrides`` routed into it by :meth:`RunConfig.from_kwargs`: ``method``, ``variant``
    (``wct``: top level "1".."5"), ``weights``; ``alpha``, ``style_size``, ``thumb_size``,
    ``norm`` ("tin" | "in"), ``preserve_color``, ``intensity`` ("dtype", or
    "percentile:LO,HI": the thumbnail's percentiles are mapped onto the network's [0, 1] and
    back, recorded in the attributes) (:class:`StyleOptions`); ``stride``, ``margin`` (pixels
    or ``"auto"``), ``blend`` ("crop" | "linear" | "gaussian"), ``align`` (:class:`TilePlan`;
    ``tiles=TilePlan.paper()`` is the paper's exact geometry); ``device``, ``precision``
    ("auto": bf16 where the hardware has it and the network keeps its picture in it; for
    wct16x, when a bf16 probe of the thumbnail clears 39 dB against float32; what auto settled
    on is recorded in the attributes as ``precision_auto``), ``backend`` ("auto" | "eager" | "inductor" |
    "openvino"), ``whole``, ``batch`` (windows per network call) (:class:`ComputeOptions`);
    ``scheduler``, ``workers``, ``threads_per_worker``, ``processes``, ``memory``,
    ``connect_timeout`` (:class:`ClusterOptions`); ``axes`` (the source axes when they cannot
    be detected: ``"CYX"``, ``"TCZYX"`` with singleton T/Z...), ``allow_large_images``
    (Pillow's decompression-bomb limit lifted for PNG/JPEG), ``scratch`` (where decoded copies
    of PNG/JPEG inputs go: default ``$URST_DASK_SCRATCH``, else ``<out>.scratch``; removed when
    the run ends, and by the next run if this one is killed), ``storage_options``,
    ``overwrite``, ``progress`` (:class:`~urst_dask.pipeline.config.RunFlags`).  ``stats``
    reuses statistics (a NormStats or a previous output store) instead of a thumbnail pass.

    The output is a Zarr v3 group: array ``"0"`` (C, H, W) in NGFF order (C = 3, 1 for gray,
    4 for RGBA) in the input dtype, chunks ``stride``; ``urst/stats`` the statistics;
    attributes ``urst_dask`` the provenance, with ``status: complete`` written last.  Rerunning the same call after an interruption
    computes only the missing chunks (same fingerprint: input, style, weights, parameters);
    a store from a different run is refused unless ``overwrite``.

    ``content``, ``style``, ``out`` and ``stats`` may be Zarr stores at URLs (``s3://``,
    ``gs://``, ``memory://``; ``https://`` read-only) with fsspec ``storage_options`` (one dict,
    or one per scheme); see :mod:`urst_dask.io.remote`.
    """
    cfg = RunConfig.from_kwargs(config, "stylize()", **overrides)
    flags = cfg.flags
    require_path("out", out)
    check_client(client, cfg.cluster)
    content, style, out, stats = (remote.attach(v, flags.storage_options, arg) for v, arg in (
        (content, "content"), (style, "style"), (out, "output"), (stats, "stats")))  # URLs carry their options
    timing.start()  # the per-stage summary that verbose runs print at the end
    # ---- open the inputs: network and weights, content, style, given statistics
    entry, wdir, wfiles = inputs.network(cfg, style)
    weights = files_record(wdir, wfiles)  # their sha256, computed while verifying them
    digest = network_digest(weights)  # marks the graph's keys and the statistics this run accepts
    check_not_picture(out, "a Zarr store (a folder): name it .zarr, and ask for the picture with --export "
                           "(urst_dask.export)")
    store.check_output_link(out)  # a dangling -o link would place the scratch folder and store at its target
    run_scratch = scratch_io.start(out, flags.scratch)  # decoded PNG/JPEG inputs; stale ones of dead runs removed
    # --backend openvino without the package, float16 on this CPU's workers: one line, before any work
    precheck(cfg.compute, local=client is None and not cfg.cluster.scheduler)
    # worker processes start on a helper thread while this one decodes the input (a new output only:
    # a complete one needs no cluster), unless the command line started them already; closed on any
    # way out unless connect took them
    early = start_early(cfg.cluster, client, new=_decodes(content) and resume.is_new(out, flags.overwrite))
    if early is not None and entry.takes_style_image:  # the network loads on the workers while this decodes
        early.preload(preload_network, ModelSpec(cfg.method, str(wdir), cfg.variant, cfg.compute.device, digest))
    with early or contextlib.nullcontext():
        with timing.stage("decode input"):
            src = inputs.content_source(content, flags.axes, flags.allow_large_images, run_scratch)
        check_not_input(out, src.path)  # before anything is written: --overwrite would delete the input
        style_img, baked, style_meta = inputs.style_input(style, entry.takes_style_image, flags.allow_large_images,
                                                          run_scratch)
        variant = cfg.variant if entry.takes_style_image else baked
        stats = inputs.given_stats(stats, cfg.method, variant, cfg.style.norm, digest,
                                   inputs.run_conditions(entry, style_meta, cfg))
        spec = ModelSpec(method=cfg.method, weights_dir=str(wdir), variant=inputs.worker_variant(entry, variant),
                         device=cfg.compute.device, files_digest=digest)
        meta = provenance.provenance(src, style_meta, cfg, variant, weights, stats)
        if cfg.style.intensity.percentiles is None:  # the dtype mapping: float pixels outside [0, 1] are refused
            src = require_unit_range(src)
        # one run per output; the completion marker is written only while held; the scratch folder goes at the end
        with scratch_io.removed(run_scratch), output_lock(out):
            # ---- resume check
            state = resume.prepare(out, meta["fingerprint"], flags.overwrite)
            out_path = store.output_path(out)  # a URL keeps its '//' (and storage options)
            if state == "complete":
                if flags.progress:
                    LOGGER.info(f"{out_path} is already complete (same fingerprint): nothing to do")
                return out_path
            with_stats = cfg.style.norm is NormMode.TIN and stats is None
            # a small image's thumbnail is reduced here while the workers finish starting
            thumb = None
            if state == "new" and (with_stats or cfg.style.intensity.percentiles):
                thumb = local_thumbnail(src.level_for(cfg.style.thumb_size), cfg.style.thumb_size)
            with connect(cfg.cluster, client, early) as c:
                remote.check_in_process(c, output=out_path, content=src.path)  # memory:// needs in-process workers
                resources = gpu_resources(c)
                info = run(c, model_info(spec, resources), progress=False, label="network")
                if stats is not None and state == "new":  # given statistics must fit the network, before any work
                    inputs.check_stats_layout(stats, run(c, stats_layout(spec, resources), progress=False,
                                                         label="network"), variant)
                check_min_side(cfg.method, info.size_multiple, shape=src.shape, where=f"content={src.path!r}",
                               thumb_size=cfg.style.thumb_size,
                               style_size=cfg.style.style_size if style_img is not None else None)
                grid = cfg.tiles.resolve(info.size_multiple, info.seam_margin, info.receptive_field)
                # ---- conditioning: thumbnail, style code, statistics (or the interrupted run's, byte for byte)
                if state == "resume":
                    style_code, thumb_stats, intensity_range, choice = resume.stored_conditioning(out_path, cfg.style)
                else:
                    def build(thumb_future: Any) -> Any:
                        return conditioning(src.level_for(cfg.style.thumb_size), style_img, spec, cfg.style,
                                            with_stats=with_stats, resources=resources, probe=cfg.compute,
                                            thumb=thumb_future)

                    style_code, thumb_stats, intensity_range, choice = run_conditioning(
                        c, build, thumb, progress=flags.progress, label="thumbnail stage: style code and statistics")
                    if cfg.style.norm is NormMode.TIN and stats is not None:
                        thumb_stats = stats
                    store.create_output(out_path, src.shape, cfg.tiles.stride, str(src.array.dtype),
                                        provenance.store_attrs(meta, cfg, src, grid, thumb_stats, intensity_range, choice),
                                        thumb_stats, style_code, overwrite=flags.overwrite)
                compute = cfg.compute
                if choice is not None:  # auto, resolved by the bf16 probe of the thumbnail (or the stored one's)
                    compute = dataclasses.replace(compute, precision=choice.precision)
                    if flags.progress:
                        LOGGER.info(choice.describe())
                # ---- tile stage and write: the missing blocks, strip by strip, on one progress bar
                job = WindowJob(cfg.style, compute, str(src.array.dtype), intensity_range)
                stylized = tile_graph(src.array, spec, style_code, thumb_stats, grid, job, resources=resources)
                present = resume.present_windows(out_path, state)
                windows = block_windows(src.shape, grid, cfg.compute.whole, cfg.compute.batch)
                total, done = window_counts(stylized, cfg.tiles.stride, present, windows)
                if flags.progress and done < total:
                    LOGGER.info(f"tile stage: {total - done} of {total} windows")
                bar = WindowBar(total, done, enabled=flags.progress)
                bar.draw()
                min_columns = BLEND_MIN_COLUMNS if grid.blends and not cfg.compute.whole else 4
                try:
                    write_tiles(c, stylized, str(out_path), present, stride=cfg.tiles.stride, windows=windows,
                                min_columns=min_columns, bar=bar)
                    timing.gather_compile_times(c)
                    # ---- pyramid, on the same cluster and progress line
                    try:
                        levels = write_pyramid(out_path, client=c, bar=bar, pixel_size=src.pixel_size,
                                               channel_names=src.channel_names, channels=src.channels)
                    except OSError as exc:  # disk full...: one line naming the store, which stays 'running'
                        raise store.write_failed(out_path, exc, "the pyramid levels") from exc
                finally:
                    bar.close()
            # ---- provenance: the completion marker, written last, only over every chunk
            with timing.stage("completion marker"):
                resume.require_every_chunk(out_path)
                store.mark_complete(out_path, {"finished": provenance.now(), "pyramid_levels": list(levels)})
            if cfg.cluster.verbose:
                timing.report()
            return out_path
