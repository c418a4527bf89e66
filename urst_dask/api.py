"""The Python API: ``stylize`` and ``export``.

``stylize`` runs the two stages on a Dask cluster (an embedded local one unless a client or
scheduler is given): the thumbnail stage computes the style code and the thumbnail
statistics once; the tile stage stylizes every window with them and writes the output
Zarr chunk by chunk; the store is marked complete last.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import errno
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np

from . import __version__, graph
from .cluster import ClusterOptions, connect, gpu_resources, run
from .engine import timing
from .engine.backends import precheck
from .engine.models import ModelSpec
from .errors import OutputError, ParameterError, ParameterTypeError, UrstError, WeightsError
from .io import images, remote, store
from .io import scratch as scratch_io
from .io.lock import output_lock
from .io.readers import input_identity, require_unit_range
from .io.validate import check_min_side
from .io.weights import resolve_weights_dir, verify_file
from .logs import LOGGER
from .models import method_entry
from .preprocess import dtype_scale
from .settings import ComputeOptions, NormMode, StyleOptions, parse_intensity
from .stats import NormStats
from .tiling import TilePlan, WindowJob

_GROUPS = (StyleOptions, TilePlan, ComputeOptions, ClusterOptions)


def _settings(given: dict[str, Any], objs: dict[type, Any]) -> tuple[StyleOptions, TilePlan, ComputeOptions, ClusterOptions]:
    """Route keyword settings (``alpha=``, ``stride=``...) into the frozen settings objects."""
    fields = {f.name: cls for cls in _GROUPS for f in dataclasses.fields(cls)}
    routed: dict[type, dict[str, Any]] = {cls: {} for cls in _GROUPS}
    for key, value in given.items():
        if key not in fields:
            raise ParameterTypeError(f"stylize() got an unknown setting {key!r}; valid: {', '.join(sorted(fields))}")
        routed[fields[key]][key] = value
    out = []
    for cls in _GROUPS:
        base = objs.get(cls)
        if base is not None and not isinstance(base, cls):
            raise ParameterTypeError(f"expected {cls.__name__}, got {type(base).__name__}")
        out.append(dataclasses.replace(base, **routed[cls]) if base is not None else cls(**routed[cls]))
    return tuple(out)  # type: ignore[return-value]


def _as_source(content: Any, axes: str | None, allow_large: bool, scratch_dir: Path | None = None) -> images.ImageSource:
    if isinstance(content, images.ImageSource):
        return content
    if isinstance(content, (da.Array, np.ndarray)):
        return images.as_source(content, "<array>", "content", axes=axes)
    if isinstance(content, (str, os.PathLike)):
        return images.open_image(content, "content", axes=axes, allow_large=allow_large, scratch_dir=scratch_dir)
    raise ParameterTypeError(f"content={type(content).__name__}: expected a path, a numpy or a dask array")


def _style_input(style: Any, takes_image: bool, allow_large: bool,
                 scratch_dir: Path | None = None) -> tuple[np.ndarray | None, str | None, dict[str, Any]]:
    """Style image (RGB array) or style name/checkpoint (variant), and its provenance."""
    if not takes_image:
        if not isinstance(style, (str, os.PathLike)):
            raise ParameterTypeError(f"style={style!r}: this method takes a style name or checkpoint path")
        return None, str(style), {"name": str(style)}
    if isinstance(style, np.ndarray):
        arr = images.as_rgb(np.asarray(images.as_source(style, "<array>", "style").array.compute()))
        return arr, None, {"path": "<array>", "sha256": hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()}
    if not isinstance(style, (str, os.PathLike)):
        raise ParameterTypeError(f"style={type(style).__name__}: expected a path or a numpy array")
    arr = images.read_style(style, "style", allow_large=allow_large, scratch_dir=scratch_dir)
    digest = hashlib.sha256(Path(style).read_bytes()).hexdigest() if Path(style).is_file() else \
        hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()
    return arr, None, {"path": str(style), "sha256": digest}


def stylize(
    content: str | os.PathLike[str] | np.ndarray | da.Array,
    style: str | os.PathLike[str] | np.ndarray,
    out: str | os.PathLike[str],
    *,
    method: str = "wct16x",
    variant: str | None = None,
    weights: str | os.PathLike[str] | None = None,
    options: StyleOptions | None = None,
    plan: TilePlan | None = None,
    compute: ComputeOptions | None = None,
    cluster: ClusterOptions | None = None,
    client: Any = None,
    stats: NormStats | str | os.PathLike[str] | None = None,
    axes: str | None = None,
    allow_large_images: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    scratch: str | os.PathLike[str] | None = None,
    storage_options: dict[str, Any] | None = None,
    **settings: Any,
) -> Path | str:
    """Stylize ``content`` with ``style`` into the Zarr store ``out``; return its path (a
    :class:`~urst_dask.io.remote.RemotePath`, a ``str``, for a URL).

    ``content``: an image path (PNG/JPEG, TIFF/BigTIFF/OME-TIFF, Zarr/OME-Zarr) or a
    numpy/dask array; RGB, RGBA (alpha passed through) or gray (luminance transfer);
    uint8/uint16/float32 (mapped from the dtype's range, float in [0, 1]); never loaded
    whole.  ``axes`` names the source axes when they cannot be detected (``"CYX"``,
    ``"TCZYX"`` with singleton T/Z...); ``allow_large_images`` lifts Pillow's
    decompression-bomb limit for PNG/JPEG.  ``style``: a style image
    (path or (H, W, 3) array) or, for baked-in-style methods, a style name/checkpoint.
    ``variant`` picks a network variant where a method has several (``wct``: top level "1".."5").
    Settings go in the frozen objects or as keywords routed to them: ``alpha``,
    ``style_size``, ``thumb_size``, ``norm`` ("tin" | "in"), ``preserve_color``,
    ``intensity`` ("dtype", or "percentile:LO,HI": the thumbnail's percentiles are mapped onto
    the network's [0, 1] and back, recorded in the attributes)
    (:class:`StyleOptions`); ``stride``, ``margin`` (pixels or ``"auto"``), ``blend``
    ("crop" | "linear" | "gaussian"), ``align`` (:class:`TilePlan`; ``TilePlan.paper()`` is
    the paper's exact geometry); ``device``,
    ``precision`` ("auto": bf16 where the hardware has it), ``backend`` ("auto" | "eager" |
    "inductor" | "openvino"), ``whole``, ``batch`` (windows per network call)
    (:class:`ComputeOptions`); ``scheduler``, ``workers``, ``threads_per_worker``, ``processes``
    (:class:`ClusterOptions`).  ``stats`` reuses statistics (a NormStats or a previous output store) instead of a thumbnail pass.

    The output is a Zarr v3 group: array ``"0"`` (H, W, 3) in the input dtype, chunks
    ``stride``; ``urst/stats`` the statistics; attributes ``urst_dask`` the provenance,
    with ``status: complete`` written last.  Rerunning the same call after an interruption
    computes only the missing chunks (same fingerprint: input, style, weights, parameters);
    a store from a different run is refused unless ``overwrite``.

    ``scratch``: where decoded copies of PNG/JPEG inputs go (default ``$URST_DASK_SCRATCH``,
    else ``<out>.scratch`` beside the output); removed when the run ends, and by the next run
    if this one is killed (see :mod:`urst_dask.io.scratch`).

    ``content``, ``style``, ``out`` and ``stats`` may be Zarr stores at URLs (``s3://``,
    ``gs://``, ``memory://``; ``https://`` read-only) with fsspec ``storage_options`` (one dict,
    or one per scheme); see :mod:`urst_dask.io.remote`.
    """
    opts, tile_plan, comp, clus = _settings(settings, {StyleOptions: options, TilePlan: plan,
                                                       ComputeOptions: compute, ClusterOptions: cluster})
    content, style, out, stats = (remote.attach(v, storage_options, arg) for v, arg in (
        (content, "content"), (style, "style"), (out, "output"), (stats, "stats")))  # URLs carry their options
    timing.start()  # the per-stage summary that verbose runs print at the end
    entry = method_entry(method)
    if opts.alpha != 1.0 and not entry.supports_alpha:
        raise ParameterError(f"alpha={opts.alpha!r}: {method} has no content/style blend; leave alpha at 1")
    wdir = resolve_weights_dir(weights).resolve()
    if variant is not None and not entry.takes_style_image:
        raise ParameterError(f"variant={variant!r}: {method} takes its variant from the style argument")
    wfiles = entry.weights(variant if entry.takes_style_image else str(style))
    for wf in wfiles:
        if wf.sha256:
            verify_file(wdir / wf.relpath, wf)
        elif not (wdir / wf.relpath).is_file():
            raise WeightsError(f"style={str(style)!r}: checkpoint {wdir / wf.relpath} does not exist")
    store.check_output_link(out)  # a dangling -o link would place the scratch folder and store at its target
    run_scratch = scratch_io.start(out, scratch)  # decoded PNG/JPEG inputs; stale ones of dead runs removed
    with timing.stage("decode input"):
        src = _as_source(content, axes, allow_large_images, run_scratch)
    store.check_not_input(out, src.path)  # before anything is written: --overwrite would delete the input
    style_img, baked, style_meta = _style_input(style, entry.takes_style_image, allow_large_images, run_scratch)
    variant = variant if entry.takes_style_image else baked
    if isinstance(stats, (str, os.PathLike)):
        stats = store.read_stats(stats)
    if stats is not None and stats.method != method:
        raise ParameterError(f"stats: collected for method {stats.method!r}, not {method!r}")

    precheck(comp)  # --backend openvino without the package: one line naming the extra, before any work
    spec = ModelSpec(method=method, weights_dir=str(wdir), variant=variant, device=comp.device)
    percentiles = parse_intensity(opts.intensity)
    meta = _provenance(src, style_meta, method, variant, wfiles, opts, tile_plan, comp, stats)
    if percentiles is None:  # the dtype mapping: float pixels outside [0, 1] are refused as read, never clipped
        src = require_unit_range(src)
    # one run per output; the completion marker is written only while held; the scratch folder goes at the end
    with scratch_io.removed(run_scratch), output_lock(out):
        state = store.prepare_output(out, meta["fingerprint"], overwrite)
        out_path = store.output_path(out)  # a URL keeps its '//' (and storage options)
        if state == "complete":
            if progress:
                LOGGER.info(f"{out_path} is already complete (same fingerprint): nothing to do")
            return out_path
        with connect(clus, client) as c:
            remote.check_in_process(c, output=out_path, content=src.path)  # memory:// needs in-process workers
            resources = gpu_resources(c)
            info = run(c, graph.model_info(spec, resources), progress=False, label="network")
            check_min_side(method, info.size_multiple, shape=src.shape, where=f"content={src.path!r}",
                           thumb_size=opts.thumb_size, style_size=opts.style_size if style_img is not None else None)
            grid = tile_plan.resolve(info.size_multiple, info.seam_margin, info.receptive_field)
            if state == "resume":  # same run: reuse its style code, statistics and intensity range, byte for byte
                style_code = store.read_style_code(out_path)
                thumb_stats = store.read_stats(out_path) if opts.norm is NormMode.TIN else None
                stored = store.read_attrs(out_path).get("intensity", {}).get("range_unit")
                window = tuple(stored) if stored else None
            else:
                with_stats = opts.norm is NormMode.TIN and stats is None
                cond = graph.conditioning(src.level_for(opts.thumb_size), style_img, spec, thumb_size=opts.thumb_size,
                                          style_size=opts.style_size, alpha=opts.alpha, with_stats=with_stats,
                                          resources=resources, percentiles=percentiles)
                style_code, thumb_stats, window = run(c, cond, progress=progress,
                                                      label="thumbnail stage: style code and statistics")
                if opts.norm is NormMode.TIN and stats is not None:
                    thumb_stats = stats
                scale = dtype_scale(src.array.dtype)
                attrs = {**meta, "stats": None if thumb_stats is None else {"group": store.STATS, "sha256": thumb_stats.token()},
                         "intensity": {"mode": opts.intensity, "range_unit": list(window) if window else None,
                                       "range_in_dtype": [v * scale for v in window] if window else [0.0, scale]},
                         "tile_grid": _plain(grid), "started": _now()}
                store.create_output(out_path, src.shape, tile_plan.stride, str(src.array.dtype), attrs, thumb_stats,
                                    style_code, overwrite=overwrite)
            job = WindowJob(alpha=opts.alpha, precision=comp.precision, preserve_color=opts.preserve_color,
                            out_dtype=str(src.array.dtype), intensity=window, backend=comp.backend)
            stylized = graph.stylize_array(src.array, spec, style_code, thumb_stats, grid, job, whole=comp.whole,
                                           batch=comp.batch, resources=resources)
            todo = graph.missing_blocks(stylized, tile_plan.stride, store.present_chunks(out_path) if state == "resume" else set())
            total = stylized.numblocks[0] * stylized.numblocks[1]
            threads = sum(w.get("nthreads", 1) for w in c.scheduler_info().get("workers", {}).values())
            done = 0
            min_columns = graph.BLEND_MIN_COLUMNS if grid.blends and not comp.whole else 4
            for strip in graph.strips(todo, stylized.numblocks[0], threads, min_columns):
                label = f"tile stage: {len(todo)} of {total} windows" + (
                    f", strip of windows {done + 1}-{done + len(strip)}" if len(strip) < len(todo) else "")
                run(c, graph.write_blocks(stylized, str(out_path), strip), progress=progress, label=label)
                done += len(strip)
            timing.gather_compile_times(c)
            try:
                with timing.stage("pyramid"):
                    levels = images.write_ngff_pyramid(out_path, pixel_size=src.pixel_size,
                                                       channel_names=src.channel_names, channels=src.channels)
            except OSError as exc:  # disk full...: one line naming the store, which stays 'running'
                raise store.write_failed(out_path, exc, "the pyramid levels") from exc
        with timing.stage("completion marker"):
            store.mark_complete(out_path, {"finished": _now(), "pyramid_levels": list(levels)})
        if clus.verbose:
            timing.report()
        return out_path


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _input_identity(src: images.ImageSource) -> dict[str, Any]:
    """What identifies the input for the run fingerprint: for a file or Zarr store, its
    listing/size/mtime/header digest (see :func:`urst_dask.io.readers.input_identity` for what
    it can and cannot detect), or the dask array's content token for in-memory inputs."""
    if src.path == "<array>":
        return {"token": src.array.name}
    return input_identity(src.path)


def _plain(obj: Any) -> dict[str, Any]:
    return {k: (v.value if hasattr(v, "value") else v) for k, v in dataclasses.asdict(obj).items()}


def _provenance(src, style_meta, method, variant, wfiles, opts, plan, comp, stats) -> dict[str, Any]:
    """Every parameter of the run, and its fingerprint (what a resumed run must match)."""
    plain = _plain

    meta = {
        "version": __version__,
        "method": method,
        "variant": variant,
        "content": {"path": src.path, "shape": list(src.shape), "dtype": str(src.array.dtype), "format": src.format,
                    "channels": src.channels, "axes_in": src.axes_in, "pixel_size": src.pixel_size,
                    "thumbnail_from_level_shape": list(src.level_for(opts.thumb_size).shape),
                    "identity": _input_identity(src)},
        "style": style_meta,
        "weights": {wf.relpath: wf.sha256 for wf in wfiles},
        "options": plain(opts),
        "tile_plan": plain(plan),
        "compute": plain(comp),
        "stats_given": None if stats is None else stats.token(),
    }
    meta["fingerprint"] = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()
    return meta


def export(store_path: str | os.PathLike[str], out: str | os.PathLike[str], *, overwrite: bool = False,
           compression: str | None = None, tile: int | None = None,
           storage_options: dict[str, Any] | None = None) -> Path:
    """Export a finished output store: ``.tif`` (pyramidal tiled BigTIFF with OME metadata,
    written tile by tile) or ``.png``/``.jpg`` (PNG streamed band by band, 8 or 16 bits as
    stored; JPEG uint8 RGB/gray up to 65500 px).

    ``.tif`` only: ``compression`` ``"zlib"`` (default) or ``"zstd"`` (lossless, with the
    predictor), ``"jpeg"`` (uint8 gray/RGB only) or ``"none"``; ``tile`` the tile side, a
    multiple of 16 in [16, 4096] (default 256).  ``store_path`` may be a URL (with fsspec
    ``storage_options``); the export itself is a local file."""
    store_path = remote.attach(store_path, storage_options, "store")
    p = Path(out)
    suffix = p.suffix.lower()
    tiff = suffix in (".tif", ".tiff")
    for arg, value in (("compression", compression), ("tile", tile)):
        if value is not None and not tiff:
            raise ParameterError(f"{arg}={value!r}: applies to .tif exports only, not {suffix or 'no suffix'}")
    check_export_target(out, overwrite=overwrite)
    arr = store.open_output(store_path)
    try:
        if tiff:
            src = images.open_image(store_path, "store")
            images.write_pyramidal_tiff(p, arr, levels=list(src.levels) or None, pixel_size=src.pixel_size,
                                        channel_names=src.channel_names, overwrite=overwrite,
                                        compression="zlib" if compression is None else compression,
                                        tile=256 if tile is None else tile)
        else:
            images.write_raster(p, arr, overwrite=overwrite)
    except OSError as exc:
        if isinstance(exc, UrstError):
            raise
        full = " (disk full: free some space and export again)" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        raise OutputError(f"output={str(out)!r}: cannot write the export: {exc.strerror or exc}{full}; nothing is "
                          "left under that name") from exc
    return p


EXPORT_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def check_export_target(out: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Refuse an export target before any work is done (``stylize --export`` checks it before
    the run): an unknown suffix, a directory (``overwrite`` replaces files only), an existing
    file without ``overwrite``, a missing or unwritable folder."""
    p = Path(out)
    suffix = p.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise ParameterError(f"output={str(out)!r}: unknown format {suffix!r}; use .png, .jpg or .tif")
    if p.is_dir():
        raise OutputError(f"output={str(out)!r}: is a directory; --overwrite replaces files only: give a file "
                          f"name, e.g. {str(p / ('image' + suffix))!r}, or remove the directory")
    if p.exists() and not overwrite:
        raise OutputError(f"output={str(out)!r}: already exists; pass --overwrite to replace it")
    store.check_folder(p, str(out))
    return p


def compare(image: str | os.PathLike[str] | np.ndarray | da.Array,
            reference: str | os.PathLike[str] | np.ndarray | da.Array | None = None, *,
            stride: int | None = None, video: bool = False) -> dict[str, Any]:
    """``video=True``: ``image`` and ``reference`` are frame sequences (folder/glob, (T, H, W, C)
    Zarr or video file; ``reference`` defaults to the input recorded with ``image``) and the
    figures are its flicker (:func:`urst_dask.video.compare.flicker_report`).

    Quality figures of ``image`` (a finished output store, an image file, or an (H, W, C)
    array), read chunk by chunk: ``seam`` (the seam score at ``stride``: 1.0 means no visible
    tile boundary; default: the store's own stride, else 1000) and, against ``reference``
    (same shape), ``psnr`` (dB) and ``ssim``; ``stroke``: the stroke size (dominant texture
    wavelength in px, :func:`urst_dask.metrics.stroke_size`).  See :mod:`urst_dask.metrics`."""
    if video:
        from .video.compare import flicker_report

        return flicker_report(image, reference)  # type: ignore[arg-type]
    a, a_stride = _compare_input(image, "image")
    b = _compare_input(reference, "reference")[0] if reference is not None else None
    if b is not None and b.shape != a.shape:
        raise ParameterError(f"reference: shape {tuple(b.shape)} differs from the image's {tuple(a.shape)}")
    stride = int(stride or a_stride or TilePlan().stride)
    if stride < 1:
        raise ParameterError(f"stride={stride}: must be >= 1")
    from .metrics import data_range, stroke_size

    figures = dask.compute(graph.quality(a, b, stride, data_range(a.dtype)), scheduler="threads")[0]
    with dask.config.set(scheduler="threads"):  # stroke size: up to 16 tiles of 512 px, read one by one
        stroke = stroke_size(a) if min(a.shape[:2]) >= 16 else None
    return {"stride": stride, **figures, "stroke": stroke}


def _compare_input(value: Any, arg: str) -> tuple[da.Array, int | None]:
    """(H, W, C) array of an image or store, and the store's stride (None if not a store)."""
    if isinstance(value, (np.ndarray, da.Array)):
        return images.as_source(value, "<array>", arg).array, None
    if not isinstance(value, (str, os.PathLike)):
        raise ParameterTypeError(f"{arg}={type(value).__name__}: expected a path or an array")
    try:
        meta = store.read_attrs(value)
    except UrstError:
        meta = {}
    if meta:  # a urst-dask output store: refused if incomplete
        grid = meta.get("tile_grid") or meta.get("tile_plan") or {}
        return store.open_output(value), grid.get("stride")
    return images.open_image(value, arg).array, None
