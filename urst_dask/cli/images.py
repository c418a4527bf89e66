"""``stylize``, ``export`` and ``demo``: the commands that make pictures."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any, Iterator

from .options import add_inputs, add_run_options, add_storage_options, image_size, run_config, storage_options, style_arg

RAW = argparse.RawDescriptionHelpFormatter
STYLIZE_EXAMPLES = """Examples:
  urst-dask stylize photo.jpg style.jpg -o out.zarr                 wct16x, 1000-px tiles, one local worker
  urst-dask stylize scan.tif style.jpg -o scan.zarr --workers 2 --export scan-styled.tif
                                                                    two workers, then a pyramidal TIFF
  urst-dask stylize photo.jpg candy -o candy.zarr --method johnson   a baked-in style, by name
  urst-dask stylize photo.jpg style.jpg -o out.zarr --paper         the paper's exact geometry
"""
EXPORT_EXAMPLES = """Examples:
  urst-dask export out.zarr out.png                 PNG, streamed band by band (8 or 16 bits as stored)
  urst-dask export out.zarr out.tif --compression zstd --tile 512
                                                    pyramidal BigTIFF with OME metadata
  urst-dask export s3://bucket/out.zarr out.jpg     a store at a URL, exported to a local JPEG
"""
DEMO_EXAMPLES = """Examples:
  urst-dask demo -o demo.zarr                       2400x1600 generated image and style; writes demo.png too
  urst-dask demo -o big.zarr --size 8000x6000 --workers 2
                                                    a larger picture on two workers
  urst-dask demo -o demo.zarr --method microast --alpha 1
                                                    another network (MicroAST: alpha 1 only)
  urst-dask demo -o demo.zarr --alpha 0.6           a lighter style (wct16x)
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stylize", help="stylize an image into a Zarr store", epilog=STYLIZE_EXAMPLES,
                       formatter_class=RAW)
    add_inputs(p, "content image: .png/.jpg/.tif/.zarr")
    add_run_options(p)
    p.set_defaults(func=_cmd_stylize)

    p = sub.add_parser("export", help="export a finished store to .png/.jpg/.tif", epilog=EXPORT_EXAMPLES,
                       formatter_class=RAW)
    p.add_argument("store", help="a finished output store (a path or a URL)")
    p.add_argument("out", help="the exported file: .png, .jpg/.jpeg or .tif/.tiff")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file of that name")
    p.add_argument("--compression", help=".tif tiles: zlib (default) or zstd (lossless, with the predictor), jpeg "
                                         "(8-bit gray/RGB only) or none")
    p.add_argument("--tile", type=int, help=".tif tile side, a multiple of 16 in [16, 4096]; default 256")
    p.add_argument("--no-progress", action="store_true", help="no progress line (rows written, rate, ETA)")
    add_storage_options(p)
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("demo", help="stylize a generated image with a generated style (no input files needed)",
                       epilog=DEMO_EXAMPLES, formatter_class=RAW)
    p.add_argument("--size", type=image_size, default=(2400, 1600), help="WIDTHxHEIGHT; default 2400x1600")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated image (the style takes seed + 1); "
                                                       "default 0")
    add_run_options(p)
    p.set_defaults(func=_cmd_demo)


@contextlib.contextmanager
def cluster_starting(config: Any, out: str, overwrite: bool, content: str | None = None) -> Iterator[None]:
    """The run's worker processes start now, beside this process's imports of torch and the
    pipeline (seconds), for a new local output from a file that exists (``content=None``: a
    generated image); the run takes them (:func:`urst_dask.pipeline.earlystart.prestart`).  Closed
    on the way out if the run did not take them."""
    from ..pipeline.earlystart import prestart

    def local_missing(path: str) -> bool:
        return "://" not in path and not Path(path).exists()

    new = "://" not in str(out) and (overwrite or local_missing(str(out)))
    early = prestart(config.cluster) if new and (content is None or not local_missing(str(content))) else None
    try:
        yield
    finally:
        if early is not None:
            early.close()


def _cmd_stylize(a: argparse.Namespace) -> None:
    style = style_arg(a)
    config = run_config(a)
    if a.export is not None:  # an unusable export target is refused before the run, and before its cluster starts
        from ..io.targets import check_export_target

        check_export_target(a.export, overwrite=a.overwrite, content=a.content, axes=config.flags.axes, arg="export",
                            store=a.out)
    with cluster_starting(config, a.out, a.overwrite, a.content):
        from ..api import export, stylize
        from ..engine.process import freeze_gc

        freeze_gc()  # the imports are for the process's life: later collections need not walk them
        out = stylize(a.content, style, a.out, config=config, stats=a.stats)
    print(f"wrote {out}")
    if a.export:
        a.exporting = True  # an interruption from here on leaves the store complete
        print(f"wrote {export(out, a.export, overwrite=a.overwrite, progress=_progress(a))}")


