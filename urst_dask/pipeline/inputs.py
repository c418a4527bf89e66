"""The inputs of a run: the content image (a path, URL or array, never loaded whole), the
style (an image, or a style name/checkpoint for baked-in-style methods) and the network's
weight files, checked before any work."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

from ..errors import ParameterError, ParameterTypeError, WeightsError
from ..io import images, store
from ..io.digest import sha256_if_file
from ..io.weights import WeightFile, checkpoint_problem, resolve_weights_dir, verify_file
from ..models import method_entry
from ..models.registry import Network
from ..settings import NormMode
from ..stats import NormStats, style_conditions
from .config import RunConfig


def content_source(content: Any, axes: str | None, allow_large: bool,
                   scratch_dir: Path | None = None) -> images.ImageSource:
    """The content as an :class:`~urst_dask.io.images.ImageSource` (lazy (H, W, C))."""
    if isinstance(content, images.ImageSource):
        return content
    if isinstance(content, (da.Array, np.ndarray)):
        return images.as_source(content, "<array>", "content", axes=axes)
    if isinstance(content, (str, os.PathLike)):
        return images.open_image(content, "content", axes=axes, allow_large=allow_large, scratch_dir=scratch_dir)
    raise ParameterTypeError(f"content={type(content).__name__}: expected a path, a numpy or a dask array")


def style_input(style: Any, takes_image: bool, allow_large: bool,
                scratch_dir: Path | None = None) -> tuple[np.ndarray | None, str | None, dict[str, Any]]:
    """Style image (RGB array) or style name/checkpoint (variant), and its provenance."""
    if not takes_image:
        if not isinstance(style, (str, os.PathLike)):
            raise ParameterTypeError(f"style=<{type(style).__name__}>: this method takes a style name or checkpoint "
                                     "path")
        return None, str(style), {"name": str(style)}
    if isinstance(style, np.ndarray):
        arr = images.as_rgb(np.asarray(images.as_source(style, "<array>", "style").array.compute()))
        images.check_unit_pixels(arr, "style=<array>")
        pixels = _pixels_digest(arr)
        return arr, None, {"path": "<array>", "sha256": pixels, "pixels_sha256": pixels}
    if not isinstance(style, (str, os.PathLike)):
        raise ParameterTypeError(f"style={type(style).__name__}: expected a path or a numpy array")
    arr = images.read_style(style, "style", allow_large=allow_large, scratch_dir=scratch_dir)
    pixels = _pixels_digest(arr)
    digest = sha256_if_file(Path(style)) or pixels
    return arr, None, {"path": str(style), "sha256": digest, "pixels_sha256": pixels}


def _pixels_digest(rgb: np.ndarray) -> str:
    """sha256 of a style's (H, W, 3) pixels as read: the same picture given as a file or as an
    array has the same one (the ``sha256`` of a file is of its bytes)."""
    return hashlib.sha256(np.ascontiguousarray(rgb).tobytes()).hexdigest()


def worker_variant(entry: Network, variant: str | None) -> str | None:
    """The variant the workers load: a baked style's checkpoint file by the absolute path the
    weights were checked at here (the workers of a cluster run in their own folders, and a
    relative path there named another file, or none); a built-in style's name, or any other
    variant, as it is.  The run records the variant as it was given (its fingerprint too)."""
    if variant is None or entry.takes_style_image:
        return variant
    files = entry.weights(variant)
    if len(files) == 1 and Path(files[0].relpath).is_absolute():  # a user's checkpoint, resolved here
        return files[0].relpath
    return variant


def network(config: RunConfig, style: Any) -> tuple[Network, Path, tuple[WeightFile, ...]]:
    """The method's registry entry, the weights folder and the verified weight files; refuses
    an alpha or a variant the method has no use for."""
    entry = method_entry(config.method)
    if config.style.alpha != 1.0 and not entry.supports_alpha:
        raise ParameterError(f"alpha={config.style.alpha!r}: {config.method} has no content/style blend; leave alpha at 1")
    wdir = resolve_weights_dir(config.weights).resolve()
    if config.variant is not None and not entry.takes_style_image:
        raise ParameterError(f"variant={config.variant!r}: {config.method} takes its variant from the style argument")
    if config.variant is not None and entry.files_for is None:  # it would be recorded, and ignored
        raise ParameterError(f"variant={config.variant!r}: {config.method} has no variants; leave it out")
    if not entry.takes_style_image and not isinstance(style, (str, os.PathLike)):  # str() of an array: its repr
        raise ParameterTypeError(f"style=<{type(style).__name__}>: {config.method} bakes its style into the network; "
                                 "give a style name or a checkpoint path (see `urst-dask methods`)")
    wfiles = tuple(entry.weights(config.variant if entry.takes_style_image else str(style)))
    for wf in wfiles:
        if wf.sha256:
            verify_file(wdir / wf.relpath, wf)
        else:
            # the style names the checkpoint (johnson); else the file is the network's own
            whose = f"style={str(style)!r}" if not entry.takes_style_image else f"method={config.method!r}"
            path = wdir / wf.relpath
            problem = "does not exist" if not path.exists() else checkpoint_problem(path)
            if problem is not None:
                raise WeightsError(f"{whose}: checkpoint {path} {problem}"
                                   + ("" if not entry.takes_style_image or path.exists() else
                                      f" ({wf.what or 'weights'}; see `urst-dask methods` for where to get it)"))
    return entry, wdir, wfiles


def given_stats(stats: NormStats | str | os.PathLike[str] | None, method: str, variant: str | None = None,
                norm: NormMode = NormMode.TIN, network: str | None = None,
                conditions: frozenset[str] | None = None) -> NormStats | None:
    """Statistics given by the caller (a NormStats or a previous output store), for ``method``
    and the weight files of digest ``network`` (:func:`urst_dask.io.weights.network_digest`),
    which the statistics' own :attr:`~urst_dask.stats.NormStats.network` must match where known
    (a store without that record: its recorded ``variant`` must be ``variant``), and for the
    style :func:`~urst_dask.stats.style_conditions` (any of ``conditions``: :func:`run_conditions`;
    ``None``: a network whose statistics serve any style), likewise; refused with ``norm="in"``, where each window uses
    its own."""
    if stats is not None and not isinstance(stats, (str, os.PathLike, NormStats)):
        shown = repr(stats) if len(repr(stats)) <= 80 else f"<{type(stats).__name__}>"  # a StyleCode's repr: 8 kB
        raise ParameterTypeError(f"stats={shown}: expected a NormStats or the path of an output store")
    if stats is not None and norm is NormMode.IN:
        raise ParameterError("stats: given statistics serve norm='tin'; with norm='in' every window is normalized "
                             "by its own: leave stats out")
    at, why = "stats", f"collected by other weights than this run's {method}" + (f" {variant!r}" if variant else "")
    serve = "statistics serve the network and variant that collected them"
    if isinstance(stats, (str, os.PathLike)):
        at, path, stats = f"stats={str(stats)!r}", stats, store.read_stats(stats)
        attrs = store.read_attrs(path)
        if attrs.get("method") == method and attrs.get("variant") != variant:
            why = f"collected with variant {attrs.get('variant')!r}, not {variant!r}"
            if stats.network is None:  # a store without its weights record: the variant decides
                raise ParameterError(f"{at}: {why}; {serve}")
    if stats is not None and stats.method != method:
        raise ParameterError(f"{at}: collected for method {stats.method!r}, not {method!r}")
    if stats is not None and None not in (stats.network, network) and stats.network != network:
        raise ParameterError(f"{at}: {why} (weight files sha256 {str(stats.network)[:12]}, not {str(network)[:12]}); "
                             f"{serve}")
    if stats is not None and stats.conditions is not None and conditions is not None and stats.conditions not in conditions:
        raise ParameterError(f"{at}: collected with another style, alpha or style_size than this run's; {method}'s "
                             "statistics past its first normalization point depend on the style (compared by the "
                             "sha256 of its pixels as read, so a file and the same picture as an array agree): give "
                             "statistics of a run with the same style settings, or leave stats out")
    if stats is not None:
        for point in stats.points():
            bad = [f for f, v in stats[point].items() if not np.all(np.isfinite(v))]
            if bad:
                raise ParameterError(f"{at}: point {point!r} field {bad[0]!r} holds NaN or infinite values")
    return stats


def run_conditions(entry: Network, style_meta: dict[str, Any], config: RunConfig) -> frozenset[str] | None:
    """The :func:`~urst_dask.stats.style_conditions` given statistics may have been collected
    under, for this run: by the style's pixels, and by its file's sha256 (what stores written
    before the pixels' digest was recorded hold).  ``None`` for a network whose statistics serve
    any style: one whose points see the content alone, and a baked style's (Johnson: its weights
    decide, and its alpha blends after the network)."""
    if entry.info.content_only_stats or not entry.takes_style_image:
        return None
    options = {k: getattr(config.style, k) for k in ("alpha", "style_size")}
    by_file = {k: v for k, v in style_meta.items() if k != "pixels_sha256"}
    found = {style_conditions(style_meta, options), style_conditions(by_file, options)}
    return frozenset(c for c in found if c is not None)


def check_stats_layout(stats: NormStats, layout: dict[str, dict[str, tuple[int, ...]]], variant: str | None) -> None:
    """Refuse statistics whose points, fields or shapes are not the ones the network records
    (``layout``: :func:`urst_dask.pipeline.conditioning.stats_layout`), before any work."""
    net = f"{stats.method!r}" + (f" variant {variant!r}" if variant else "")
    if stats.points() != list(layout):
        raise ParameterError(f"stats: points {stats.points()} are not the {net} network's {list(layout)}; statistics "
                             "serve the network and variant that collected them")
    for point, fields in layout.items():
        got = {f: tuple(v.shape) for f, v in stats[point].items()}
        if got != fields:
            raise ParameterError(f"stats: point {point!r} holds fields {got}, the {net} network records {fields}")
