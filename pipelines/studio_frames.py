"""Studio recipe: stylize a folder of 8K frames (or a video) on one Dask cluster.

A thin layer over ``urst-dask video`` (:func:`urst_dask.video.stylize_video`), which does the
work: frames flow through one cluster with a window of frames in flight (no wait at a frame
boundary), statistics are shared per shot (``--stats-policy shot``, cuts detected from colour
histograms) or smoothed in time (``--stats-policy ema``), and a killed run resumes per frame.

    python pipelines/studio_frames.py FRAMES_DIR style.jpg OUT_DIR [--stats-policy shot|ema|per-frame]
        [--workers 2] [--scheduler tcp://host:8786] [--format png|tif|exr|jpg] [--method wct16x]

is the same as::

    urst-dask video FRAMES_DIR style.jpg -o OUT_DIR --stats-policy shot --workers 2 ...

Any other ``urst-dask video`` option is passed through as written.
"""

from __future__ import annotations

import sys

from urst_dask.cli import main as cli_main


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or args[0] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 2
    frames, style, out, rest = args[0], args[1], args[2], args[3:]
    if not any(r.startswith("--stats") for r in rest):
        rest = ["--stats-policy", "shot", *rest]
    return cli_main(["video", frames, style, "-o", out, *rest])


if __name__ == "__main__":
    sys.exit(main())
