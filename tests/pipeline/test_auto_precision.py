"""``precision="auto"`` through the pipeline for a network that needs a bf16 probe (wct16x):
the thumbnail stage settles it once, every window runs in it, the store records it, and a
resumed run keeps it."""

from __future__ import annotations

import numpy as np
import pytest

import urst_dask
from urst_dask.engine import probe
from urst_dask.io import store
from urst_dask.pipeline import resume
from urst_dask.settings import Precision, StyleOptions
from urst_dask.testing import random_image


@pytest.fixture
def run(tmp_path, client, style_image, weights):
    def _run(image, name, **kw):
        return urst_dask.stylize(image, style_image, tmp_path / name, method="wct16x", weights=weights, client=client,
                                 backend="eager", stride=64, style_size=64, **kw)

    return _run


@pytest.fixture
def native_bf16(monkeypatch):
    monkeypatch.setattr(probe, "cpu_native_bf16", lambda: True)


@pytest.mark.parametrize("bar, want", [(-1.0, Precision.BFLOAT16), (1000.0, Precision.FLOAT32)])
def test_auto_runs_every_window_in_the_probed_precision(run, native_bf16, monkeypatch, bar, want):
    monkeypatch.setattr(probe, "PROBE_BAR_DB", bar)
    image = random_image(96, 144, seed=21)
    auto = run(image, "auto.zarr", precision="auto")
    stored = store.read_attrs(auto)["precision_auto"]
    assert stored["precision"] == want.value and stored["bar_db"] == bar
    assert isinstance(stored["probe_db"], float) and 10 < stored["probe_db"] < 200
    asked = run(image, "asked.zarr", precision=want.value)
    np.testing.assert_array_equal(store.open_output(auto).compute(), store.open_output(asked).compute())
    other = run(image, "other.zarr", precision=({Precision.BFLOAT16, Precision.FLOAT32} - {want}).pop().value)
    assert not np.array_equal(store.open_output(auto).compute(), store.open_output(other).compute())
    choice = resume.stored_conditioning(auto, StyleOptions(style_size=64))[3]
    assert choice == probe.PrecisionChoice.from_dict(stored) and choice.precision is want


def test_no_probe_without_auto_or_without_native_bf16(run, monkeypatch):
    """Without native bf16, auto is float32 with no probe, and the store says why; a named
    precision records no auto choice."""
    monkeypatch.setattr(probe, "cpu_native_bf16", lambda: False)
    image = random_image(64, 64, seed=22)
    stored = store.read_attrs(run(image, "a.zarr", precision="auto"))["precision_auto"]
    assert stored == {"precision": "float32", "probe_db": None, "bar_db": probe.PROBE_BAR_DB,
                      "reason": "no native bf16 on cpu"}
    monkeypatch.setattr(probe, "cpu_native_bf16", lambda: True)
    assert "precision_auto" not in store.read_attrs(run(image, "f.zarr", precision="float32"))


@pytest.mark.parametrize("native, want", [(True, "bfloat16"), (False, "float32")])
def test_auto_of_a_network_without_a_probe_is_recorded(tmp_path, client, weights, monkeypatch, native, want):
    """johnson keeps its picture in bf16 (no probe): auto takes bf16 where it is native, and
    the store records the precision its windows ran in (it said only 'auto')."""
    from urst_dask.engine import probe as probe_module

    monkeypatch.setattr(probe_module, "cpu_native_bf16", lambda: native)
    out = urst_dask.stylize(random_image(64, 64, seed=24), "candy", tmp_path / "j.zarr", method="johnson",
                            weights=weights, client=client, backend="eager", stride=64, precision="auto")
    stored = store.read_attrs(out)["precision_auto"]
    assert stored["precision"] == want and stored["probe_db"] is None


def test_a_tiled_thumbnail_keeps_auto_in_float32(run, native_bf16, monkeypatch):
    from urst_dask.pipeline import conditioning

    monkeypatch.setattr(conditioning, "THUMB_TILE_PIXELS", 32 * 32)
    monkeypatch.setattr(conditioning, "THUMB_TILE", 64)
    stored = store.read_attrs(run(random_image(96, 144, seed=23), "t.zarr", precision="auto"))["precision_auto"]
    assert stored["precision"] == "float32" and stored["probe_db"] is None and "tiles" in stored["reason"]
