"""``video``: stylize a frame sequence or a video file, with statistics shared over time."""

from __future__ import annotations

import argparse

from .images import cluster_starting
from .options import _add_field, _fields, add_inputs, plan_kwargs, style_arg

EXAMPLES = """Examples:
  urst-dask video frames/ starry.jpg -o out-frames/            a folder of frames, shot statistics
  urst-dask video clip.mp4 starry.jpg -o out.mp4 --crf 18      a video file, re-encoded with H.264
  urst-dask video seq.zarr starry.jpg -o out.zarr --stats-policy ema --ema-decay 0.8
  urst-dask video clip.mov starry.jpg -o out.mp4 --method adain --device cuda --batch 4
"""
# the options shared with ``stylize``, their help and defaults taken from the run configuration
SHARED = ("method", "variant", "weights", "alpha", "style_size", "thumb_size", "preserve_color", "stride", "margin",
          "blend", "device", "precision", "backend", "batch", "scheduler", "workers", "threads_per_worker", "memory")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("video", help="stylize a frame folder/glob, a (T, H, W, C) Zarr or a video file",
                       description="Stylize every frame of a sequence, tile by tile, with the normalisation "
                                   "statistics shared over time (per frame, per shot or as a moving average).",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_inputs(p, "frames: a folder or glob (png/tif/jpg/exr), a .zarr (T, H, W, C), or mp4/mov/mkv",
               "style image (video runs need a style-image method, not a baked-in style)")
    p.add_argument("-o", "--out", required=True, help="a frame folder, a .zarr (T, H, W, C) or a video file (.mp4...)")
    p.add_argument("--stats-policy", default="shot", choices=["per-frame", "shot", "ema"],
                   help="statistics over time: per-frame (the paper), shot (one per shot, from a mosaic of its "
                        "frames; default) or ema (moving average of the moments, reset at cuts)")
    # the earlier spelling, kept for scripts (stylize's --stats is a store of statistics)
    p.add_argument("--stats", dest="stats_policy", choices=["per-frame", "shot", "ema"], default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)
    p.add_argument("--ema-decay", type=float, default=0.9, help="ema: weight of the past; default 0.9")
    p.add_argument("--cut-threshold", type=float, default=0.3,
                   help="colour-histogram distance (total variation, 0-1) above which a cut is detected; default 0.3")
    p.add_argument("--shot-frames", type=int, default=4, help="shot: frames in the statistics mosaic; default 4")
    p.add_argument("--in-flight", type=int, default=3, help="frames in flight at once; default 3")
    p.add_argument("--window", dest="in_flight", type=int, default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # earlier
    p.add_argument("--format", help="frame folder output: png, tif, exr or jpg (default: the input's)")
    p.add_argument("--codec", default="libx264", help="video output codec (PyAV/FFmpeg name); default libx264")
    p.add_argument("--crf", type=int, default=16, help="H.264/H.265 quality (0 lossless - 51); default 16")
    p.add_argument("--pix-fmt", default="yuv420p", help="video pixel format; default yuv420p (yuv444p: full colour)")
    p.add_argument("--fps", type=float, help="frame rate of a video made from frames; default 24 (a video keeps its own)")
    for group, f in _fields():
        if f.name in SHARED:
            _add_field(p, group, f)
    p.add_argument("--overwrite", action="store_true", help="replace an output of another run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or status lines")
    p.set_defaults(func=_cmd_video, align=None, paper=False)


def _cmd_video(a: argparse.Namespace) -> None:
    from ..pipeline.config import RunConfig

    a.style = style_arg(a)  # refused before any worker starts
    # the worker processes start now, beside the imports of torch and the pipeline (as stylize's)
    config = RunConfig.from_kwargs(workers=a.workers, threads_per_worker=a.threads_per_worker, scheduler=a.scheduler,
                                   memory=a.memory, verbose=bool(getattr(a, "verbose", False)))
    with cluster_starting(config, a.out, a.overwrite, a.content):
        _run_video(a)


def _run_video(a: argparse.Namespace) -> None:
    from ..engine.process import freeze_gc
    from ..video import stylize_video

    freeze_gc()  # as stylize's
    out = stylize_video(
        a.content, a.style, a.out, method=a.method, variant=a.variant, weights=a.weights, overwrite=a.overwrite,
        progress=not (a.no_progress or getattr(a, "quiet", False)), stats_policy=a.stats_policy, ema_decay=a.ema_decay, cut_threshold=a.cut_threshold,
        shot_frames=a.shot_frames, in_flight=a.in_flight, format=a.format, codec=a.codec, crf=a.crf, pix_fmt=a.pix_fmt,
        fps=a.fps, alpha=a.alpha, style_size=a.style_size, thumb_size=a.thumb_size, **plan_kwargs(a),
        preserve_color=a.preserve_color, device=a.device, precision=a.precision, backend=a.backend, batch=a.batch,
        workers=a.workers,
        threads_per_worker=a.threads_per_worker, scheduler=a.scheduler, memory=a.memory,
        verbose=getattr(a, "verbose", False))
    print(f"wrote {out}")
