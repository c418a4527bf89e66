"""Options shared by the commands that run the pipeline (``stylize``, ``demo``), and their
translation into :func:`urst_dask.api.stylize` keyword arguments."""

from __future__ import annotations

import argparse

from ..errors import ParameterError
from ..settings import Backend, ComputeOptions, DeviceKind, MemoryMode, NormMode, Precision
from ..tiling.plan import AUTO, Blend, TilePlan


def image_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size={text!r}: expected WIDTHxHEIGHT, e.g. 2400x1600") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"size={text!r}: width and height must be >= 1")
    return w, h


def add_run_options(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--margin", "--padding", dest="margin", type=margin_arg,
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
    p.add_argument("--precision", choices=[d.value for d in Precision], default="float32",
                   help="network arithmetic: float32 (default), bfloat16, float16 (CUDA), or auto (bfloat16 where "
                        "the hardware computes it natively: AMX/AVX512-BF16 CPUs, bf16 GPUs; float32 elsewhere)")
    p.add_argument("--backend", choices=[b.value for b in Backend], default=ComputeOptions().backend.value,
                   help="how workers run the window network: eager (default, PyTorch), auto (the fastest measured "
                        "for the device: OpenVINO on CPUs where installed, inductor on GPUs), inductor (torch.compile) or openvino (CPU; pip install "
                        "'urst-dask[openvino]'); a compiler that fails falls back to eager with a warning")
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
    add_storage_options(p)
    p.add_argument("--scratch", help="folder for decoded copies of PNG/JPEG inputs (default: $URST_DASK_SCRATCH, "
                                     "else <out>.scratch); removed at the end, or by the next run if killed")


def add_storage_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage-options", metavar="JSON",
                   help="fsspec options for stores at URLs (s3://, gs://, https://), one JSON object or one per "
                        "scheme, e.g. '{\"endpoint_url\": \"http://127.0.0.1:9000\"}'; default: the environment "
                        "(AWS_*, FSSPEC_S3...)")


def add_verbosity(p: argparse.ArgumentParser, default: object = argparse.SUPPRESS) -> None:
    """``-v`` and ``-q``, accepted before or after the command's name."""
    p.add_argument("-v", "--verbose", action="store_true", default=default,
                   help="more detail: the workers' tracebacks of a failure besides the one-line error, debug lines")
    p.add_argument("-q", "--quiet", action="store_true", default=default,
                   help="no status lines or progress bars: warnings, errors and the final 'wrote ...' line only")


def margin_arg(text: str) -> int | str:
    if text.strip().lower() == AUTO:
        return AUTO
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"margin={text!r}: expected a number of pixels or 'auto'") from None


def plan_kwargs(a: argparse.Namespace) -> dict:
    """The tiling options given on the command line (the rest keep TilePlan's defaults)."""
    given = {k: getattr(a, k) for k in ("stride", "margin", "blend", "align") if getattr(a, k, None) is not None}
    if getattr(a, "paper", False):
        if given:
            opts = ", ".join(f"--{k.replace('_', '-')}" if k != "align" else "--no-align" for k in given)
            raise ParameterError(f"paper: --paper fixes the geometry (stride 1000, margin 32, crop); drop {opts}")
        return {"plan": TilePlan.paper()}
    return given


def storage_options(a: argparse.Namespace) -> dict | None:
    from ..io.remote import parse_options

    return parse_options(getattr(a, "storage_options", None))


def run_kwargs(a: argparse.Namespace) -> dict:
    return dict(
        method=a.method, variant=a.variant, weights=a.weights, overwrite=a.overwrite, progress=not (a.no_progress or getattr(a, "quiet", False)), stats=a.stats,
        alpha=a.alpha, style_size=a.style_size, thumb_size=a.thumb_size, **plan_kwargs(a),
        norm=a.norm, whole=a.whole, preserve_color=a.preserve_color, intensity=a.intensity, device=a.device, precision=a.precision,
        backend=a.backend, batch=a.batch,
        workers=a.workers, threads_per_worker=a.threads_per_worker, scheduler=a.scheduler, memory=a.memory,
        connect_timeout=a.scheduler_timeout,
        axes=getattr(a, "axes", None), allow_large_images=getattr(a, "allow_large_images", False),
        scratch=getattr(a, "scratch", None), verbose=getattr(a, "verbose", False),
        storage_options=storage_options(a),
    )
