"""A run on the user's own cluster leaves no scheduler plugin of its own behind."""

from __future__ import annotations

from distributed import Client, LocalCluster, get_task_stream

import urst_dask
from urst_dask.testing import random_image


def _plugins(c: Client) -> set[str]:
    return set(c.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.plugins)))


def test_the_task_stream_is_removed_unless_the_user_had_one(tmp_path, style_image):
    """The run's summary reads distributed's task stream; its plugin stayed on the user's
    scheduler and went on recording every later task of their session."""
    image = random_image(40, 50, seed=3)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        before = _plugins(c)
        assert "task-stream" not in before
        urst_dask.stylize(image, style_image, tmp_path / "a.zarr", method="passthrough", weights=tmp_path, client=c)
        assert _plugins(c) == before
        with get_task_stream(client=c):  # the user's own: kept
            pass
        urst_dask.stylize(image, style_image, tmp_path / "b.zarr", method="passthrough", weights=tmp_path, client=c)
        assert "task-stream" in _plugins(c)
