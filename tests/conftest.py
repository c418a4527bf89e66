"""Shared fixtures: tiny synthetic images, the weights folder, one in-process cluster."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from urst_dask.testing import random_image, toys, weights_dir

toys.register()

# every test encodes its styles (a test that counts, breaks or times the encoding must see it
# run); tests/io/test_stylecache.py turns the style cache on where it is the subject
os.environ["URST_DASK_STYLE_CACHE"] = "0"


@pytest.fixture(scope="session")
def weights() -> Path:
    w = weights_dir()
    if w is None:
        pytest.skip("no weights: set URST_DASK_WEIGHTS (CI uses ../shared/weights)")
    return w


@pytest.fixture(scope="session")
def client():
    """One in-process cluster (threads) for the whole session: fast, and it shares the
    test process's registry (so the toy networks are known to its workers)."""
    import dask
    from distributed import Client, LocalCluster

    from urst_dask.pipeline.cluster import NO_PROFILER

    with dask.config.set(NO_PROFILER), \
            LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


@pytest.fixture
def no_early_start(monkeypatch):
    """The embedded cluster starts when the run connects, not early beside the imports.

    For tables of bad input: most rows fail before any worker is needed, and an early start would
    spend 2-3 s per row starting and closing worker processes that the row never uses.  What the
    early start does on bad input (it is closed, nothing is left running) is tested on its own
    in ``tests/pipeline/test_early_cluster.py``."""
    from urst_dask import api
    from urst_dask.pipeline import earlystart

    monkeypatch.setattr(earlystart, "prestart", lambda options: None)
    monkeypatch.setattr(api, "start_early", lambda options, client=None, *, new=True: None)


@pytest.fixture
def small_rgb() -> np.ndarray:
    return random_image(70, 90, seed=1)


@pytest.fixture(scope="session")
def style_image() -> np.ndarray:
    from urst_dask.synthetic import demo_style

    return demo_style(128, seed=3)


@pytest.fixture
def run(tmp_path, client, style_image):
    """``run(content, out, **settings)``: stylize on the in-process cluster, with the toy
    ``identity`` network at stride 32 and margin 4 unless told otherwise."""
    import urst_dask

    def _run(content, out, **kw):
        kw.setdefault("method", "identity")
        kw.setdefault("stride", 32)
        kw.setdefault("margin", 4)
        return urst_dask.stylize(content, style_image, out, weights=tmp_path, client=client, **kw)

    return _run
