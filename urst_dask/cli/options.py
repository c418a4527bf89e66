"""Options shared by the commands that run the pipeline (``stylize``, ``demo``), generated from
the fields of the run configuration (:class:`urst_dask.pipeline.config.RunConfig` and its
groups): each field's ``metadata`` holds its help text (and a flag name or aliases where the
flag differs from the field), and its default is the dataclass's, so no default is written
twice.  :func:`run_config` turns the parsed namespace back into a ``RunConfig``."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Iterator

from ..errors import ParameterError
from ..settings import _Choice
from ..tiling.plan import AUTO, PAPER_MARGIN, PAPER_STRIDE, TilePlan


def image_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size={text!r}: expected WIDTHxHEIGHT, e.g. 2400x1600") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"size={text!r}: width and height must be >= 1")
    return w, h


def margin_arg(text: str) -> int | str:
    if text.strip().lower() == AUTO:
        return AUTO
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"margin={text!r}: expected a number of pixels or 'auto'") from None


ARG_TYPES = {"margin": margin_arg}


def _fields() -> Iterator[tuple[str, dataclasses.Field]]:
    """(group name or "", field) of every configuration field the command line offers."""
    from ..pipeline.config import GROUPS, RunConfig

    for f in dataclasses.fields(RunConfig):
        if f.name not in GROUPS:
            yield "", f
    for name, group in GROUPS.items():
        for f in dataclasses.fields(group):
            if f.metadata.get("cli", True):
                yield name, f


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[operator]


def _add_field(p: argparse.ArgumentParser, group: str, f: dataclasses.Field) -> None:
    meta = f.metadata
    default = _default(f)
    flags = [meta.get("flag", "--" + f.name.replace("_", "-")), *meta.get("aliases", ())]
    shown = default.value if isinstance(default, _Choice) else str(default) if meta.get("type") is str else default
    kwargs: dict[str, Any] = {"dest": f.name, "help": meta.get("help", "")}
    if isinstance(default, bool):  # a switch: the flag turns the default around (--in-process: processes=False)
        p.add_argument(*flags, action="store_false" if default else "store_true", **kwargs)
        return
    if "flag" in meta:
        kwargs["metavar"] = meta["flag"].lstrip("-").upper().replace("-", "_")
    if isinstance(default, _Choice):
        kwargs["choices"] = [m.value for m in type(default)]
    elif meta.get("type") in ARG_TYPES:
        kwargs["type"] = ARG_TYPES[meta["type"]]
    elif isinstance(default, (int, float)):
        kwargs["type"] = type(default)
    if shown is not None:
        kwargs["help"] += f"; default {shown}"
    # tiling options stay None when not given: --paper refuses them (see plan_kwargs)
    kwargs["default"] = None if group == "tiles" else shown
    p.add_argument(*flags, **kwargs)


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--out", required=True, help="output Zarr store (e.g. out.zarr)")
    for group, f in _fields():
        _add_field(p, group, f)
    p.add_argument("--paper", action="store_true",
                   help=f"the paper's exact geometry: stride {PAPER_STRIDE}, margin {PAPER_MARGIN} "
                        f"({PAPER_STRIDE + 2 * PAPER_MARGIN}-px windows), crop; aligned")
    p.add_argument("--no-align", dest="align", action="store_false", default=None,
                   help="windows not aligned to the network's pooling grid (shows seams; for comparisons only)")
    p.add_argument("--stats", help="reuse the statistics stored in a previous output store")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or status lines")
    p.add_argument("--export", help="also export the result (.png/.jpg/.tif) when done (checked before the run)")
    add_storage_options(p)


def add_storage_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage-options", metavar="JSON",
                   help="fsspec options for stores at URLs (s3://, gs://, https://), one JSON object or one per "
                        "scheme, e.g. '{\"endpoint_url\": \"http://127.0.0.1:9000\"}'; default: the environment "
                        "(AWS_*, FSSPEC_S3...)")


def add_inputs(p: argparse.ArgumentParser, content_help: str,
               style_help: str = "style image (or a style name/checkpoint for baked-in-style methods)") -> None:
    """The positional ``content`` and ``style``; the style may also come as ``--style`` (how
    ``train`` takes it).  Without that option argparse read ``--style X`` as an abbreviation of
    ``--style-size`` and said "invalid int value".  :func:`style_arg` reads the one given."""
    p.add_argument("content", help=content_help)
    p.add_argument("style", nargs="?", help=f"{style_help}; or give it as --style")
    p.add_argument("--style", dest="style_option", metavar="STYLE", help=f"the {style_help}, instead of the position")


def style_arg(a: argparse.Namespace) -> str:
    """The style of a command line built by :func:`add_inputs` (given once, either way)."""
    if a.style is not None and a.style_option is not None:
        raise ParameterError(f"style: given twice, {a.style!r} and --style {a.style_option!r}; give one")
    if a.style is None and a.style_option is None:
        raise ParameterError("style: missing; give the style image (or style name) after the content, or as --style")
    return a.style if a.style is not None else a.style_option


def add_verbosity(p: argparse.ArgumentParser, default: object = argparse.SUPPRESS) -> None:
    """``-v`` and ``-q``, accepted before or after the command's name."""
    p.add_argument("-v", "--verbose", action="store_true", default=default,
                   help="more detail: the workers' tracebacks of a failure besides the one-line error, debug lines")
    p.add_argument("-q", "--quiet", action="store_true", default=default,
                   help="no status lines or progress bars: warnings, errors and the final 'wrote ...' line only")


def plan_kwargs(a: argparse.Namespace) -> dict:
    """The tiling options given on the command line (the rest keep TilePlan's defaults)."""
    given = {k: getattr(a, k) for k in ("stride", "margin", "blend", "align") if getattr(a, k, None) is not None}
    if getattr(a, "paper", False):
        if given:
            opts = ", ".join(f"--{k.replace('_', '-')}" if k != "align" else "--no-align" for k in given)
            raise ParameterError(f"paper: --paper fixes the geometry (stride 1000, margin 32, crop); drop {opts}")
        return {"tiles": TilePlan.paper()}
    return given


def storage_options(a: argparse.Namespace) -> dict | None:
    from ..io.remote import parse_options

    return parse_options(getattr(a, "storage_options", None))


def run_config(a: argparse.Namespace) -> Any:
    """The :class:`~urst_dask.pipeline.config.RunConfig` of a ``stylize``/``demo`` command line."""
    from ..pipeline.config import RunConfig

    given = {f.name: getattr(a, f.name) for group, f in _fields() if group != "tiles" and hasattr(a, f.name)}
    return RunConfig.from_kwargs(
        **given, **plan_kwargs(a), progress=not (a.no_progress or getattr(a, "quiet", False)),
        verbose=bool(getattr(a, "verbose", False)), storage_options=storage_options(a))
