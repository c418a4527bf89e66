"""``urst-dask`` command line: a thin layer over :mod:`urst_dask.api`.

Exit status 0 on success, 2 on bad input (one ``urst-dask: error: ...`` line), 130 on Ctrl-C,
143 on SIGTERM (handled like Ctrl-C: the run unwinds and removes its scratch data; a second
SIGTERM kills at once).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from .errors import ParameterError, UrstError
from .settings import DeviceKind, MemoryMode, NormMode, Precision
from .tiling.plan import AUTO, Blend, TilePlan


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size={text!r}: expected WIDTHxHEIGHT, e.g. 2400x1600") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"size={text!r}: width and height must be >= 1")
    return w, h


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--out", required=True, help="output Zarr store (e.g. out.zarr)")
    p.add_argument("--method", default="wct16x", help="style network (see `urst-dask methods`); default wct16x")
    p.add_argument("--variant", help="network variant where a method has several (wct: top level 1-5, default 3)")
    p.add_argument("--weights", help="weights folder (default: $URST_DASK_WEIGHTS, then the user cache)")
    p.add_argument("--alpha", type=float, default=1.0, help="content/style blend in [0, 1]; default 1")
    p.add_argument("--style-size", type=int, default=1024, help="style image side after resize+crop; default 1024")
    p.add_argument("--thumb-size", type=int, default=1024, help="thumbnail shorter side; default 1024")
    plan = TilePlan()
    p.add_argument("--stride", "--patch-size", "--patch_size", dest="stride", type=int,
                   help=f"kept centre of each window = output chunk size; default {plan.stride}")
    p.add_argument("--margin", "--padding", dest="margin", type=_margin,
                   help="context on each side of a window's centre, pixels or 'auto' (the network's measured "
                        f"seam-free margin); default {plan.margin}")
    p.add_argument("--blend", choices=[b.value for b in Blend],
                   help=f"how overlapping windows combine: crop (the paper), linear or gaussian feathering "
                        f"across the overlap; default {plan.blend.value}")
    p.add_argument("--paper", action="store_true",
                   help="the paper's exact geometry: stride 1000, margin 32 (1064-px windows), crop; aligned")
    p.add_argument("--no-align", dest="align", action="store_false", default=None,
                   help="windows not aligned to the network's pooling grid (shows seams; for comparisons only)")
    p.add_argument("--norm", choices=[m.value for m in NormMode], default="tin",
                   help="tin: thumbnail statistics (URST); in: per-window statistics (baseline)")
    p.add_argument("--whole", action="store_true", help="no tiling: the whole image as one window")
    p.add_argument("--preserve-color", action="store_true", help="keep the content's colours (luminance transfer)")
    p.add_argument("--intensity", default="dtype",
                   help="intensity mapping into the network's range: 'dtype' (default: the dtype's full range) or "
                        "'percentile:LO,HI' (the thumbnail's percentiles, e.g. percentile:0.5,99.5; mapped back on output)")
    p.add_argument("--device", choices=[d.value for d in DeviceKind], default="auto")
    p.add_argument("--precision", choices=[d.value for d in Precision], default="float32")
    p.add_argument("--batch", type=int, default=1,
                   help="windows per network call (neighbours along a row; for GPUs); halves itself when the "
                        "device runs out of memory; default 1")
    p.add_argument("--workers", type=int, default=1, help="local cluster worker processes; default 1")
    p.add_argument("--threads-per-worker", type=int, default=1, help="tasks at once per worker; default 1")
    p.add_argument("--memory", choices=[m.value for m in MemoryMode], default="fast",
                   help="worker allocator: fast (default) or compact (freed arrays go back to the OS at once: "
                        "flat memory at any image size, windows 12-20%% slower)")
    p.add_argument("--scheduler", help="use an existing Dask scheduler (tcp://host:8786) instead")
    p.add_argument("--scheduler-timeout", type=float, default=20.0,
                   help="seconds the scheduler has to answer each connection step; default 20")
    p.add_argument("--stats", help="reuse the statistics stored in a previous output store")
    p.add_argument("--axes", help="source axes when they cannot be detected, e.g. CYX, YXC, TCZYX (T, Z singleton)")
    p.add_argument("--allow-large-images", action="store_true",
                   help="lift Pillow's decompression-bomb limit for PNG/JPEG inputs")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output store")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--export", help="also export the result (.png/.jpg/.tif) when done (checked before the run)")
    _add_verbose(p)
    p.add_argument("--scratch", help="folder for decoded copies of PNG/JPEG inputs (default: $URST_DASK_SCRATCH, "
                                     "else <out>.scratch); removed at the end, or by the next run if killed")


def _add_verbose(p: argparse.ArgumentParser, default: object = argparse.SUPPRESS) -> None:
    p.add_argument("-v", "--verbose", action="store_true", default=default,
                   help="log the details of a failure (worker tracebacks) besides the one-line error")


def _margin(text: str) -> int | str:
    if text.strip().lower() == AUTO:
        return AUTO
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"margin={text!r}: expected a number of pixels or 'auto'") from None


def _plan_kwargs(a: argparse.Namespace) -> dict:
    """The tiling options given on the command line (the rest keep TilePlan's defaults)."""
    given = {k: getattr(a, k) for k in ("stride", "margin", "blend", "align") if getattr(a, k, None) is not None}
    if getattr(a, "paper", False):
        if given:
            opts = ", ".join(f"--{k.replace('_', '-')}" if k != "align" else "--no-align" for k in given)
            raise ParameterError(f"paper: --paper fixes the geometry (stride 1000, margin 32, crop); drop {opts}")
        return {"plan": TilePlan.paper()}
    return given


def _run_kwargs(a: argparse.Namespace) -> dict:
    return dict(
        method=a.method, variant=a.variant, weights=a.weights, overwrite=a.overwrite, progress=not a.no_progress, stats=a.stats,
        alpha=a.alpha, style_size=a.style_size, thumb_size=a.thumb_size, **_plan_kwargs(a),
        norm=a.norm, whole=a.whole, preserve_color=a.preserve_color, intensity=a.intensity, device=a.device, precision=a.precision,
        batch=a.batch,
        workers=a.workers, threads_per_worker=a.threads_per_worker, scheduler=a.scheduler, memory=a.memory,
        connect_timeout=a.scheduler_timeout,
        axes=getattr(a, "axes", None), allow_large_images=getattr(a, "allow_large_images", False),
        scratch=getattr(a, "scratch", None), verbose=getattr(a, "verbose", False),
    )


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="urst-dask", description="Ultra-resolution style transfer (URST) on Dask.")
    ap.add_argument("--version", action="version", version=f"urst-dask {__version__}")
    _add_verbose(ap, default=False)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("stylize", help="stylize an image into a Zarr store")
    p.add_argument("content", help="content image: .png/.jpg/.tif/.zarr")
    p.add_argument("style", help="style image (or a style name/checkpoint for baked-in-style methods)")
    _add_run_options(p)

    p = sub.add_parser("export", help="export a finished store to .png/.jpg/.tif")
    p.add_argument("store")
    p.add_argument("out")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--compression", help=".tif tiles: zlib (default) or zstd (lossless, with the predictor), jpeg "
                                         "(8-bit gray/RGB only) or none")
    p.add_argument("--tile", type=int, help=".tif tile side, a multiple of 16 in [16, 4096]; default 256")
    _add_verbose(p)

    p = sub.add_parser("demo", help="stylize a generated image with a generated style (no input files needed)")
    p.add_argument("--size", type=_size, default=(2400, 1600), help="WIDTHxHEIGHT; default 2400x1600")
    p.add_argument("--seed", type=int, default=0)
    _add_run_options(p)
    p.set_defaults(export=None)

    p = sub.add_parser("compare", help="seam score of an image (and PSNR/SSIM against a reference)")
    p.add_argument("image", help="an output store or an image file")
    p.add_argument("reference", nargs="?", help="the image to compare with (e.g. a --whole result)")
    p.add_argument("--stride", type=int, help="tile stride for the seam score (default: the store's, else 1000)")

    p = sub.add_parser("methods", help="list the style networks and whether their weights are found")
    p.add_argument("--weights")

    p = sub.add_parser("weights", help="manage pretrained weights")
    wsub = p.add_subparsers(dest="wcmd", required=True)
    f = wsub.add_parser("fetch", help="download weights from their upstream URLs, verifying sha256")
    f.add_argument("methods", nargs="*", help="methods to fetch (default: all with a public download)")
    f.add_argument("--dest", help="folder (default: $URST_DASK_WEIGHTS, then the user cache)")
    f.add_argument("--mirror", help="http://host:port replacing the upstream host (mirrors, tests)")
    wsub.add_parser("where", help="print the weights folder in use")
    return ap


