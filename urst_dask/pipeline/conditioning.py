"""The conditioning stage: an exact area reduction of the (chunked, never fully loaded) image
to the thumbnail, the style code and the thumbnail statistics, as one small delayed result;
and the network's :class:`~urst_dask.models.base.ModelInfo`, read where the network runs.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import CancelledError
from typing import Callable

import dask
import dask.array as da
import numpy as np
from dask.delayed import Delayed
from distributed import Client, Future, KilledWorker

from .. import preprocess as pp
from ..engine import timing
from ..engine.models import ModelSpec, get_model, weights_token
from ..engine.probe import PrecisionChoice, choose_precision, settled, wants_probe
from ..engine.process import all_cpus, freeze_gc
from ..errors import WeightsError
from ..io import stylecache
from ..logs import LOGGER
from ..models.base import ModelInfo, StyleModel
from ..models.cascade import CascadedWct
from ..settings import ComputeOptions, Precision, StyleOptions
from ..stats import NormStats, StyleCode
from ..tiling import Blend, TileGrid, pad_to_multiple
from ..tiling.thumbstats import tiled_cascade_stats
from .progress import run

# A cascade's thumbnail with more pixels than this is taken tile by tile
# (:mod:`urst_dask.tiling.thumbstats`), in tiles of THUMB_TILE px plus the network's seam
# margin: the thumbnail keeps a 1024-px shorter side, so an elongated image's thumbnail would
# otherwise set the run's peak memory (benchmarks/results/stats-memory-*.json).
THUMB_TILE_PIXELS = 2 * 1024 * 1024  # beyond a 2:1 thumbnail (the 16:9 photograph: 1820x1024, one pass)
THUMB_TILE = 1024
# An image (the level the thumbnail is taken from) of at most this many bytes is reduced to its
# thumbnail in the calling process (:func:`local_thumbnail`), while the workers still start.
LOCAL_THUMB_BYTES = 64 << 20  # an 8-MP RGB photograph is 25 MB


def _block_partial(block: np.ndarray, shape_in: tuple[int, int], shape_out: tuple[int, int], y0: int, x0: int):
    return pp.area_reduce_block(pp.to_unit(block), shape_in, shape_out, y0, x0)


def _band(partials: list[tuple[int, int, np.ndarray]], width: int, channels: int) -> tuple[int, np.ndarray]:
    """Sum one block-row's partials into a float32 band of full thumbnail width."""
    top = min(oy for oy, _, _ in partials)
    bottom = max(oy + p.shape[0] for oy, _, p in partials)
    band = np.zeros((bottom - top, width, channels), dtype=np.float64)
    for oy, ox, part in partials:
        band[oy - top : oy - top + part.shape[0], ox : ox + part.shape[1]] += part
    return top, band.astype(np.float32)


def _assemble(bands: list[tuple[int, np.ndarray]], shape_out: tuple[int, int], channels: int) -> np.ndarray:
    out = np.zeros(shape_out + (channels,), dtype=np.float32)
    for top, band in bands:
        out[top : top + band.shape[0]] += band
    return out


def thumbnail(image: da.Array, thumb_size: int) -> Delayed:
    """Delayed (th, tw, C) float32 [0, 1] area-reduced thumbnail of an (H, W, C) array.

    Shorter side ``thumb_size`` (the image itself if already smaller).  Each chunk is
    reduced where it lives; its partial sums are added into one band per block-row, and the
    bands into the thumbnail, so no task ever holds more than a band's inputs or the
    thumbnail itself, whatever the image size.
    """
    h, w, c = (int(s) for s in image.shape)
    image = image.rechunk({2: -1})  # whole pixels in every block (a no-op for a reader's arrays)
    shape_out = pp.thumb_shape(h, w, thumb_size)
    offsets = [np.cumsum((0,) + image.chunks[i][:-1]) for i in (0, 1)]
    blocks = image.to_delayed()
    bands = []
    for i in range(blocks.shape[0]):
        row = [dask.delayed(_block_partial, pure=True)(blocks[i, j, 0], (h, w), shape_out, int(offsets[0][i]),
                                                       int(offsets[1][j]))
               for j in range(blocks.shape[1])]
        bands.append(dask.delayed(_band, pure=True)(row, shape_out[1], c))
    return dask.delayed(_assemble, pure=True)(bands, shape_out, c)


