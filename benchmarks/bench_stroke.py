"""Stroke perceptual loss, measured: fine-tune a network with and without L_sp at equal steps,
then stylize a >= 4000 x 4000 image with each and measure the stroke size.

Phases (run them one by one so each stays short; every phase appends to the same JSON):

    python benchmarks/bench_stroke.py data                      # content/style folders in the scratch dir
    python benchmarks/bench_stroke.py train --stroke-weight 0   # baseline fine-tune (L_o only)
    python benchmarks/bench_stroke.py train --stroke-weight 1   # with L_sp
    python benchmarks/bench_stroke.py evaluate                  # losses on a fixed held-out batch
    python benchmarks/bench_stroke.py stylize                   # 4096^2 results, stroke size, crops JPEG

``--method microast|johnson`` (johnson: fine-tuned from ``--init-style``, trained towards the
painting).  Data: the photographs of ../shared/images/content, 512-px crops of their 2x
bicubic enlargements, and two synthetic images of the project's generator; style: one
painting of ../shared/images/style.  The JSON goes to results/stroke-<method>.json, the crops
to results/stroke-<method>-crops.jpg.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import RESULTS, SCRATCH, machine  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = SCRATCH / "stroke-data"
BIG = 4096


def _result_path(method: str) -> Path:
    return RESULTS / f"stroke-{method}.json"


def _load(method: str) -> dict:
    p = _result_path(method)
    return json.loads(p.read_text()) if p.exists() else {"benchmark": f"stroke-{method}", "machine": machine()}


def _save(method: str, doc: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    _result_path(method).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"recorded {_result_path(method)}")


def phase_data(a: argparse.Namespace) -> None:
    from PIL import Image

    from urst_dask.synthetic import synthetic_block

    content = DATA / "content"
    content.mkdir(parents=True, exist_ok=True)
    photos = sorted((SHARED / "images" / "content").glob("*.jpg"))
    for p in photos:
        im = Image.open(p).convert("RGB")
        im.save(content / f"{p.stem}.png")
        big = im.resize((im.width * 2, im.height * 2), Image.BICUBIC)
        for i, (x, y) in enumerate(((0, 0), (big.width - 512, big.height - 512))):
            big.crop((x, y, x + 512, y + 512)).save(content / f"{p.stem}-crop{i}.png")
    for seed in (0, 1):
        Image.fromarray(synthetic_block(0, 0, 768, 768, seed=seed)).save(content / f"synthetic-{seed}.png")
    sailboat = Image.open(SHARED / "images" / "content" / "sailboat.jpg").convert("RGB")
    sailboat.resize((BIG, BIG), Image.BICUBIC).save(DATA / f"sailboat-{BIG}.png")
    print(f"content: {len(list(content.iterdir()))} images in {content}; big input {DATA / f'sailboat-{BIG}.png'}")


def _out(a: argparse.Namespace, weight: float) -> Path:
    return DATA / f"ft-{a.method}-sp{weight:g}"


def _config(a: argparse.Namespace, weight: float, steps: int | None = None):
    from urst_dask.train import Sampling, TrainConfig

    style = str(SHARED / "images" / "style" / a.style)
    init = os.environ.get("URST_DASK_WEIGHTS", str(SHARED / "weights")) if a.method == "microast" else a.init_style
    s = a.size
    sampling = Sampling(content_short=2 * s, crop=2 * s, patch=s, thumb=s, style_short=s, style_crop=s)
    return TrainConfig(method=a.method, content=str(DATA / "content"), style=style, steps=steps or a.steps,
                       out=str(_out(a, weight)), stroke_weight=weight, batch_size=a.batch_size, init=init,
                       sampling=sampling, checkpoint_every=max(1, a.steps), log_every=1, seed=0, device="cpu", lr=a.lr)


def phase_train(a: argparse.Namespace) -> None:
    from urst_dask.train import train

    cfg = _config(a, a.stroke_weight)
    t0 = time.perf_counter()
    log: list[dict] = []
    result = train(cfg, progress=lambda e: (log.append(e), print(json.dumps(e), flush=True)))
    doc = _load(a.method)
    doc.setdefault("runs", {})[f"sp{a.stroke_weight:g}"] = {
        "stroke_weight": a.stroke_weight, "steps": result.step, "batch_size": a.batch_size,
        "sampling": {"crop": 2 * a.size, "patch": a.size, "thumb": a.size, "style": a.size},
        "style": a.style, "init": cfg.init, "lr": cfg.setting("lr"), "seconds": round(time.perf_counter() - t0, 1),
        "seconds_per_step": round(result.seconds / max(1, result.step - result.first_step), 2),
        "losses_per_step": log, "out": str(result.out),
        "note": "CPU shared with other engineers' jobs (flock -s): times include their load",
    }
    _save(a.method, doc)


def phase_evaluate(a: argparse.Namespace) -> None:
    """Losses (content, style, stroke) on one fixed batch, for the start and both fine-tunes."""
    import dataclasses

    import torch

    from urst_dask.models import load_model
    from urst_dask.train.data import ContentSampler, StyleSampler
    from urst_dask.train.forward import unfreeze
    from urst_dask.train.loop import _lossnet
    from urst_dask.train.objectives import objective

    cfg = _config(a, 1.0)
    gen = torch.Generator().manual_seed(12345)
    batch = ContentSampler(cfg.content, cfg.sampling).batch(8, gen)
    style = StyleSampler(cfg.style, cfg.sampling).batch(8, gen)
    lossnet = _lossnet(cfg)
    wdir = Path(os.environ.get("URST_DASK_WEIGHTS", str(SHARED / "weights")))
    nets = {}
    if a.method == "microast":
        nets["pretrained"] = load_model("microast", wdir)
        for w in (0.0, 1.0):
            nets[f"sp{w:g}"] = load_model("microast", _out(a, w))
    else:
        nets["pretrained"] = load_model("johnson", wdir, a.init_style)
        for w in (0.0, 1.0):
            stem = Path(a.style).stem
            nets[f"sp{w:g}"] = load_model("johnson", _out(a, w), str(_out(a, w) / "johnson" / f"{stem}.pth"))
    figures = {}
    with torch.no_grad():
        for name, net in nets.items():
            parts = objective(cfg)(unfreeze(net).eval(), lossnet, batch, style, dataclasses.replace(cfg), True)
            figures[name] = {k: float(v) for k, v in parts.items()}
            print(name, figures[name], flush=True)
    doc = _load(a.method)
    doc["eval_losses"] = {"batch": 8, "seed": 12345, "note": "L_o terms on the stylized thumbnail; stroke = L_sp "
                          "(lambda 1) on the patch; same batch for every network", **figures}
    _save(a.method, doc)


def phase_stylize(a: argparse.Namespace) -> None:
    from PIL import Image

    from urst_dask.api import compare
    from urst_dask.io import store

    big = DATA / f"sailboat-{BIG}.png"
    style = SHARED / "images" / "style" / a.style
    wdir = os.environ.get("URST_DASK_WEIGHTS", str(SHARED / "weights"))
    runs = {"pretrained": (wdir, a.init_style)}
    for w in (0.0, 1.0):
        ck = _out(a, w)
        runs[f"sp{w:g}"] = (str(ck), str(ck / "johnson" / f"{Path(a.style).stem}.pth") if a.method == "johnson" else None)
    doc = _load(a.method)
    results = doc.setdefault("stylize", {"input": f"sailboat.jpg bicubic to {BIG} x {BIG}", "style": a.style})
    crops = [np.asarray(Image.open(big).convert("RGB"))]
    labels = ["content"]
    for name, (weights, jstyle) in runs.items():
        out = DATA / f"big-{a.method}-{name}.zarr"
        if a.only and name not in a.only:  # another invocation does this one (or did it: reuse its store)
            if name in results and out.exists():
                crops.append(np.asarray(store.open_output(out)[:, :, :3].compute()))
                labels.append(name)
            continue
        cmd = [sys.executable, "-m", "urst_dask", "stylize", str(big), jstyle if a.method == "johnson" else str(style),
               "-o", str(out), "--method", a.method, "--weights", weights, "--overwrite", "--no-progress"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        seconds = time.perf_counter() - t0
        figures = compare(out)
        results[name] = {"seconds": round(seconds, 1), "stroke": figures["stroke"], "seam": figures["seam"],
                         "weights": weights}
        print(name, results[name], flush=True)
        crops.append(np.asarray(store.open_output(out)[:, :, :3].compute()))
        labels.append(name)
    results["content_stroke"] = compare(big)["stroke"]
    y, x, side = 1792, 1792, 384  # full-resolution crops, small enough to keep in git as a JPEG
    strip = np.concatenate([c[y : y + side, x : x + side] for c in crops], axis=1)
    jpg = RESULTS / f"stroke-{a.method}-crops.jpg"
    Image.fromarray(strip).save(jpg, quality=90)
    results["crops"] = {"file": jpg.name, "order": labels, "window": [y, x, side]}
    doc = _load(a.method)  # re-read: a training phase may have recorded meanwhile
    doc["stylize"] = {**doc.get("stylize", {}), **results}
    _save(a.method, doc)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("phase", choices=["data", "train", "evaluate", "stylize"])
    ap.add_argument("--method", default="microast", choices=["microast", "johnson"])
    ap.add_argument("--style", default="starry_night.jpg")
    ap.add_argument("--init-style", default="candy", help="johnson: the built-in style to fine-tune from")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--size", type=int, default=256, help="patch/thumbnail side (paper 256; crop is twice it)")
    ap.add_argument("--stroke-weight", type=float, default=1.0)
    ap.add_argument("--only", nargs="*", help="stylize: only these runs (pretrained, sp0, sp1)")
    ap.add_argument("--lr", type=float, default=None, help="default: the method's (microast 1e-4)")
    a = ap.parse_args()
    {"data": phase_data, "train": phase_train, "evaluate": phase_evaluate, "stylize": phase_stylize}[a.phase](a)


if __name__ == "__main__":
    main()