def _progress(a: argparse.Namespace) -> bool:
    """The progress line, unless --no-progress or -q."""
    return not (getattr(a, "no_progress", False) or getattr(a, "quiet", False))


def _cmd_export(a: argparse.Namespace) -> None:
    from ..api import export

    out = export(a.store, a.out, overwrite=a.overwrite, compression=a.compression, tile=a.tile,
                 storage_options=storage_options(a), progress=_progress(a))
    print(f"wrote {out}")


def _ensure_demo_weights(a: argparse.Namespace) -> None:
    """First-run convenience: with no weights configured, fetch the method's public files."""
    import os

    from ..io.weights import ENV_VAR, fetch, file_status, resolve_weights_dir
    from ..models import method_entry

    if a.weights is not None or os.environ.get(ENV_VAR):
        return  # an explicit folder: use it as it is (a missing file is then a clear error)
    wdir = resolve_weights_dir(None)
    files = method_entry(a.method).weights(None)
    if any(file_status(wdir, wf) != "ok" for wf in files) and all(wf.url for wf in files):
        print(f"[urst-dask] fetching {a.method} weights into {wdir}", file=sys.stderr)
        fetch(files, wdir, log=lambda s: print(s, file=sys.stderr, flush=True))


def _check_demo_method(method: str) -> None:
    """demo generates its style image: a network with its style baked in (johnson) has no use
    for one, and the run's refusal quoted the generated pixels (900 characters)."""
    from ..errors import ParameterError
    from ..models import METHODS, method_entry

    if not method_entry(method).takes_style_image:
        takes = ", ".join(m for m in METHODS if method_entry(m).takes_style_image)
        raise ParameterError(f"method={method!r}: bakes its style into its weights, and demo makes a style image; "
                             f"use a method that takes one ({takes}), or `urst-dask stylize IMAGE STYLE --method "
                             f"{method}`")


def _check_demo_targets(a: argparse.Namespace, png: Path) -> None:
    """Before the run: the preview ``png`` demo writes beside ``-o`` replaces a file there only
    with ``--overwrite``, or when ``-o`` is already a store (the preview is that store's); an
    ``--export`` is checked as for stylize, and may not be the preview itself."""
    from ..errors import OutputError, ParameterError
    from ..io.remote import is_url
    from ..io.targets import check_export_target

    if a.export is not None:
        if a.export and Path(a.export).resolve() == png.resolve():
            raise ParameterError(f"export={a.export!r}: demo writes its preview there already; give --export "
                                 "another name, or leave it out")
        check_export_target(a.export, overwrite=a.overwrite, arg="export")
    if png.exists() and not a.overwrite and (is_url(a.out) or not (Path(a.out) / "zarr.json").is_file()):
        where = "in the current folder for" if is_url(a.out) else "beside"
        raise OutputError(f"output={str(png)!r}: already exists (demo writes its preview {where} -o {a.out!r}); pass "
                          "--overwrite to replace it, or choose another -o")
    check_export_target(png, overwrite=True)


def _demo_preview(out: str) -> Path:
    """Where demo writes its preview: beside ``-o`` (``d.zarr`` -> ``d.png``; ``d.zarr/``, as a
    shell completes it, too); for a store at a URL, in the current folder, named after it."""
    from ..io import remote

    local = remote.attach(out, None, "output")  # file:///x/d.zarr is the local /x/d.zarr
    if isinstance(local, remote.RemotePath):
        name = str.__str__(local).rstrip("/").rsplit("/", 1)[-1]
        return Path(name.removesuffix(".zarr") + ".png")
    given = Path(local)
    return given.with_name(given.name.removesuffix(".zarr") + ".png")


def _cmd_demo(a: argparse.Namespace) -> None:
    png = _demo_preview(a.out)
    _check_demo_method(a.method)
    _check_demo_targets(a, png)
    _ensure_demo_weights(a)
    w, h = a.size
    config = run_config(a)
    with cluster_starting(config, a.out, a.overwrite):
        from ..api import export, stylize
        from ..engine.process import freeze_gc
        from ..pipeline.synthetic import synthetic_array
        from ..synthetic import demo_style

        freeze_gc()  # as stylize's

        content = synthetic_array((h, w), seed=a.seed, chunk=config.tiles.stride)
        out = stylize(content, demo_style(768, seed=a.seed + 1), a.out, config=config, stats=a.stats)
    export(out, png, overwrite=True)
    print(f"wrote {out} ({w}x{h}) and {png}")
    if a.export:
        a.exporting = True
        print(f"wrote {export(out, a.export, overwrite=a.overwrite, progress=_progress(a))}")
