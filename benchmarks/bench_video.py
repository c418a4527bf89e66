"""Video: flicker of the statistics policies, and throughput in frames per minute.

    python benchmarks/bench_video.py flicker [--size 512x288] [--method wct16x]
    flock -x /tmp/urst-cpu.lock python benchmarks/bench_video.py throughput [--frames4k 3 --frames8k 2]

``flicker``: a sequence generated from the shared photographs - a pan over a real photograph
(enlarged 2x with Lanczos, so the frames are crops of a large picture), a zoom into it, then
a cut to a pan over a second photograph - stylized with ``--stats-policy per-frame``, ``shot`` and
``ema``; the flicker (:mod:`urst_dask.metrics.flicker`) of each against the content, over the
whole sequence and per segment.  Recorded in ``results/video-flicker-<method>.json``.

``throughput``: 4K (3840x2160) and 8K (7680x4320) PNG frames (a pan over an enlarged
photograph), ``--stats-policy shot``, wall time of the whole command (probe, statistics, tiles,
writing PNGs) and the frames per minute it makes.  Recorded in
``results/video-throughput-<method>.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from common import SCRATCH, record  # noqa: E402

SHARED = Path(os.environ.get("URST_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "images"
PHOTO_A, PHOTO_B = SHARED / "content" / "cornell.jpg", SHARED / "content" / "flowers.jpg"
STYLE = SHARED / "style" / "starry_night.jpg"


def _canvas(path: Path, scale: float) -> Image.Image:
    im = Image.open(path).convert("RGB")
    return im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)


def _crop(canvas: Image.Image, x: int, y: int, w: int, h: int) -> np.ndarray:
    return np.asarray(canvas.crop((x, y, x + w, y + h)))


def _zoom(canvas: Image.Image, cx: float, cy: float, w: int, h: int, z: float) -> np.ndarray:
    bw, bh = w / z, h / z
    box = (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)
    return np.asarray(canvas.resize((w, h), Image.BICUBIC, box=box))


def make_sequence(folder: Path, w: int, h: int, pan: int = 10, zoom: int = 6, pan_b: int = 6) -> dict:
    """Pan + zoom over photograph A (enlarged 2x), cut, pan over photograph B; frames as PNG."""
    folder.mkdir(parents=True, exist_ok=True)
    a, b = _canvas(PHOTO_A, 2.0), _canvas(PHOTO_B, 2.0 * max(1.0, h / 427 / 1.6))
    frames = []
    step = max(1, min(32, (a.width - w) // (pan + 1)))
    y0 = (a.height - h) // 2
    frames += [_crop(a, step * t, y0, w, h) for t in range(pan)]
    cx, cy = step * (pan - 1) + w / 2, y0 + h / 2
    frames += [_zoom(a, cx, cy, w, h, 1.0 + 0.04 * (t + 1)) for t in range(zoom)]
    step_b = max(1, min(32, (b.width - w) // (pan_b + 1)))
    frames += [_crop(b, step_b * t, (b.height - h) // 2, w, h) for t in range(pan_b)]
    for t, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"seq_{t:04d}.png")
    return {"pan": [0, pan], "zoom": [pan, pan + zoom], "pan_b": [pan + zoom, pan + zoom + pan_b],
            "true_cuts": [pan + zoom], "frames": len(frames), "size": [w, h], "pan_step_px": step}


def _frames(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))]


def flicker_bench(a: argparse.Namespace) -> None:
    from urst_dask.metrics import flicker
    from urst_dask.video import stylize_video

    w, h = (int(v) for v in a.size.split("x"))
    root = SCRATCH / "video-flicker"
    shutil.rmtree(root, ignore_errors=True)
    seq = make_sequence(root / "in", w, h)
    content = _frames(root / "in")
    results = {}
    for policy in ("per-frame", "shot", "ema"):
        t0 = time.perf_counter()
        out = stylize_video(root / "in", STYLE, root / policy, method=a.method, stats_policy=policy, ema_decay=a.ema_decay,
                            workers=a.workers, threads_per_worker=1, progress=True)
        wall = time.perf_counter() - t0
        import json

        meta = json.loads((out / "urst_video.json").read_text())
        styl = _frames(out)
        whole = flicker(styl, content, meta["cuts"]).as_dict()
        parts = {}
        for name in ("pan", "zoom", "pan_b"):
            lo, hi = seq[name]
            parts[name] = flicker(styl[lo:hi], content[lo:hi]).as_dict()
        results[policy] = {"wall_s": round(wall, 1), "cuts": meta["cuts"], "flicker": whole, "segments": parts}
        print(f"{policy:9s} flicker {whole['flicker']:.3f} (pan {parts['pan']['flicker']:.3f}, zoom "
              f"{parts['zoom']['flicker']:.3f}, pan B {parts['pan_b']['flicker']:.3f}), cuts {meta['cuts']}, {wall:.0f} s")
    base = results["per-frame"]["flicker"]["flicker"]
    ratios = {p: round(results[p]["flicker"]["flicker"] / base, 3) for p in ("shot", "ema")}
    print(f"ratio to per-frame: {ratios} (target: shot <= 0.8)")
    record(f"video-flicker-{a.method}", {"method": a.method, "sequence": seq, "photographs": [PHOTO_A.name, PHOTO_B.name],
                                         "style": STYLE.name, "ema_decay": a.ema_decay, "policies": results,
                                         "ratio_to_per_frame": ratios, "target": "shot <= 0.8 x per-frame"})


def throughput_bench(a: argparse.Namespace) -> None:
    from urst_dask.video import stylize_video

    root = SCRATCH / "video-throughput"
    shutil.rmtree(root, ignore_errors=True)
    rows: dict = {}
    load0 = round(os.getloadavg()[0], 1)
    for label, (w, h), n in (("4K", (3840, 2160), a.frames4k), ("8K", (7680, 4320), a.frames8k)):
        if n < 1:
            continue
        canvas = _canvas(PHOTO_A, max(w / 729 * 1.1, h / 512 * 1.1))
        folder = root / f"in-{label}"
        folder.mkdir(parents=True)
        for t in range(n):
            Image.fromarray(_crop(canvas, 24 * t, 0, w, h)).save(folder / f"f{t:04d}.png", compress_level=1)
        t0 = time.perf_counter()
        stylize_video(folder, STYLE, root / f"out-{label}", method=a.method, stats_policy="shot", workers=a.workers,
                      threads_per_worker=1, in_flight=a.window, progress=True)
        wall = time.perf_counter() - t0
        rows[label] = {"size": [w, h], "frames": n, "wall_s": round(wall, 1), "frames_per_minute": round(n / wall * 60, 3),
                       "seconds_per_frame": round(wall / n, 1)}
        rows[label]["load_average_1min_after"] = round(os.getloadavg()[0], 1)
        print(f"{label}: {n} frames in {wall:.0f} s = {n / wall * 60:.2f} frames/min")
        shutil.rmtree(folder)
        record(f"video-throughput-{a.method}", {"method": a.method, "workers": a.workers, "threads_per_worker": 1,
                                                "in_flight": a.window, "stats_policy": "shot", "output": "png folder",
                                                "note": "wall time of the whole command: probe, shot statistics, tiles, "
                                                        "PNG decode/encode; " + a.note,
                                                "load_average_1min_before": load0, "results": rows})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["flicker", "throughput"])
    ap.add_argument("--method", default="wct16x")
    ap.add_argument("--size", default="512x288", help="flicker: frame WIDTHxHEIGHT")
    ap.add_argument("--ema-decay", type=float, default=0.9)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--in-flight", dest="window", type=int, default=2)
    ap.add_argument("--frames4k", type=int, default=3)
    ap.add_argument("--frames8k", type=int, default=2)
    ap.add_argument("--note", default="measured under flock -x (a quiet machine)", help="throughput: how it was run")
    a = ap.parse_args()
    flicker_bench(a) if a.what == "flicker" else throughput_bench(a)


if __name__ == "__main__":
    main()
