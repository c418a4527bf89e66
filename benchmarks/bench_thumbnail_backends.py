"""Could the thumbnail pass run through OpenVINO, as the windows do?  Time and peak memory of
a cascade's statistics pass (wct16x) at one thumbnail shape, three ways, each in a fresh
process (so that its peak RSS is its own):

* ``eager`` - PyTorch, as the pipeline runs it;
* ``ov-dynamic`` - each level's encoder and affine-and-decoder converted once with free
  height and width (one conversion for every thumbnail shape);
* ``ov-static`` - the same models reshaped to this thumbnail's shapes, compiled per shape.

``setup_s`` is the conversion (the window backend's) and compilation without any disk cache (the pipeline would keep
the converted models on disk, as it does the window networks').

The pass is the pipeline's: per level, encode, float64 moments, whitening (the thumbnail's)
and colouring (the style's) folded into one 1x1 map, decode.  The statistics of each way are
compared with eager's.  The thumbnail is a real photograph resized to the shape.

    python benchmarks/bench_thumbnail_backends.py --shape 1024x1824 --repeat 3
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import record, weights_dir

PHOTO = Path(__file__).resolve().parents[2] / "shared" / "images" / "content" / "cornell.jpg"
STYLE = Path(__file__).resolve().parents[2] / "shared" / "images" / "style" / "starry_night.jpg"


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


def _image(path: Path, h: int, w: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((w, h), Image.BICUBIC), dtype=np.float32) / 255


class _OpenVinoLevels:
    """Per level: (encode, decode) compiled OpenVINO networks, dynamic or static in H and W."""

    def __init__(self, model, x, static: bool) -> None:  # noqa: ANN001
        import openvino as ov
        import torch

        from urst_dask.engine.backends import _convert  # the window backend's tracing and conversion

        core = ov.Core()

        def compile_cpu(model):  # noqa: ANN001, ANN202
            return core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
                                                     "INFERENCE_NUM_THREADS": torch.get_num_threads()})

        class AffineDecoder(torch.nn.Module):
            def __init__(self, decoder: torch.nn.Module) -> None:
                super().__init__()
                self.decoder = decoder

            def forward(self, f, a, b):  # noqa: ANN001, ANN201
                return self.decoder(torch.nn.functional.conv2d(f, a, b))

        self.levels = []
        small = torch.rand(1, 3, 32, 32)
        with torch.inference_mode():
            for k in model.levels:
                enc, dec = model.encoders[str(k)], model.decoders[str(k)]
                f_small = enc(small)
                c, down = f_small.shape[1], 32 // f_small.shape[-1]
                eye, zero = torch.eye(c)[:, :, None, None], torch.zeros(c)
                me = _convert(ov, enc, (small,))
                md = _convert(ov, AffineDecoder(dec), (f_small, eye, zero))
                first_e = list(x.shape) if static else [1, 3, -1, -1]
                first_d = [1, c, x.shape[-2] // down, x.shape[-1] // down] if static else [1, c, -1, -1]
                me.reshape({me.inputs[0]: ov.PartialShape(first_e)})
                md.reshape({md.inputs[0]: ov.PartialShape(first_d), md.inputs[1]: ov.PartialShape([c, c, 1, 1]),
                            md.inputs[2]: ov.PartialShape([c])})
                self.levels.append((compile_cpu(me), compile_cpu(md)))

    @staticmethod
    def _infer(compiled, *inputs):  # noqa: ANN001, ANN205
        import torch

        req = compiled.create_infer_request()
        req.infer(dict(enumerate(inputs)))
        return torch.from_numpy(req.get_output_tensor(0).data.copy())

    def encode(self, i: int, x):  # noqa: ANN001, ANN201
        return self._infer(self.levels[i][0], x.contiguous().numpy())

    def decode(self, i: int, f, a, b):  # noqa: ANN001, ANN201
        w = a.float()[:, :, None, None].contiguous().numpy()
        return self._infer(self.levels[i][1], f.contiguous().numpy(), w, b.float().contiguous().numpy())


def _pass(model, x, style, encode, decode) -> dict:  # noqa: ANN001
    from urst_dask import kernels
    from urst_dask.models.cascade import whitening_from_moments

    stats = {}
    for i, k in enumerate(model.levels):
        f = encode(i, x)
        content = whitening_from_moments(*kernels.feature_moments(f))
        stats[f"level{k}"] = {n: v.numpy() for n, v in content.items()}
        st = style.tensors(f"level{k}")
        a, b = kernels.wct_affine(content["mean"], content["whiten"], st["mean"], st["colour"], 1.0)
        x = decode(i, f, a, b)
    return stats


def one(mode: str, h: int, w: int, repeat: int) -> dict:
    import torch

    from urst_dask import kernels
    from urst_dask.engine import ModelSpec, get_model
    from urst_dask.engine.process import trim_heap

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    model = get_model(ModelSpec("wct16x", str(weights_dir())))
    style = model.prepare_style(torch.from_numpy(_image(STYLE, 512, 512)).permute(2, 0, 1)[None].contiguous())
    x = torch.from_numpy(_image(PHOTO, h, w)).permute(2, 0, 1)[None].contiguous()
    gc.collect()
    trim_heap()
    rss0 = _status("VmRSS")
    t0 = time.perf_counter()
    with torch.inference_mode():
        if mode == "eager":
            def encode(i, x):  # noqa: ANN001, ANN202
                return model.encoders[str(model.levels[i])](x)

            def decode(i, f, a, b):  # noqa: ANN001, ANN202
                return model.decoders[str(model.levels[i])](kernels.apply_channel_affine(f, a, b))
        else:
            ov_levels = _OpenVinoLevels(model, x, static=mode == "ov-static")
            encode, decode = ov_levels.encode, ov_levels.decode
        setup = time.perf_counter() - t0
        times, stats = [], {}
        for _ in range(repeat):
            t1 = time.perf_counter()
            stats = _pass(model, x, style, encode, decode)
            times.append(time.perf_counter() - t1)
    gc.collect()
    trim_heap()
    return {"mode": mode, "shape": [h, w], "setup_s": round(setup, 2), "pass_s": [round(t, 2) for t in times],
            "rss_before_mb": round(rss0, 1), "peak_rss_mb": round(_status("VmHWM"), 1),
            "rss_after_mb": round(_status("VmRSS"), 1),
            "stats": {p: {n: v.tolist() for n, v in d.items()} for p, d in stats.items()}}


def _max_rel(a: dict, b: dict) -> float:
    worst = 0.0
    for p in b:
        for n in b[p]:
            x, y = np.asarray(a[p][n]), np.asarray(b[p][n])
            worst = max(worst, float(np.abs(x - y).max() / max(np.abs(y).max(), 1e-30)))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="1024x1824", help="thumbnail HxW (the 3840x2160 photograph's: 1024x1824)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--modes", default="eager,ov-dynamic,ov-static")
    ap.add_argument("--one", default=None, help="run one mode in this process (JSON on stdout)")
    ap.add_argument("--name", default="thumbnail-backends-wct16x")
    a = ap.parse_args()
    h, w = (int(v) for v in a.shape.split("x"))
    if a.one:
        print(json.dumps(one(a.one, h, w, a.repeat)))
        return
    rows = []
    for mode in a.modes.split(","):
        cmd = [sys.executable, __file__, "--one", mode, "--shape", a.shape, "--repeat", str(a.repeat)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    ref = next((r["stats"] for r in rows if r["mode"] == "eager"), None)
    for r in rows:
        stats = r.pop("stats")
        r["stats_max_rel_diff_vs_eager"] = None if ref is None else _max_rel(stats, ref)
        print(r, flush=True)
    record(a.name, {"runs": rows, "method": "wct16x", "content": str(PHOTO), "style": str(STYLE)})


if __name__ == "__main__":
    main()