def _cmd_stylize(a: argparse.Namespace) -> None:
    from .api import check_export_target, export, stylize

    if a.export:  # an unusable export target is refused before the run, not after it
        check_export_target(a.export, overwrite=a.overwrite)
    out = stylize(a.content, a.style, a.out, **_run_kwargs(a))
    print(f"wrote {out}")
    if a.export:
        print(f"wrote {export(out, a.export, overwrite=a.overwrite)}")


def _cmd_export(a: argparse.Namespace) -> None:
    from .api import export

    print(f"wrote {export(a.store, a.out, overwrite=a.overwrite, compression=a.compression, tile=a.tile)}")


def _ensure_demo_weights(a: argparse.Namespace) -> None:
    """First-run convenience: with no weights configured, fetch the method's public files."""
    import os

    from .io.weights import ENV_VAR, fetch, file_status, resolve_weights_dir
    from .models import method_entry

    if a.weights or os.environ.get(ENV_VAR):
        return  # an explicit folder: use it as it is (a missing file is then a clear error)
    wdir = resolve_weights_dir(None)
    files = method_entry(a.method).weights(None)
    if any(file_status(wdir, wf) != "ok" for wf in files) and all(wf.url for wf in files):
        print(f"[urst-dask] fetching {a.method} weights into {wdir}", file=sys.stderr)
        fetch(files, wdir, log=lambda s: print(s, file=sys.stderr, flush=True))