def local_thumbnail(image: da.Array, thumb_size: int) -> np.ndarray | None:
    """:func:`thumbnail` of ``image`` computed here, in the calling process, when ``image``
    has at most :data:`LOCAL_THUMB_BYTES` (``None`` for a larger one: its reduction stays a
    graph for the cluster, chunk by chunk).  The same tasks run, in order on this thread, so
    the pixels are the same ((th, tw, C) float32 in [0, 1], on the CPU).

    For a run's critical path: computed while the worker processes still import and load the
    network, the thumbnail is ready when they are, where the cluster would first read the
    input back and run one task per chunk (a 3840 x 2160 JPEG: 0.2-0.5 s of task time)."""
    if image.nbytes > LOCAL_THUMB_BYTES:
        return None
    with timing.stage("thumbnail reduction (this process)"):
        (thumb,) = dask.compute(thumbnail(image, thumb_size), scheduler="sync")  # threads: slower (the GIL)
    return thumb


def _prepare_style(spec: ModelSpec, style_image: np.ndarray | None, style_size: int) -> StyleCode:
    """The style code, from this machine's style cache when the same network and weights
    encoded the same pixels at the same size before (:mod:`urst_dask.io.stylecache`)."""
    model = get_model(spec)
    if style_image is None:
        return model.prepare_style(None)
    key = stylecache.style_key(weights_token(spec), style_size, style_image)
    code = stylecache.load(key)
    if code is None:
        with all_cpus():  # the thumbnail pass waits for this code, and every window for both
            code = model.prepare_style(pp.resize_center_crop(pp.to_unit(style_image), style_size).to(model.device))
        stylecache.save(key, code)
    return code


def _intensity_range(thumb: np.ndarray, percentiles: tuple[float, float] | None) -> tuple[float, float] | None:
    return None if percentiles is None else pp.percentile_range(thumb, *percentiles)


