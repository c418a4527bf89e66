"""OpenVINO converts a cascaded WCT once per machine, whatever the window shape: every shape is
a reshape of that one graph, cached on disk, and gives eager's pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from urst_dask import engine
from urst_dask.engine import backends, baked
from urst_dask.io import ovcache
from urst_dask.preprocess import hwc_to_nchw, resize_center_crop, to_unit
from urst_dask.settings import Precision
from urst_dask.testing import random_image

pytestmark = pytest.mark.skipif(not backends.openvino_available(), reason="openvino not installed")


@pytest.fixture
def folded(weights):
    model = engine.get_model(engine.ModelSpec("wct16x", str(weights)))
    style = model.prepare_style(resize_center_crop(to_unit(random_image(96, 96, seed=1)), 64))
    with torch.inference_mode():
        _, stats = model.collect_stats(hwc_to_nchw(to_unit(random_image(64, 96, seed=2))), style)
    return baked.bake(model, style, stats, 1.0)


@pytest.fixture
def conversions(monkeypatch, tmp_path):
    """Counts real conversions; the disk cache in tmp_path, the in-process one emptied."""
    monkeypatch.setenv("URST_DASK_CACHE", str(tmp_path))
    monkeypatch.setattr(backends, "_ov_compiled", {})
    calls: list[tuple[int, ...]] = []
    real = backends._convert

    def counting(ov, net, inputs):  # noqa: ANN001
        calls.append(tuple(inputs[0].shape))
        return real(ov, net, inputs)

    monkeypatch.setattr(backends, "_convert", counting)
    return calls


def _window(h: int, w: int, seed: int) -> torch.Tensor:
    return hwc_to_nchw(to_unit(random_image(h, w, seed=seed))).contiguous()


def _openvino(folded: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return backends.build_runner(engine.backends.Backend.OPENVINO, folded, x, Precision.FLOAT32)(x)


def _eager(folded: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return folded(x.contiguous(memory_format=torch.channels_last))


# Small windows: float32 convolution kernels of OpenVINO and PyTorch differ by ~1e-4 there (a
# cascaded WCT amplifies rounding; tests/engine/test_engine.py::assert_float32_agrees), so the
# bar against eager only catches a wrong graph; against a conversion made for the shape itself
# (the same kernels) the reshaped graph must agree to float32 rounding.
EAGER_BAR, CONVERSION_BAR = 2e-3, 1e-6


def test_one_conversion_serves_every_window_shape(folded, conversions, monkeypatch, tmp_path):
    shapes = [(96, 96), (96, 64), (64, 96), (48, 48)]  # a full window, right and bottom edges, a corner
    windows = [_window(h, w, seed=10 + i) for i, (h, w) in enumerate(shapes)]
    reshaped = [_openvino(folded, x) for x in windows]
    assert conversions == [(1, 3, 96, 96)]  # the first shape converted; the others reshaped
    assert len(list((tmp_path / "openvino").glob("*.xml"))) == 1
    for i, (x, got) in enumerate(zip(windows, reshaped)):
        assert got.shape == (1, 3) + shapes[i]
        assert (got.clamp(0, 1) - _eager(folded, x).clamp(0, 1)).abs().max().item() <= EAGER_BAR, shapes[i]
    for i in (1, 3):  # an edge and the corner, each also converted for its own shape (3 s a conversion)
        monkeypatch.setenv("URST_DASK_CACHE", str(tmp_path / f"fresh-{i}"))
        monkeypatch.setattr(backends, "_ov_compiled", {})
        direct = _openvino(folded, windows[i])
        assert (reshaped[i] - direct).abs().max().item() <= CONVERSION_BAR, shapes[i]
    assert conversions == [(1, 3, 96, 96), (1, 3, 96, 64), (1, 3, 48, 48)]


def test_a_later_process_reads_the_conversion_from_disk(folded, conversions, monkeypatch):
    _openvino(folded, _window(64, 64, seed=3))
    monkeypatch.setattr(backends, "_ov_compiled", {})  # as a new process: nothing compiled in memory
    y = _window(80, 48, seed=4)
    got = _openvino(folded, y)
    assert conversions == [(1, 3, 64, 64)]
    assert np.abs((got.clamp(0, 1) - _eager(folded, y).clamp(0, 1)).numpy()).max() <= EAGER_BAR


def test_other_network_code_is_converted_again(folded, conversions, monkeypatch):
    """The disk cache is keyed by the code that defines the network too: after an upgrade (here:
    another digest of the network's modules) the old graph is not read back."""
    _openvino(folded, _window(64, 64, seed=3))
    monkeypatch.setattr(backends, "_ov_compiled", {})
    monkeypatch.setattr(backends, "code_digest", lambda net: "other code")
    _openvino(folded, _window(64, 64, seed=3))
    assert conversions == [(1, 3, 64, 64), (1, 3, 64, 64)]


def test_code_digest_follows_a_layer_modules_source(tmp_path, monkeypatch):
    import importlib

    source = tmp_path / "plugin_layer.py"
    source.write_text("import torch\nclass Layer(torch.nn.Module):\n    def forward(self, x):\n        return x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("plugin_layer")
    first = backends.code_digest(torch.nn.Sequential(module.Layer()))
    source.write_text(source.read_text().replace("return x", "return 2 * x"))
    ovcache.files_digest.cache_clear()  # a new process would read the files afresh
    assert backends.code_digest(torch.nn.Sequential(module.Layer())) != first


class _Model:
    """Stands in for an OpenVINO model whose graph may refuse a new shape."""

    def __init__(self, refuses: bool) -> None:
        self.refuses, self.inputs, self.shapes = refuses, ["x"], None

    def reshape(self, shapes) -> None:  # noqa: ANN001
        if self.refuses:
            raise RuntimeError("shape inference failed")
        self.shapes = shapes


class _FakeOv:
    """The part of the openvino module ``_converted`` uses; what it reads back refuses new shapes."""

    __version__ = "fake"

    @staticmethod
    def Core():  # noqa: N802 - openvino's name
        return type("Core", (), {"read_model": lambda self, path: _Model(refuses=True)})()

    @staticmethod
    def PartialShape(dims):  # noqa: N802, ANN001
        return tuple(dims)

    @staticmethod
    def save_model(model, path: str, compress_to_fp16: bool) -> None:  # noqa: ANN001
        Path(path).write_text("<stored/>")
        Path(path).with_suffix(".bin").write_bytes(b"")


def test_a_stored_graph_that_refuses_the_shape_costs_a_conversion_not_the_run(folded, monkeypatch, tmp_path):
    monkeypatch.setenv("URST_DASK_CACHE", str(tmp_path))
    made: list[_Model] = []
    monkeypatch.setattr(backends, "_convert", lambda ov, net, inputs: made.append(_Model(refuses=False)) or made[-1])
    first, _ = backends._converted(_FakeOv(), folded, _window(40, 40, seed=5))
    assert made == [first] and len(list((tmp_path / "openvino").glob("*.xml"))) == 1  # converted and stored
    model, extra = backends._converted(_FakeOv(), folded, _window(48, 32, seed=6))  # read back: refuses
    assert len(made) == 2 and model is made[1]
    assert model.shapes["x"] == (1, 3, 48, 32)
    assert len(extra) == 2 * len(folded.levels)


def test_compiled_networks_kept_in_memory_are_bounded(folded, conversions, monkeypatch):
    """A long-lived worker meeting many window shapes keeps at most OV_COMPILED_MAX compiled
    networks (each holds its activation memory), dropping the least recently used."""
    monkeypatch.setattr(backends, "OV_COMPILED_MAX", 2)
    for side in (32, 48, 32, 64):
        _openvino(folded, _window(side, side, seed=side))
    assert [k[1][2:] for k in backends._ov_compiled] == [(32, 32), (64, 64)]  # 48 least recently used: gone
