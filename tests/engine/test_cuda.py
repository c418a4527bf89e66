"""The same networks on a CUDA GPU: the pipeline's picture matches the CPU's, autocast bf16 and
float16 hold the 35 dB bar, and inductor matches eager.  Skipped without CUDA (``-m gpu``
selects them).  No GPU has been lent to this project so far, so these have not run on one;
``URST_DASK_TEST_DEVICE=cpu`` runs their code on the CPU (float16 cases skipped) to check the
tests themselves."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import urst_dask
from urst_dask import engine
from urst_dask.engine import cache
from urst_dask.io import store
from urst_dask.preprocess import hwc_to_nchw, resize_center_crop, to_unit
from urst_dask.settings import Backend, ComputeOptions, DeviceKind, Precision, StyleOptions
from urst_dask.testing import REPO

DEVICE = os.environ.get("URST_DASK_TEST_DEVICE", "cuda")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(),
                                                  reason="no CUDA device")]
PHOTOS = REPO.parent / "shared" / "images"


def _photo(folder: str, name: str, w: int, h: int) -> np.ndarray:
    from PIL import Image

    path = PHOTOS / folder / name
    if not path.exists():
        pytest.skip(f"{path} not here (CI: ../shared/images)")
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((w, h), Image.BICUBIC))


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a.float().clamp(0, 1) - b.float().clamp(0, 1)) ** 2).item()
    return float("inf") if mse == 0 else 10 * float(np.log10(1.0 / mse))


def _prepared(weights, method: str, variant: str | None, side: int):
    """(model, style code, statistics, window) on DEVICE, for a photograph."""
    spec = engine.ModelSpec(method, str(weights), variant, DeviceKind.parse(DEVICE, "device"))
    model = engine.get_model(spec)
    dev = next(model.parameters()).device
    style = model.prepare_style(resize_center_crop(to_unit(_photo("style", "wave.jpg", 256, 256)), 256).to(dev)
                                if model.info.takes_style_image else None)
    x = hwc_to_nchw(to_unit(_photo("content", "cornell.jpg", side, side)), dev)
    with torch.inference_mode():
        _, stats = model.collect_stats(x, style)
    return model, style, stats, x


@pytest.mark.parametrize("method,variant", [("johnson", "candy"), ("wct16x", None)])
def test_the_pipeline_on_the_gpu_gives_the_cpu_picture(tmp_path, client, weights, method, variant):
    """Float32 on the GPU (cuDNN may use TF32 for convolutions) against the CPU, whole pipeline."""
    image = _photo("content", "cornell.jpg", 360, 256)
    style = variant if variant else _photo("style", "wave.jpg", 256, 256)
    got = {}
    for device in ("cpu", DEVICE):
        out = urst_dask.stylize(image, style, tmp_path / f"{device}-{method}.zarr", method=method, weights=weights,
                                client=client, device=device, stride=128)
        got[device] = store.open_output(out).compute().astype(np.int16)
    diff = np.abs(got["cpu"] - got[DEVICE])
    assert diff.mean() <= 0.5 and diff.max() <= 8, (diff.mean(), diff.max())


@pytest.mark.parametrize("prec", [Precision.BFLOAT16, Precision.FLOAT16])
def test_gpu_autocast_holds_35_db(weights, prec):
    if DEVICE == "cpu" and prec is Precision.FLOAT16:
        pytest.skip("float16 runs on CUDA only")
    model, style, stats, x = _prepared(weights, "johnson", "candy", 512)
    options = StyleOptions(alpha=1.0)
    ref = engine.forward(model, x, style, stats, options, ComputeOptions(device=DEVICE, backend=Backend.EAGER))
    low = engine.forward(model, x, style, stats, options,
                         ComputeOptions(device=DEVICE, precision=prec, backend=Backend.EAGER))
    assert torch.isfinite(low).all()
    assert _psnr(low, ref) >= 35.0


@pytest.mark.slow
def test_inductor_on_the_gpu_matches_eager(weights):
    model, style, stats, x = _prepared(weights, "johnson", "candy", 256)
    options = StyleOptions(alpha=1.0)
    cache.clear()
    ref = engine.forward(model, x, style, stats, options, ComputeOptions(device=DEVICE, backend=Backend.EAGER))
    got = engine.forward(model, x, style, stats, options, ComputeOptions(device=DEVICE, backend=Backend.INDUCTOR))
    assert cache.compile_count("inductor") == 1  # compiled, not fallen back to eager
    assert (got.clamp(0, 1) - ref.clamp(0, 1)).abs().max().item() <= 1e-3