def thumb_grid(model: StyleModel, h: int, w: int) -> TileGrid | None:
    """The tiles the statistics pass takes an ``h`` x ``w`` (padded) thumbnail in, or ``None``
    for one whole pass (a small thumbnail, or a network that is not a cascaded WCT)."""
    if not isinstance(model, CascadedWct) or h * w <= THUMB_TILE_PIXELS:
        return None
    m = model.info.size_multiple
    margin = model.info.seam_margin if model.info.seam_margin is not None else 64
    return TileGrid(stride=-(-THUMB_TILE // m) * m, margin=-(-margin // m) * m, multiple=m, blend=Blend.CROP)


def _collect_stats(spec: ModelSpec, thumb: np.ndarray, style: StyleCode, alpha: float,
                   intensity: tuple[float, float] | None = None,
                   probe: ComputeOptions | None = None) -> tuple[NormStats, PrecisionChoice | None]:
    """The thumbnail statistics, and what ``precision="auto"`` resolves to when ``probe`` (the
    run's compute options) asks for a bf16 probe (:mod:`urst_dask.engine.probe`; ``None``: no
    probe needed, the workers resolve the precision as before).  A thumbnail taken in tiles
    has no whole float32 output to probe against: such a run stays float32."""
    import torch

    model = get_model(spec)
    thumb = pp.apply_intensity_range(thumb, intensity)
    thumb = np.repeat(thumb, 3, axis=2) if thumb.shape[2] == 1 else thumb[..., :3]  # gray / RGBA -> RGB
    x = pp.hwc_to_nchw(pad_to_multiple(thumb, model.info.size_multiple), model.device)
    grid = thumb_grid(model, x.shape[-2], x.shape[-1])
    unprobed: PrecisionChoice | None = None  # auto settled without a probe: recorded all the same
    if probe is not None and not wants_probe(probe.precision, model.device, model.info.name):
        unprobed = settled(probe.precision, model.device, model.info.name)
        probe = None
    with torch.inference_mode(), all_cpus():  # no window of the run can start before these statistics
        if grid is not None and isinstance(model, CascadedWct):  # thumb_grid tiles cascades only
            stats = tiled_cascade_stats(model, x, style, alpha, grid)
            return stats, (PrecisionChoice(Precision.FLOAT32, reason="the thumbnail was taken in tiles: no whole "
                                           "float32 pass to probe bf16 against") if probe is not None else unprobed)
        y, stats = model.collect_stats(x, style, alpha)
        if probe is None:
            return stats, unprobed
        return stats, choose_precision(model, x, y, style, stats, StyleOptions(alpha=alpha), probe)


def annotate(resources: dict[str, float] | None):
    """Resource annotation for the network tasks (``{"GPU": 1}`` on GPU clusters)."""
    return dask.annotate(resources=resources) if resources else contextlib.nullcontext()


def conditioning(
    image: da.Array,
    style_image: np.ndarray | None,
    spec: ModelSpec,
    options: StyleOptions,
    *,
    with_stats: bool = True,
    resources: dict[str, float] | None = None,
    probe: ComputeOptions | None = None,
    thumb: np.ndarray | Future | None = None,
) -> Delayed:
    """Delayed ``(StyleCode, NormStats | None, intensity range, PrecisionChoice | None)``: the
    style prepared once (at ``options.style_size``), the statistics of the
    ``options.thumb_size`` thumbnail collected once (``with_stats=False`` for ``--norm in``),
    the intensity range (the percentiles of ``options.intensity`` on the thumbnail, in [0, 1]
    units; ``None``: the dtype's range), and, given the run's compute options as ``probe``,
    what ``precision="auto"`` resolves to where it depends on a bf16 probe of the thumbnail
    (``None``: it does not; see :mod:`urst_dask.engine.probe`).  The two network tasks carry
    ``resources``.  ``thumb``: the thumbnail already computed (:func:`local_thumbnail` of
    ``image``), or a future of it on the cluster (``client.scatter``), one key of the graph;
    ``None``: reduced on the cluster."""
    percentiles = options.intensity.percentiles
    if not (with_stats or percentiles):
        small: Delayed | Future | None = None
    elif isinstance(thumb, Future):
        small = thumb
    elif thumb is not None:
        small = dask.delayed(thumb, pure=True)
    else:
        small = thumbnail(image, options.thumb_size)
    intensity = dask.delayed(_intensity_range, pure=True)(small, percentiles) if percentiles else None
    with annotate(resources):
        style = dask.delayed(_prepare_style, pure=True)(spec, style_image, options.style_size)
        pair = (dask.delayed(_collect_stats, pure=True, nout=2)(spec, small, style, options.alpha, intensity, probe)
                if with_stats else None)
    stats, choice = (pair[0], pair[1]) if pair is not None else (None, None)
    return dask.delayed(tuple, pure=True)([style, stats, intensity, choice])


def run_conditioning(client: Client, build: Callable[[Future | None], Delayed], thumb: np.ndarray | None, *,
                     progress: bool, label: str) -> tuple:
    """Run the conditioning graph ``build(thumbnail future)`` on ``client``.  A thumbnail reduced
    in this process is scattered to one worker: if that worker dies before the statistics are
    taken, the data cannot be recomputed and dask cancels the task.  Then the thumbnail is
    scattered again to the worker that replaced it, and the stage runs once more."""
    for attempt in (1, 2):
        future = None if thumb is None else client.scatter(thumb, hash=False)
        try:
            return run(client, build(future), progress=progress, label=label)
        except (CancelledError, KilledWorker) as exc:
            if thumb is None or attempt == 2:
                raise
            LOGGER.warning(f"a worker was lost during the thumbnail stage ({type(exc).__name__}); running it again")
            client.wait_for_workers(1, timeout=120)
    raise AssertionError("unreachable")


def preload_network(spec: ModelSpec) -> None:
    """Load ``spec``'s network into this worker ahead of the run's first task
    (:meth:`urst_dask.pipeline.earlystart.EarlyCluster.preload`); the worker imports this module,
    the run's task code, to run it; the weights token too (the style cache's key).  A failure
    is left for the run's own task to report."""
    try:
        weights_token(spec)  # loads the network (get_model), then hashes its weights
    except Exception:  # noqa: BLE001 - the run's own task meets it and reports it
        return
    freeze_gc()  # the imports and the network are here for the worker's life


def _model_info(spec: ModelSpec) -> ModelInfo:
    try:
        return get_model(spec).info
    except WeightsError as exc:  # this machine found the file: the worker's view of the path differs
        raise WeightsError(f"on worker {_worker_name()}: {exc}") from None


def _worker_name() -> str:
    """This worker's name and address (it may run on another machine than the client)."""
    try:
        from distributed import get_worker

        w = get_worker()
        return f"{w.name!r} ({w.address})" if str(w.name) != w.address else w.address
    except ValueError:  # not in a worker: computed here
        return "(this process)"


def model_info(spec: ModelSpec, resources: dict[str, float] | None = None) -> Delayed:
    """Delayed :class:`ModelInfo` of the network, read where the network runs (a worker loads
    it once and keeps it for the tile stage)."""
    with annotate(resources):
        return dask.delayed(_model_info, pure=True)(spec)


def _stats_layout(spec: ModelSpec) -> dict[str, dict[str, tuple[int, ...]]]:
    return get_model(spec).stats_layout()


def stats_layout(spec: ModelSpec, resources: dict[str, float] | None = None) -> Delayed:
    """Delayed ``{point: {field: shape}}`` of the statistics the network records
    (:meth:`~urst_dask.models.base.StyleModel.stats_layout`), read where it runs: what
    statistics given to a run must match before any work."""
    with annotate(resources):
        return dask.delayed(_stats_layout, pure=True)(spec)
