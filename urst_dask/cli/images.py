"""``stylize``, ``export`` and ``demo``: the commands that make pictures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..tiling.plan import TilePlan
from .options import add_run_options, add_storage_options, image_size, run_kwargs, storage_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stylize", help="stylize an image into a Zarr store")
    p.add_argument("content", help="content image: .png/.jpg/.tif/.zarr")
    p.add_argument("style", help="style image (or a style name/checkpoint for baked-in-style methods)")
    add_run_options(p)
    p.set_defaults(func=_cmd_stylize)

    p = sub.add_parser("export", help="export a finished store to .png/.jpg/.tif")
    p.add_argument("store")
    p.add_argument("out")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--compression", help=".tif tiles: zlib (default) or zstd (lossless, with the predictor), jpeg "
                                         "(8-bit gray/RGB only) or none")
    p.add_argument("--tile", type=int, help=".tif tile side, a multiple of 16 in [16, 4096]; default 256")
    add_storage_options(p)
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("demo", help="stylize a generated image with a generated style (no input files needed)")
    p.add_argument("--size", type=image_size, default=(2400, 1600), help="WIDTHxHEIGHT; default 2400x1600")
    p.add_argument("--seed", type=int, default=0)
    add_run_options(p)
    p.set_defaults(export=None, func=_cmd_demo)


def _cmd_stylize(a: argparse.Namespace) -> None:
    from ..api import check_export_target, export, stylize

    if a.export:  # an unusable export target is refused before the run, not after it
        check_export_target(a.export, overwrite=a.overwrite)
    out = stylize(a.content, a.style, a.out, **run_kwargs(a))
    print(f"wrote {out}")
    if a.export:
        print(f"wrote {export(out, a.export, overwrite=a.overwrite)}")


def _cmd_export(a: argparse.Namespace) -> None:
    from ..api import export

    out = export(a.store, a.out, overwrite=a.overwrite, compression=a.compression, tile=a.tile,
                 storage_options=storage_options(a))
    print(f"wrote {out}")


def _ensure_demo_weights(a: argparse.Namespace) -> None:
    """First-run convenience: with no weights configured, fetch the method's public files."""
    import os

    from ..io.weights import ENV_VAR, fetch, file_status, resolve_weights_dir
    from ..models import method_entry

    if a.weights or os.environ.get(ENV_VAR):
        return  # an explicit folder: use it as it is (a missing file is then a clear error)
    wdir = resolve_weights_dir(None)
    files = method_entry(a.method).weights(None)
    if any(file_status(wdir, wf) != "ok" for wf in files) and all(wf.url for wf in files):
        print(f"[urst-dask] fetching {a.method} weights into {wdir}", file=sys.stderr)
        fetch(files, wdir, log=lambda s: print(s, file=sys.stderr, flush=True))


def _cmd_demo(a: argparse.Namespace) -> None:
    from .. import graph
    from ..api import export, stylize
    from ..synthetic import demo_style

    _ensure_demo_weights(a)
    w, h = a.size
    content = graph.synthetic_array((h, w), seed=a.seed, chunk=a.stride or TilePlan().stride)
    out = stylize(content, demo_style(768, seed=a.seed + 1), a.out, **run_kwargs(a))
    png = Path(str(out).removesuffix(".zarr") + ".png")
    export(out, png, overwrite=True)
    print(f"wrote {out} ({w}x{h}) and {png}")
