"""`urst-dask video` end to end on a short clip, two versions of the code alternated in one
sitting: what a studio's one-command-per-clip run waits for around its windows.

The clip (made once under $URST_BENCH_SCRATCH): 8 frames of 1280 x 720 H.264, a pan across the
3840 x 2160 photograph of ../shared/images/content/cornell.jpg upscaled (see the README's
benchmark inputs).  Each run is a fresh `python -m urst_dask video CLIP wave.jpg -o out.zarr`
with PYTHONPATH at the version's worktree.

Run: cd benchmarks && python bench_video_start.py --old /tmp/wt-old --new /tmp/wt-new --rounds 2 --tag=-early
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import SCRATCH, record

SHARED = Path(__file__).resolve().parents[2] / "shared"


def make_clip(photo: Path, frames: int = 8) -> Path:
    import av
    import numpy as np
    from PIL import Image

    clip = SCRATCH / f"pan-1280x720-{frames}.mp4"
    if clip.exists():
        return clip
    im = Image.open(photo).convert("RGB")
    if im.size != (3840, 2160):
        im = im.resize((3840, 2160), Image.BICUBIC)
    with av.open(str(clip), "w") as box:
        st = box.add_stream("libx264", rate=24)
        st.width, st.height, st.pix_fmt = 1280, 720, "yuv420p"
        for t in range(frames):
            frame = np.asarray(im.crop((800 + 20 * t, 600, 2080 + 20 * t, 1320)))
            for pkt in st.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                box.mux(pkt)
        for pkt in st.encode():
            box.mux(pkt)
    return clip


def one_run(code: str, clip: Path, style: Path, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "urst_dask", "video", str(clip), str(style), "-o", str(out), "--no-progress"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=code), cwd=SCRATCH)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{code}: exit {proc.returncode}: {proc.stderr[-2000:]}")
    return {"code": code, "wall_s": round(wall, 2), "command": " ".join(cmd)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True, help="worktree of the commit to compare against")
    ap.add_argument("--new", required=True, help="worktree of the commit measured")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--style", default=str(SHARED / "images" / "style" / "wave.jpg"))
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    SCRATCH.mkdir(parents=True, exist_ok=True)
    clip = make_clip(SHARED / "images" / "content" / "cornell.jpg", a.frames)
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    for r in range(a.rounds):
        for side in ("old", "new"):
            res = one_run(getattr(a, side), clip, Path(a.style), SCRATCH / "video-start-out.zarr")
            runs[side].append(res)
            print(f"round {r + 1} {side}: {res['wall_s']:.2f} s", flush=True)
    record(f"video-start{a.tag}", {"clip": str(clip), "frames": a.frames, "size": [1280, 720], "style": a.style,
                                   "runs": runs, "load_average_at_end": [round(v, 1) for v in os.getloadavg()]})


if __name__ == "__main__":
    main()