def _cmd_demo(a: argparse.Namespace) -> None:
    from . import graph
    from .api import export, stylize
    from .synthetic import demo_style

    _ensure_demo_weights(a)
    w, h = a.size
    content = graph.synthetic_array((h, w), seed=a.seed, chunk=a.stride or TilePlan().stride)
    out = stylize(content, demo_style(768, seed=a.seed + 1), a.out, **_run_kwargs(a))
    png = Path(str(out).removesuffix(".zarr") + ".png")
    export(out, png, overwrite=True)
    print(f"wrote {out} ({w}x{h}) and {png}")


def _cmd_compare(a: argparse.Namespace) -> None:
    from .api import compare

    figures = compare(a.image, a.reference, stride=a.stride)
    print(f"seam score (stride {figures['stride']}): " + (f"{figures['seam']:.3f}" if figures["seam"] is not None
                                                          else "n/a (no tile boundary 48 px inside the image)"))
    print("  1.0: tile boundaries as smooth as the rest of the image; above ~1.1 seams start to show")
    if a.reference:
        print(f"PSNR: {figures['psnr']:.2f} dB")
        print(f"SSIM: {figures['ssim']:.4f}")


def _cmd_methods(a: argparse.Namespace) -> None:
    from .io.weights import resolve_weights_dir
    from .models import METHODS, weights_report

    wdir = resolve_weights_dir(a.weights)
    print(f"weights folder: {wdir}")
    for name, files in weights_report(wdir).items():
        ok = sum(v == "ok" for v in files.values())
        print(f"{name:10s} {ok}/{len(files)} files ok  {METHODS[name].summary}")
        for rel, status in files.items():
            if status != "ok":
                print(f"{'':10s}   {status:8s} {rel}")


def _cmd_weights(a: argparse.Namespace) -> None:
    from .io.weights import fetch, resolve_weights_dir
    from .models import METHODS, method_entry

    if a.wcmd == "where":
        print(resolve_weights_dir(None))
        return
    dest = Path(a.dest) if a.dest else resolve_weights_dir(None)
    names = a.methods or list(METHODS)
    files = []
    for n in names:
        mod = method_entry(n).load_module()
        files += [wf for wf in getattr(mod, "ALL_WEIGHTS", mod.WEIGHTS) if wf.url or a.methods]
    if not files:
        raise ParameterError(f"methods={names!r}: nothing with a public download")
    fetch(files, dest, mirror=a.mirror, log=lambda s: print(s, flush=True))
    print(f"weights in {dest}")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that a run unwinds exactly as on Ctrl-C."""


def _terminate(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM during the cleanup kills at once
    raise Terminated()


def _handle_sigterm() -> tuple[bool, object]:
    """Install :func:`_terminate` for SIGTERM; return whether it was installed (not outside the
    main thread, where Python cannot install handlers) and the handler it replaces."""
    try:
        return True, signal.signal(signal.SIGTERM, _terminate)
    except ValueError:
        return False, None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .cluster import quiet_logging

    quiet_logging(args.verbose)  # one line per failure; -v adds the workers' tracebacks
    handlers = {"stylize": _cmd_stylize, "export": _cmd_export, "demo": _cmd_demo, "compare": _cmd_compare,
                "methods": _cmd_methods,
                "weights": _cmd_weights}
    installed, previous = _handle_sigterm()
    try:
        handlers[args.cmd](args)
    except UrstError as exc:
        print(f"urst-dask: error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print("urst-dask: terminated (SIGTERM); any output store is left marked incomplete", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("urst-dask: interrupted; any output store is left marked incomplete", file=sys.stderr)
        return 130
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
