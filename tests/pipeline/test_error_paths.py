"""Failure paths beyond the error table (tests/test_error_table.py): Ctrl-C on a running
command, ``-v/--verbose`` bringing a worker's error detail back, a TIFF whose tile is damaged
(read inside a worker process), and a full disk while the output store is created or marked
complete.  Each ends in one ``urst-dask:`` line (or one :class:`UrstError`), never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import zarr
from PIL import Image

import urst_dask
from urst_dask.errors import OutputError, UrstError
from urst_dask.io import store
from urst_dask.testing import REPO, random_image

TESTS = Path(__file__).resolve().parent

DRIVER = """
import sys
from urst_dask.testing import slow as toy_slow
from urst_dask.testing import toys as toy_models
toy_models.register()
toy_slow.register()
from urst_dask.cli import main
sys.exit(main(sys.argv[1:]))
"""


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: the repository and the tests folder importable, the
    toy networks preloaded into the local cluster's worker processes."""
    path = os.pathsep.join(p for p in (str(REPO), str(TESTS), os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, PYTHONPATH=path, DASK_DISTRIBUTED__WORKER__PRELOAD=json.dumps(["urst_dask.testing.preload"]),
                **extra)


def run_cli(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m urst_dask.cli ARGV`` to its end, in its own session."""
    return subprocess.run([sys.executable, "-m", "urst_dask.cli", *argv], capture_output=True, text=True,
                          timeout=240, env=cli_env(), cwd=cwd, stdin=subprocess.DEVNULL, start_new_session=True)


def nonblank(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def one_error_line(err: str) -> str:
    """The single ``urst-dask: error:`` line of a run that printed nothing else on stderr."""
    assert "Traceback" not in err and "Compute Failed" not in err, err
    lines = nonblank(err)
    assert len(lines) == 1 and lines[0].startswith("urst-dask: error: "), err
    return lines[0]


@pytest.fixture
def pngs(tmp_path: Path) -> Path:
    Image.fromarray(random_image(128, 128, seed=14)).save(tmp_path / "c.png")
    Image.fromarray(random_image(64, 64, seed=15)).save(tmp_path / "s.png")
    return tmp_path


# ------------------------------------------------------------------------------ 1. Ctrl-C


def test_ctrl_c_is_one_line_and_exit_130(pngs: Path) -> None:
    """The CLI in its own session on a PNG with the slow toy network (1 s per window, 16
    windows); SIGINT to the whole process group, as a terminal's Ctrl-C sends it, once the
    tile stage has written its first chunk.  Exit status 130, one ``urst-dask:`` line on
    stderr and no traceback, ``AllExit`` or ``Compute Failed`` from the client, the nanny or
    the worker; the store stays ``running``."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # pytest started as a background job (`cmd &`)
        pytest.skip("SIGINT is ignored in this process (a background job): the CLI would inherit that and rightly "
                    "ignore Ctrl-C; run pytest in the foreground")
    out = pngs / "out.zarr"
    argv = ["stylize", str(pngs / "c.png"), str(pngs / "s.png"), "-o", str(out), "--method", "identity-slow",
            "--weights", str(pngs), "--stride", "32", "--margin", "4", "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, *argv], env=cli_env(URST_TOY_DELAY="1.0"), cwd=pngs,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        chunks: list[Path] = []
        while time.monotonic() < deadline and proc.poll() is None and not chunks:
            chunks = [p for p in (out / "0" / "c").rglob("*") if p.is_file()] if (out / "0" / "c").is_dir() else []
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        assert chunks, "the tile stage wrote no chunk within 120 s"
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    for word in ("Traceback", "AllExit", "Compute Failed"):
        assert word not in stderr, stderr
    ours = [line for line in nonblank(stderr) if line.startswith("urst-dask:")]
    assert ours == ["urst-dask: interrupted; any output store is left marked incomplete"], stderr
    assert store.read_attrs(out)["status"] == "running"


# ------------------------------------------------------------------------------ 2. -v


def nan_argv(d: Path, *extra: str) -> list[str]:
    """The NaN row of the error table (float input with one NaN, passthrough), through the CLI."""
    image = np.full((40, 50, 3), 0.5, np.float32)
    image[7, 9, 1] = np.nan
    z = zarr.create_array(str(d / "nan.zarr"), shape=image.shape, dtype=image.dtype, chunks=image.shape,
                          dimension_names=("y", "x", "c"))
    z[...] = image
    Image.fromarray(random_image(64, 64, seed=16)).save(d / "s.png")
    return ["stylize", str(d / "nan.zarr"), str(d / "s.png"), "-o", str(d / "out.zarr"), "--method", "passthrough",
            "--weights", str(d), "--no-progress", *extra]


@pytest.mark.slow
def test_verbose_adds_the_worker_detail_to_the_one_line(tmp_path: Path) -> None:
    """With ``-v`` the failing worker's detail (its ``Compute Failed`` record or a traceback)
    reaches stderr, and the last line is still the one ``urst-dask: error:`` line.  The same run
    without ``-v`` prints that line alone: ``test_error_table[m NaN input through a worker
    process]`` checks it."""
    proc = run_cli(nan_argv(tmp_path, "-v"), tmp_path)
    lines = nonblank(proc.stderr)
    assert proc.returncode == 2, proc.stderr
    assert lines and lines[-1].startswith("urst-dask: error: ") and "non-finite" in lines[-1], proc.stderr
    assert sum(line.startswith("urst-dask:") for line in lines) == 1, proc.stderr
    assert "Compute Failed" in proc.stderr or "Traceback" in proc.stderr, proc.stderr
    assert len(lines) > 1, proc.stderr


# ------------------------------------------------------------------------------ 3. a damaged TIFF tile


def test_damaged_tiff_tile_read_in_a_worker_is_one_line(tmp_path: Path) -> None:
    """A 128 x 192 RGB TIFF in 64 x 64 zlib tiles whose last tile's bytes are overwritten in
    place (the first tile stays intact: it is decoded when the file is opened, in the client).
    The worker process that reads the damaged tile fails; the CLI prints one line naming the
    file and exits 2."""
    path = tmp_path / "tiled.tif"
    tifffile.imwrite(path, random_image(128, 192, seed=17), photometric="rgb", tile=(64, 64), compression="zlib")
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        offsets, counts = list(page.dataoffsets), list(page.databytecounts)
    assert len(offsets) == 6 and all(counts)
    with open(path, "r+b") as f:
        f.seek(offsets[-1])
        f.write(bytes(range(256)) * (counts[-1] // 256) + b"\xff" * (counts[-1] % 256))
    Image.fromarray(random_image(64, 64, seed=18)).save(tmp_path / "s.png")
    argv = ["stylize", str(path), str(tmp_path / "s.png"), "-o", str(tmp_path / "out.zarr"), "--method",
            "passthrough", "--weights", str(tmp_path), "--no-progress"]
    proc = run_cli(argv, tmp_path)
    line = one_error_line(proc.stderr)
    assert proc.returncode == 2, proc.stderr
    assert f"content={str(path)!r}: cannot read" in line, line


# ------------------------------------------------------------------------------ 4. disk full in the store


def enospc(where: str) -> OSError:
    return OSError(errno.ENOSPC, "No space left on device", where)


def test_disk_full_while_the_store_is_created(tmp_path: Path, client: Any, style_image: np.ndarray,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills up while the output store's arrays are created: one line naming the
    store, and no store left behind that a rerun would refuse as "not a urst-dask store"."""
    out = tmp_path / "full.zarr"

    def full(self: Any, name: str, *a: Any, **k: Any) -> None:
        raise enospc(str(out / name / "zarr.json"))

    monkeypatch.setattr(zarr.Group, "create_array", full)
    with pytest.raises(UrstError) as info:
        urst_dask.stylize(random_image(40, 50, seed=19), style_image, out, method="identity", weights=tmp_path,
                          client=client, stride=32, margin=4)
    message = str(info.value)
    assert isinstance(info.value, OutputError) and "\n" not in message, message
    assert message.startswith(f"output={str(out)!r}: cannot create the store") and "disk full" in message, message
    assert not out.exists()
    monkeypatch.undo()  # the disk has room again: the same call now succeeds
    urst_dask.stylize(random_image(40, 50, seed=19), style_image, out, method="identity", weights=tmp_path,
                      client=client, stride=32, margin=4)
    assert store.read_attrs(out)["status"] == "complete"


def test_disk_full_while_the_store_is_marked_complete(tmp_path: Path, client: Any, style_image: np.ndarray,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Every chunk is written, then the disk is full when the status flips to ``complete``: one
    line naming the store, which stays ``running``; the same call, rerun, completes it."""
    out = tmp_path / "full.zarr"
    real = zarr.core.attributes.Attributes.__setitem__

    def full(self: Any, key: str, value: Any) -> None:
        if key == store.ATTR and isinstance(value, dict) and value.get("status") == "complete":
            raise enospc(str(out / "zarr.json"))
        real(self, key, value)

    monkeypatch.setattr(zarr.core.attributes.Attributes, "__setitem__", full)
    with pytest.raises(UrstError) as info:
        urst_dask.stylize(random_image(40, 50, seed=20), style_image, out, method="identity", weights=tmp_path,
                          client=client, stride=32, margin=4)
    message = str(info.value)
    assert isinstance(info.value, OutputError) and "\n" not in message, message
    assert message.startswith(f"output={str(out)!r}: cannot write the completion marker") and "disk full" in message
    assert store.read_attrs(out)["status"] == "running"
    monkeypatch.undo()
    urst_dask.stylize(random_image(40, 50, seed=20), style_image, out, method="identity", weights=tmp_path,
                      client=client, stride=32, margin=4)
    assert store.read_attrs(out)["status"] == "complete"


@pytest.mark.parametrize("lost", ["cancelled", "no-workers", "comm-closed"])
def test_the_cluster_failing_under_a_run_is_one_line(client, lost):
    """The scheduler gone, every worker lost: one SchedulerError that says the output resumes
    (it was a 62-line traceback ending in FutureCancelledError or NoWorkerError, exit 1)."""
    from distributed.client import FutureCancelledError
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import NoWorkerError

    from urst_dask.errors import SchedulerError
    from urst_dask.pipeline.cluster import connect
    from urst_dask.settings import ClusterOptions

    exc = {"cancelled": FutureCancelledError("finalize-abc", "scheduler-connection-lost"),
           "no-workers": NoWorkerError("original-from-zarr-abc", 15.0),
           "comm-closed": CommClosedError("in <TCP (closed)>: Stream is closed")}[lost]
    with pytest.raises(SchedulerError, match=r"the Dask cluster failed under the run \(.*\); any output is left "
                       r"marked incomplete: rerun the same command to resume it") as info:
        with connect(ClusterOptions(), client=client):
            raise exc
    assert "\n" not in str(info.value) and info.value.__cause__ is exc


def test_a_run_on_a_scheduler_without_workers_waits_for_the_first(caplog):
    """Batch systems start the workers after the run is submitted: the run's reading of its
    workers (threads per host, GPU resources) waits for one to join, instead of reading none."""
    import logging
    import threading

    from distributed import LocalCluster

    from urst_dask.pipeline.cluster import connect
    from urst_dask.settings import ClusterOptions

    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:
        threading.Timer(1.0, cluster.scale, (1,)).start()
        with caplog.at_level(logging.INFO, logger="urst_dask"):
            with connect(ClusterOptions(scheduler=cluster.scheduler_address)) as c:
                assert len(c.scheduler_info()["workers"]) == 1
                registered = c.run(lambda dask_worker: sorted(dask_worker.plugins))
        assert any("waiting for a worker to join" in r.message for r in caplog.records)
        assert all(any(n.startswith("urst-dask-torch-threads") for n in names) for names in registered.values())


def test_a_scheduler_without_workers_past_its_no_workers_timeout_refuses_the_run():
    """The scheduler's no-workers-timeout (pipelines/multi_gpu.md, "When a run waits forever")
    ends the wait for the first worker; it waited forever, since no task was queued yet."""
    import dask
    from distributed import LocalCluster

    from urst_dask.errors import SchedulerError
    from urst_dask.pipeline.cluster import connect
    from urst_dask.settings import ClusterOptions

    with dask.config.set({"distributed.scheduler.no-workers-timeout": "1s"}), \
            LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        t0 = time.monotonic()
        with pytest.raises(SchedulerError, match=re.escape(f"scheduler={address!r}: no worker joined within 1 s (the "
                                                           "scheduler's distributed.scheduler.no-workers-timeout)")):
            with connect(ClusterOptions(scheduler=address)):
                pass
        assert time.monotonic() - t0 < 30


def test_weights_missing_on_a_worker_name_the_worker(client, monkeypatch):
    """This machine found the weights, a worker did not (a node without the shared mount): the
    message says which worker, where it read as if this machine lacked the file."""
    from urst_dask.engine.models import ModelSpec
    from urst_dask.errors import WeightsError
    from urst_dask.pipeline import conditioning

    def missing(spec):
        raise WeightsError("weights file missing: /shared/weights/johnson/candy.pth")

    monkeypatch.setattr(conditioning, "get_model", missing)
    address = next(iter(client.scheduler_info()["workers"]))
    with pytest.raises(WeightsError, match=r"on worker .*" + re.escape(address) + r".*: weights file missing: "
                       r"/shared/weights/johnson/candy.pth"):
        client.submit(conditioning._model_info, ModelSpec("johnson", "/shared/weights", "candy"), pure=False).result()
