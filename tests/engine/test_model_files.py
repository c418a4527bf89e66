"""A worker's model cache follows the weight files: a checkpoint rewritten at the same path
(retrained, say) is loaded afresh on the same long-lived workers, not served from the cache:
the cache itself (:func:`urst_dask.engine.models.get_model`) checks the files."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import urst_dask
from urst_dask.bench.random_weights import write_random
from urst_dask.engine import models
from urst_dask.errors import OutputError
from urst_dask.io import store
from urst_dask.io.digest import sha256_file
from urst_dask.io.weights import WeightFile, files_stamp
from urst_dask.testing import random_image


def test_the_stamp_follows_size_and_modification_time(tmp_path):
    f = tmp_path / "w.pth"
    f.write_bytes(b"a" * 10)
    files = [WeightFile("w.pth", "")]
    first = files_stamp(tmp_path, files)
    os.utime(f, ns=(1, 1))
    touched = files_stamp(tmp_path, files)
    f.write_bytes(b"b" * 11)
    assert len({first, touched, files_stamp(tmp_path, files)}) == 3
    assert files_stamp(tmp_path, []) == "" and files_stamp(tmp_path, [WeightFile("gone.pth", "")]) != ""


def test_a_checkpoint_rewritten_in_place_is_loaded_afresh(tmp_path, client):
    weights = write_random("adain", tmp_path / "w")
    image, style = random_image(64, 80, seed=7), random_image(64, 64, seed=8)
    kw = dict(method="adain", weights=str(weights), client=client, stride=32, margin=8, style_size=64, thumb_size=32)

    def run(name):
        return store.open_output(urst_dask.stylize(image, style, tmp_path / name, **kw)).compute()

    before = run("before.zarr")
    decoder = weights / "adain" / "decoder.pth"
    sd = torch.load(decoder, weights_only=True)
    torch.save({k: (v * 0.5 if v.is_floating_point() else v) for k, v in sd.items()}, decoder)  # "retrained"
    after = run("after.zarr")
    models._models.clear()  # what a fresh worker would load
    fresh = run("fresh.zarr")
    assert not np.array_equal(before, fresh)
    np.testing.assert_array_equal(after, fresh)
    assert sum(spec.method == "adain" for spec, _ in models._models) == 1  # the old network was dropped


def test_a_rewritten_checkpoint_is_a_different_run(tmp_path, client):
    """The fingerprint records the weight files' digests as read, not the expected ones: a store
    made with the old weights is not 'already complete' for the new ones (nor resumed)."""
    weights = write_random("adain", tmp_path / "w")
    image, style = random_image(64, 80, seed=7), random_image(64, 64, seed=8)
    kw = dict(method="adain", weights=str(weights), client=client, stride=32, margin=8, style_size=64, thumb_size=32)
    out = urst_dask.stylize(image, style, tmp_path / "o.zarr", **kw)
    decoder = weights / "adain" / "decoder.pth"
    recorded = store.read_attrs(out)["weights"]
    assert recorded["adain/decoder.pth"] == sha256_file(decoder)
    sd = torch.load(decoder, weights_only=True)
    torch.save({k: (v * 0.5 if v.is_floating_point() else v) for k, v in sd.items()}, decoder)
    with pytest.raises(OutputError, match="already exists from a different run"):
        urst_dask.stylize(image, style, tmp_path / "o.zarr", **kw)
    again = urst_dask.stylize(image, style, tmp_path / "o.zarr", overwrite=True, **kw)
    assert store.read_attrs(again)["weights"]["adain/decoder.pth"] == sha256_file(decoder)
