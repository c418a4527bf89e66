"""Shared fixtures: tiny synthetic images, the weights folder, one in-process cluster."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import toy_models  # noqa: E402

toy_models.register()

REPO = Path(__file__).resolve().parents[1]


def weights_dir() -> Path | None:
    env = os.environ.get("URST_DASK_WEIGHTS")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "weights"]:
        if cand.is_dir():
            return cand
    return None


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
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


def random_image(h: int, w: int, seed: int = 0, dtype=np.uint8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == np.float32:
        return rng.random((h, w, 3), dtype=np.float32)
    return rng.integers(0, np.iinfo(dtype).max + 1, size=(h, w, 3), dtype=dtype)


@pytest.fixture
def small_rgb() -> np.ndarray:
    return random_image(70, 90, seed=1)


@pytest.fixture(scope="session")
def style_image() -> np.ndarray:
    from urst_dask.synthetic import demo_style

    return demo_style(128, seed=3)
