"""``precision="auto"`` by a bf16 probe of the thumbnail (urst_dask.engine.probe)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from urst_dask.engine import precision, probe
from urst_dask.engine.models import ModelSpec, get_model
from urst_dask.engine.probe import PrecisionChoice, choose_precision, psnr_unit, wants_probe
from urst_dask.preprocess import hwc_to_nchw, resize_center_crop, to_unit
from urst_dask.settings import ComputeOptions, Precision, StyleOptions
from urst_dask.testing import random_image


@pytest.mark.parametrize("asked, flags, method, want", [
    ("auto", {"amx_bf16"}, "wct16x", True),
    ("auto", {"avx512_bf16"}, "wct16x", True),
    ("auto", {"avx2"}, "wct16x", False),  # emulated bf16: float32, no probe
    ("auto", {"amx_bf16"}, "wct", False),  # holds in bf16 without a probe
    ("auto", {"amx_bf16"}, "microast", False),  # not probed: float32
    ("float32", {"amx_bf16"}, "wct16x", False),
    ("bfloat16", {"amx_bf16"}, "wct16x", False),  # asked for: obeyed, no probe
])
def test_only_auto_on_native_bf16_probes_the_probed_networks(monkeypatch, asked, flags, method, want):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(precision.torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert wants_probe(asked, torch.device("cpu"), method) is want


@settings(max_examples=30, deadline=None)
@given(st.floats(1e-3, 0.4), st.integers(0, 2**16))
def test_psnr_of_a_constant_offset_is_its_exact_value(offset, seed):
    ref = torch.from_numpy(np.random.default_rng(seed).uniform(0.45, 0.5, (1, 3, 8, 8)).astype(np.float32))
    assert psnr_unit(ref + offset, ref) == pytest.approx(-20 * math.log10(offset), abs=1e-3)
    assert psnr_unit(ref, ref) == math.inf


def test_psnr_clamps_to_the_unit_range():
    ref = torch.full((1, 3, 4, 4), 1.0)
    assert psnr_unit(ref + 5.0, ref) == math.inf  # above 1 is 1 in the picture


@pytest.mark.parametrize("choice", [
    PrecisionChoice(Precision.BFLOAT16, 40.5, reason="r"),
    PrecisionChoice(Precision.FLOAT32, 12.25, bar_db=39.0),
    PrecisionChoice(Precision.BFLOAT16, math.inf),
    PrecisionChoice(Precision.FLOAT32, None, reason="tiles"),
])
def test_a_choice_survives_the_store_attributes(choice):
    import json

    assert PrecisionChoice.from_dict(json.loads(json.dumps(choice.as_dict(), allow_nan=False))) == choice


@pytest.fixture(scope="module")
def wct16x_thumb(weights, style_image):
    model = get_model(ModelSpec("wct16x", str(weights)))
    style = model.prepare_style(resize_center_crop(to_unit(style_image), 128))
    x = hwc_to_nchw(to_unit(random_image(96, 128, seed=5)))
    with torch.inference_mode():
        y, stats = model.collect_stats(x, style)
    return model, x, y, style, stats


def test_the_bar_decides_between_bf16_and_float32(monkeypatch, wct16x_thumb):
    """The same probe on either side of the bar: bf16 at or above it, float32 below; the
    choice records the probe's figure and the bar."""
    model, x, y, style, stats = wct16x_thumb
    compute = ComputeOptions(precision="auto", backend="eager")
    first = choose_precision(model, x, y, style, stats, StyleOptions(), compute)
    db = first.probe_db
    assert db is not None and 10 < db < math.inf  # bf16 changes a real network's output, a little
    monkeypatch.setattr(probe, "PROBE_BAR_DB", db)
    at = choose_precision(model, x, y, style, stats, StyleOptions(), compute)
    assert (at.precision, at.probe_db, at.bar_db) == (Precision.BFLOAT16, db, db)
    monkeypatch.setattr(probe, "PROBE_BAR_DB", db + 0.01)
    above = choose_precision(model, x, y, style, stats, StyleOptions(), compute)
    assert (above.precision, above.probe_db) == (Precision.FLOAT32, db)
    assert "below the bar" in above.reason and str(db) in above.reason


def test_the_probe_measures_bf16_against_the_given_reference(wct16x_thumb):
    """Against a reference that is off by a known amount the probe reports that much less."""
    model, x, y, style, stats = wct16x_thumb
    compute = ComputeOptions(precision="auto", backend="eager")
    fair = choose_precision(model, x, y, style, stats, StyleOptions(), compute).probe_db
    off = choose_precision(model, x, (y + 0.05).clamp(0, 1), style, stats, StyleOptions(), compute).probe_db
    assert fair is not None and off is not None and off < min(fair, 27.0)


def test_inductor_windows_are_probed_on_eager(monkeypatch):
    from urst_dask.engine import run
    from urst_dask.settings import Backend

    monkeypatch.setattr(run, "resolve_backend", lambda *a, **k: Backend.INDUCTOR)
    assert probe.probe_backend(ComputeOptions(backend="inductor"), "wct16x", torch.device("cpu")) is Backend.EAGER
    monkeypatch.setattr(run, "resolve_backend", lambda *a, **k: Backend.OPENVINO)
    assert probe.probe_backend(ComputeOptions(backend="auto"), "wct16x", torch.device("cpu")) is Backend.OPENVINO


def test_the_probe_does_not_keep_its_own_network(wct16x_thumb):
    """The thumbnail's shape is compiled for the probe and dropped after it (a few hundred MB
    with OpenVINO otherwise held through the tile stage), unless a window uses that shape."""
    pytest.importorskip("openvino")
    from urst_dask.engine import backends, cache
    from urst_dask.engine.run import forward

    model, x, y, style, stats = wct16x_thumb
    compute = ComputeOptions(precision="auto", backend="openvino")
    cache.clear()
    choose_precision(model, x, y, style, stats, StyleOptions(), compute)
    assert cache.compile_count("openvino") == 1 and not cache.has_shape(tuple(x.shape))
    assert not any(k[1] == tuple(x.shape) for k in backends._ov_compiled)
    forward(model, x, style, stats, StyleOptions(), ComputeOptions(precision="bfloat16", backend="openvino"))
    choose_precision(model, x, y, style, stats, StyleOptions(), compute)
    assert cache.compile_count("openvino") == 2 and cache.has_shape(tuple(x.shape))  # a window's: kept, reused
    cache.clear()


def test_the_worst_probe_of_a_sequence_counts_nan_as_worst():
    """The video's auto precision takes its frames' worst probe: a frame whose bf16 pass gave
    NaN must win over frames that passed, whatever the order (min() with NaN keys does not)."""
    import math

    from urst_dask.engine.probe import PrecisionChoice, worst
    from urst_dask.settings import Precision

    ok = PrecisionChoice(Precision.BFLOAT16, 41.0)
    nan = PrecisionChoice(Precision.FLOAT32, math.nan)
    same = PrecisionChoice(Precision.BFLOAT16, math.inf)
    for order in ([ok, nan, same], [nan, ok, same], [same, ok, nan]):
        assert worst(order) is nan
    assert worst([same, ok]) is ok
