"""The napari reader (``urst_dask/napari.yaml`` -> :func:`urst_dask.io.napari.napari_get_reader`),
exercised without napari: it returns plain layer data."""

from __future__ import annotations

import importlib
import sys
import tomllib
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import zarr

import urst_dask
from urst_dask.errors import OutputError
from urst_dask.io import store
from urst_dask.io.napari import napari_get_reader
from urst_dask.testing import random_image

PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"


def test_an_output_store_opens_as_a_multiscale_rgb_layer(tmp_path, run):
    out = run(random_image(300, 400, seed=21), tmp_path / "out.zarr", stride=100)  # 12 windows: a 2-level pyramid
    reader = napari_get_reader(str(out))
    assert callable(reader)
    [(levels, kwargs, kind)] = reader(str(out))
    assert kind == "image"
    assert kwargs["multiscale"] is True and kwargs["rgb"] is True and kwargs["name"] == "out"
    assert kwargs["contrast_limits"] == (0, 255)
    assert len(levels) >= 2 and all(isinstance(lv, da.Array) for lv in levels)  # the stored NGFF pyramid
    np.testing.assert_array_equal(levels[0].compute(), store.open_output(out).compute())
    for big, small in zip(levels, levels[1:]):  # largest first, each a smaller (h, w, C) level
        assert small.shape[2] == big.shape[2] and small.shape[0] <= big.shape[0] and small.shape[1] <= big.shape[1]
    assert [(lv, kw, k) for lv, kw, k in napari_get_reader([str(out)])(str(out))][0][1] == kwargs  # a list of one path
    assert "napari" not in sys.modules  # napari itself is never imported


def test_float_output_of_a_percentile_run_shows_its_recorded_range(tmp_path, run):
    """A float scan mapped with --intensity percentile keeps its own range in the output: the
    layer's contrast limits are that range, not [0, 1] (which showed it saturated)."""
    scan = (random_image(64, 96, seed=23).astype(np.float32) / 255.0) * 800.0 - 150.0
    out = run(scan, tmp_path / "f.zarr", intensity="percentile:0,100")
    [(levels, kwargs, _)] = napari_get_reader(str(out))(str(out))
    lo, hi = store.read_attrs(out)["intensity"]["range_in_dtype"]
    assert kwargs["contrast_limits"] == (lo, hi) and lo < 0 < 1 < hi


def test_an_incomplete_store_is_refused_when_read(tmp_path, run):
    out = run(random_image(40, 50, seed=22), tmp_path / "half.zarr")
    group = zarr.open_group(str(out), mode="r+")
    meta = dict(group.attrs[store.ATTR])
    group.attrs[store.ATTR] = {**meta, "status": "running"}
    reader = napari_get_reader(str(out))
    assert reader is not None
    with pytest.raises(OutputError, match="incomplete"):
        reader(str(out))


def test_a_gray_zarr_image_is_a_2d_layer_with_its_pixel_size(tmp_path):
    img = (np.arange(48 * 64, dtype=np.uint16).reshape(48, 64) * 7)
    zarr.save_array(str(tmp_path / "gray.zarr"), img)
    [(levels, kwargs, _)] = napari_get_reader(str(tmp_path / "gray.zarr"))(str(tmp_path / "gray.zarr"))
    assert kwargs["rgb"] is False and kwargs["contrast_limits"] == (0, 65535) and "scale" not in kwargs
    assert [lv.shape for lv in levels] == [(48, 64)]
    np.testing.assert_array_equal(levels[0].compute(), img)


def test_what_it_does_not_read_goes_to_other_readers(tmp_path):
    (tmp_path / "x.png").write_bytes(b"not a store")
    (tmp_path / "plain").mkdir()
    zarr.save_array(str(tmp_path / "video.zarr"), np.zeros((5, 8, 8, 3), np.uint8))  # (T, H, W, C): not one image
    for path in (tmp_path / "x.png", tmp_path / "plain", tmp_path / "missing.zarr", tmp_path / "video.zarr"):
        assert napari_get_reader(str(path)) is None, path
    assert napari_get_reader([str(tmp_path / "a.zarr"), str(tmp_path / "b.zarr")]) is None
    assert napari_get_reader(42) is None


def test_the_manifest_is_registered_and_packaged():
    yaml = pytest.importorskip("yaml")
    project = tomllib.loads(PYPROJECT.read_text())
    assert project["project"]["entry-points"]["napari.manifest"] == {"urst-dask": "urst_dask:napari.yaml"}
    assert "napari.yaml" in project["tool"]["setuptools"]["package-data"]["urst_dask"]
    assert project["project"]["optional-dependencies"]["napari"]
    assert not any(dep.startswith("napari") for dep in project["project"]["optional-dependencies"]["test"])
    manifest = yaml.safe_load((Path(urst_dask.__file__).parent / "napari.yaml").read_text())
    assert manifest["name"] == project["project"]["name"]
    commands = {c["id"]: c["python_name"] for c in manifest["contributions"]["commands"]}
    for reader in manifest["contributions"]["readers"]:
        module, _, name = commands[reader["command"]].partition(":")
        assert getattr(importlib.import_module(module), name) is napari_get_reader
        assert reader["accepts_directories"] is True
