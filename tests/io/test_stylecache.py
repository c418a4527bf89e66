"""The on-disk style cache: a style encoded once is read back, identical, by the next run; any
change of network, weights, size or pixels is a miss; damage and unwritable folders only cost
an encoding."""

from __future__ import annotations

import numpy as np
import pytest

from urst_dask.engine.models import ModelSpec, get_model, weights_token
from urst_dask.io import stylecache
from urst_dask.pipeline.conditioning import _prepare_style
from urst_dask.testing import random_image


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("URST_DASK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("URST_DASK_STYLE_CACHE", "1")
    return tmp_path / "cache" / "styles"


@pytest.fixture
def counted(monkeypatch, weights):
    """wct16x with its ``prepare_style`` counted."""
    spec = ModelSpec("wct16x", str(weights))
    model = get_model(spec)
    calls = []
    original = type(model).prepare_style

    def counting(self, style):
        calls.append(None if style is None else tuple(style.shape))
        return original(self, style)

    monkeypatch.setattr(type(model), "prepare_style", counting)
    return spec, calls


def test_a_style_encoded_once_is_read_back_identical(cache, counted):
    spec, calls = counted
    style = random_image(90, 110, seed=3)
    first = _prepare_style(spec, style, 64)
    second = _prepare_style(spec, style, 64)
    assert len(calls) == 1 and len(list(cache.glob("*.npz"))) == 1
    assert second == first and second.token() == first.token()  # byte for byte
    for point in first:
        for field, value in first[point].items():
            assert second[point][field].dtype == value.dtype


@pytest.mark.parametrize("change", ["size", "pixels"])
def test_a_different_size_or_image_is_a_miss(cache, counted, change):
    spec, calls = counted
    style = random_image(90, 110, seed=3)
    _prepare_style(spec, style, 64)
    other = style.copy()
    if change == "pixels":
        other[0, 0, 0] ^= 1
    _prepare_style(spec, other, 64 if change == "pixels" else 80)
    assert len(calls) == 2


def test_the_key_names_the_weights(weights):
    style = random_image(20, 20, seed=1)
    a = stylecache.style_key(weights_token(ModelSpec("wct16x", str(weights))), 64, style)
    b = stylecache.style_key(weights_token(ModelSpec("wct", str(weights), variant="3")), 64, style)
    assert a != b and len(a) == 64


def test_a_damaged_entry_is_encoded_again(cache, counted):
    spec, calls = counted
    style = random_image(90, 110, seed=5)
    want = _prepare_style(spec, style, 64)
    (entry,) = cache.glob("*.npz")
    entry.write_bytes(b"not a zip")
    assert _prepare_style(spec, style, 64) == want and len(calls) == 2


def test_an_unwritable_cache_only_costs_an_encoding(tmp_path, monkeypatch, counted):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("URST_DASK_CACHE", str(blocker))
    monkeypatch.setenv("URST_DASK_STYLE_CACHE", "1")
    spec, calls = counted
    style = random_image(90, 110, seed=6)
    assert _prepare_style(spec, style, 64) == _prepare_style(spec, style, 64)
    assert len(calls) == 2


def test_turned_off_it_neither_reads_nor_writes(cache, monkeypatch, counted):
    monkeypatch.setenv("URST_DASK_STYLE_CACHE", "0")
    spec, calls = counted
    style = random_image(90, 110, seed=7)
    _prepare_style(spec, style, 64)
    _prepare_style(spec, style, 64)
    assert len(calls) == 2 and not cache.exists()


def test_a_stored_code_round_trips_through_npz(cache):
    from urst_dask.stats import StyleCode

    code = StyleCode.build("x", {"level1": {"mean": np.arange(3.0), "colour": np.eye(3, dtype=np.float32)}})
    stylecache.save("k", code)
    back = stylecache.load("k")
    assert back == code and back["level1"]["colour"].dtype == np.float32
