"""How well the bf16 probe of the thumbnail predicts the picture that ``precision="auto"``
then produces (:mod:`urst_dask.engine.probe`).

For each painting x photograph: the photograph is enlarged to ``--size`` (3840x2160: the 8-MP
case), its thumbnail (1024-px shorter side, box filter) gives the statistics, and the network
baked for them runs on OpenVINO, as the pipeline's windows do.  Recorded per pair:

* ``probe_db``: bf16 against the float32 thumbnail pass, on the thumbnail (what ``auto``
  measures, with its bar :data:`~urst_dask.engine.probe.PROBE_BAR_DB`);
* ``full_db``: bf16 against float32 on the whole enlarged photograph (whole-image inference,
  which the tiled output equals up to its seams);
* ``x4_*`` / ``x10_*``: single 1072-px windows of a 4x and a 10x further enlargement (the
  centre and the upper-left quarter point), where the photograph's detail is spread over many
  windows, as in a gigapixel scan.

Run: flock -x /tmp/urst-cpu.lock python benchmarks/bench_bf16_probe.py --tag=-amx
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from bench_precision_quality import SHARED, psnr
from common import record, weights_dir
from PIL import Image

from urst_dask import engine
from urst_dask.engine import backends, precision, probe
from urst_dask.engine.baked import FoldedCascade
from urst_dask.preprocess import hwc_to_nchw, resize_center_crop, to_unit
from urst_dask.settings import Backend, Precision


def tensor(im: Image.Image) -> torch.Tensor:
    return hwc_to_nchw(np.asarray(im, dtype=np.float32) / 255.0).contiguous(memory_format=torch.channels_last)


def windows(full: Image.Image, scale: int, side: int = 1072) -> dict[str, Image.Image]:
    """A ``side``-px window of ``full`` enlarged ``scale`` times, at the centre and at the
    upper-left quarter point (only the window's source region is enlarged)."""
    w, h = full.size
    s = side // scale + 1
    out = {}
    for name, (cx, cy) in {"centre": (w // 2, h // 2), "quarter": (w // 4, h // 4)}.items():
        box = (cx - s // 2, cy - s // 2, cx - s // 2 + s, cy - s // 2 + s)
        out[name] = full.crop(box).resize((s * scale, s * scale), Image.BICUBIC).crop((0, 0, side, side))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="wct16x")
    ap.add_argument("--photos", default="cornell.jpg,sailboat.jpg,flowers.jpg,modern.jpg")
    ap.add_argument("--styles", default="starry_night.jpg,composition_vii.jpg,shipwreck.jpg,the_scream.jpg,wave.jpg")
    ap.add_argument("--size", default="3840x2160")
    ap.add_argument("--scales", default="4,10")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if not backends.openvino_available():
        raise SystemExit("bench_bf16_probe: needs OpenVINO (pip install 'urst-dask[openvino]')")
    width, height = (int(v) for v in a.size.split("x"))
    thumb_shape = (round(width * 1024 / min(width, height) / 16) * 16, 1024) if width >= height else \
        (1024, round(height * 1024 / width / 16) * 16)
    model = engine.get_model(engine.ModelSpec(a.method, str(weights_dir()), None))
    ov = backends.BUILDERS[Backend.OPENVINO]

    def both(net: FoldedCascade, x: torch.Tensor) -> float:
        return psnr(ov(net, x, Precision.BFLOAT16)(x), ov(net, x, Precision.FLOAT32)(x))

    rows = []
    for style_name in a.styles.split(","):
        painting = to_unit(np.asarray(Image.open(SHARED / "style" / style_name).convert("RGB")))
        style = model.prepare_style(resize_center_crop(painting, 1024))
        for name in a.photos.split(","):
            full = Image.open(SHARED / "content" / name).convert("RGB").resize((width, height), Image.BICUBIC)
            xt = tensor(full.resize(thumb_shape, Image.BOX))
            with torch.inference_mode():
                yt, stats = model.collect_stats(xt, style)
            net = FoldedCascade(model, style, stats, 1.0).eval()
            probe_db = psnr(ov(net, xt, Precision.BFLOAT16)(xt), yt)
            row = {"style": style_name, "photo": name, "probe_db": probe_db,
                   "auto_picks": "bfloat16" if probe_db >= probe.PROBE_BAR_DB else "float32",
                   "full_db": both(net, tensor(full))}
            for k in (int(v) for v in a.scales.split(",")):
                for where, win in windows(full, k).items():
                    row[f"x{k}_{where}_db"] = both(net, tensor(win))
            rows.append(row)
            print(row, flush=True)
    picked = [r for r in rows if r["auto_picks"] == "bfloat16"]
    worst = {k: min(r[k] for r in picked) for k in rows[0] if k.endswith("_db")} if picked else {}
    record(f"bf16-probe-{a.method}{a.tag}", {
        "load_average_at_end": [round(v, 1) for v in os.getloadavg()], "native_bf16": precision.cpu_native_bf16(),
        "size": a.size, "thumbnail": list(thumb_shape), "style_size": 1024, "backend": "openvino",
        "probe_bar_db": probe.PROBE_BAR_DB, "picture_bar_db": 35.0, "rows": rows,
        "auto_picks_bf16": f"{len(picked)} of {len(rows)}", "worst_db_where_auto_picks_bf16": worst})


if __name__ == "__main__":
    main()
