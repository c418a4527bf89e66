"""``video``: stylize a frame sequence or a video file, with statistics shared over time."""

from __future__ import annotations

import argparse

from ..settings import DeviceKind, MemoryMode, Precision
from ..tiling.plan import Blend
from .options import margin_arg, plan_kwargs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("video", help="stylize a frame folder/glob, a (T, H, W, C) Zarr or a video file")
    p.add_argument("content", help="frames: a folder or glob (png/tif/jpg/exr), a .zarr (T, H, W, C), or mp4/mov/mkv")
    p.add_argument("style", help="style image")
    p.add_argument("-o", "--out", required=True, help="a frame folder, a .zarr (T, H, W, C) or a video file (.mp4...)")
    p.add_argument("--stats", default="shot", choices=["per-frame", "shot", "ema"],
                   help="statistics over time: per-frame (the paper), shot (one per shot, from a mosaic of its "
                        "frames; default) or ema (moving average of the moments, reset at cuts)")
    p.add_argument("--ema-decay", type=float, default=0.9, help="ema: weight of the past; default 0.9")
    p.add_argument("--cut-threshold", type=float, default=0.3,
                   help="colour-histogram distance (total variation, 0-1) above which a cut is detected; default 0.3")
    p.add_argument("--shot-frames", type=int, default=4, help="shot: frames in the statistics mosaic; default 4")
    p.add_argument("--window", type=int, default=3, help="frames in flight at once; default 3")
    p.add_argument("--format", help="frame folder output: png, tif, exr or jpg (default: the input's)")
    p.add_argument("--codec", default="libx264", help="video output codec (PyAV/FFmpeg name); default libx264")
    p.add_argument("--crf", type=int, default=16, help="H.264/H.265 quality (0 lossless - 51); default 16")
    p.add_argument("--pix-fmt", default="yuv420p", help="video pixel format; default yuv420p (yuv444p: full colour)")
    p.add_argument("--fps", type=float, help="frame rate of a video made from frames; default 24 (a video keeps its own)")
    p.add_argument("--method", default="wct16x", help="style network; default wct16x")
    p.add_argument("--variant")
    p.add_argument("--weights", help="weights folder (default: $URST_DASK_WEIGHTS, then the user cache)")
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--style-size", type=int, default=1024)
    p.add_argument("--thumb-size", type=int, default=1024)
    p.add_argument("--stride", type=int, help="kept centre of each window; default 1000")
    p.add_argument("--margin", type=margin_arg, help="context around a window, pixels or 'auto'")
    p.add_argument("--blend", choices=[b.value for b in Blend])
    p.add_argument("--preserve-color", action="store_true")
    p.add_argument("--device", choices=[d.value for d in DeviceKind], default="auto")
    p.add_argument("--precision", choices=[d.value for d in Precision], default="float32")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads-per-worker", type=int, default=1)
    p.add_argument("--memory", choices=[m.value for m in MemoryMode], default="fast")
    p.add_argument("--scheduler", help="an existing Dask scheduler (tcp://host:8786)")
    p.add_argument("--overwrite", action="store_true", help="replace an output of another run")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_video, align=None, paper=False)


def _cmd_video(a: argparse.Namespace) -> None:
    from ..video import stylize_video

    out = stylize_video(
        a.content, a.style, a.out, method=a.method, variant=a.variant, weights=a.weights, overwrite=a.overwrite,
        progress=not (a.no_progress or getattr(a, "quiet", False)), stats=a.stats, ema_decay=a.ema_decay, cut_threshold=a.cut_threshold,
        shot_frames=a.shot_frames, window=a.window, format=a.format, codec=a.codec, crf=a.crf, pix_fmt=a.pix_fmt,
        fps=a.fps, alpha=a.alpha, style_size=a.style_size, thumb_size=a.thumb_size, **plan_kwargs(a),
        preserve_color=a.preserve_color, device=a.device, precision=a.precision, batch=a.batch, workers=a.workers,
        threads_per_worker=a.threads_per_worker, scheduler=a.scheduler, memory=a.memory,
        verbose=getattr(a, "verbose", False))
    print(f"wrote {out}")
