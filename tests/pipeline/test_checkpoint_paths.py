"""A checkpoint given by a relative path is the file the client checked, wherever the task runs:
the workers of a cluster run in their own folders, and re-resolved the path there (a worker in
a folder holding another ``my.pth`` ran that one, and the store recorded the first one's sha256)."""

from __future__ import annotations

import shutil

import dask
import numpy as np
import pytest

import urst_dask
from urst_dask.engine.models import ModelSpec, get_model
from urst_dask.errors import WeightsError
from urst_dask.testing import random_image


def test_a_relative_checkpoint_is_the_clients_file_where_the_task_runs(tmp_path, weights, monkeypatch):
    image = random_image(48, 64, seed=5)
    (tmp_path / "client").mkdir()
    (tmp_path / "worker").mkdir()
    shutil.copyfile(weights / "johnson" / "mosaic.pth", tmp_path / "client" / "my.pth")
    shutil.copyfile(weights / "johnson" / "candy.pth", tmp_path / "worker" / "my.pth")
    kw = dict(method="johnson", weights=weights, stride=48)
    monkeypatch.chdir(tmp_path / "client")
    lazy = urst_dask.stylize_array(image, "my.pth", **kw)
    monkeypatch.chdir(tmp_path / "worker")  # the task runs in another folder, as a worker would
    got = lazy.compute(scheduler="sync")
    mosaic = urst_dask.stylize_array(image, "mosaic", **kw).compute(scheduler="sync")
    np.testing.assert_array_equal(got, mosaic)


def test_a_worker_seeing_another_user_file_at_the_path_refuses_it(tmp_path, weights):
    """The same absolute path holding another file on a worker (another machine): refused by
    the digest the run recorded, not run."""
    ckpt = tmp_path / "my.pth"
    shutil.copyfile(weights / "johnson" / "candy.pth", ckpt)
    spec = ModelSpec("johnson", str(weights), str(ckpt), files_digest="0" * 64)
    with pytest.raises(WeightsError, match=f"weights file '{ckpt}' on this worker is not the one the run checked"):
        dask.delayed(get_model)(spec).compute(scheduler="sync")


def test_a_file_named_like_a_built_in_style_leaves_the_style_built_in(tmp_path, weights, monkeypatch):
    """A file called ``candy`` in the working folder: the run took it for a checkpoint path (the
    client had checked the built-in candy.pth; the worker refused the other file)."""
    image = random_image(48, 64, seed=5)
    kw = dict(method="johnson", weights=weights, stride=48)
    expected = urst_dask.stylize_array(image, "candy", **kw).compute(scheduler="sync")
    (tmp_path / "candy").write_text("not a checkpoint")
    monkeypatch.chdir(tmp_path)
    np.testing.assert_array_equal(urst_dask.stylize_array(image, "candy", **kw).compute(scheduler="sync"), expected)


def test_the_run_records_a_relative_checkpoint_as_typed(tmp_path, weights, client, monkeypatch):
    """The variant is recorded, and fingerprinted, as given: stores written before the workers got
    the absolute path keep their fingerprints (a rerun found "a different run")."""
    from urst_dask.io import store

    shutil.copyfile(weights / "johnson" / "mosaic.pth", tmp_path / "my.pth")
    monkeypatch.chdir(tmp_path)
    out = urst_dask.stylize(random_image(48, 64, seed=5), "my.pth", "o.zarr", method="johnson", weights=weights,
                            client=client, stride=48)
    assert store.read_attrs(out)["variant"] == "my.pth"
