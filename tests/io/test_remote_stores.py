"""Zarr stores at URLs, read and written through fsspec: a real HTTP server on 127.0.0.1
(read-only: content input, export source, --stats), ``memory://`` with in-process workers
(and refused with worker processes), and S3 through a local moto server (output, a resume
after chunks were lost, the lock object, the input fingerprint), with the CLI's
``--storage-options`` reaching worker processes."""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import fsspec
import numpy as np
import pytest
import zarr
from PIL import Image

import urst_dask
from urst_dask.cli import main
from urst_dask.errors import OutputError
from urst_dask.io import chunkio, store
from urst_dask.io.lock import lock_path
from urst_dask.io.remote import RemotePath, attach
from urst_dask.testing import random_image
from urst_dask.testing import toys as toy_models


def make_zarr(url_or_path: str, image: np.ndarray, chunk: int = 32, **kw) -> str:
    z = zarr.create_array(url_or_path, shape=image.shape, dtype=image.dtype, chunks=(chunk, chunk, image.shape[2]),
                          dimension_names=("y", "x", "c"), **kw)
    z[...] = image
    return url_or_path


# ------------------------------------------------------------------------------ HTTP


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # noqa: ARG002 - no request log in the test output
        pass


@pytest.fixture
def http_folder(tmp_path):
    """(folder, base URL): ``folder`` served read-only by Python's http.server on 127.0.0.1."""
    folder = tmp_path / "served"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def served_output(run, http_folder):
    """A finished output store of a known image, served over HTTP: (URL, image)."""
    folder, base = http_folder
    image = random_image(90, 100, seed=21)
    run(image, folder / "done.zarr")
    return f"{base}/done.zarr", image


def test_http_store_as_content_input(run, tmp_path, served_output):
    url, image = served_output
    out = run(url, tmp_path / "out.zarr")
    np.testing.assert_array_equal(store.open_output(out).compute(), image)
    identity = store.read_attrs(out)["content"]["identity"]
    assert identity["url"] == url and identity["listing"] is True
    assert identity["files"] > 10 and identity["bytes"] > 0  # every key listed, sizes from HEAD requests


def test_http_store_as_export_source_and_stats(run, tmp_path, served_output, capsys):
    url, image = served_output
    png = urst_dask.export(url, tmp_path / "x.png")
    np.testing.assert_array_equal(np.asarray(Image.open(png)), image)
    assert main(["export", url, str(tmp_path / "x.tif")]) == 0, capsys.readouterr().err
    import tifffile

    np.testing.assert_array_equal(tifffile.imread(tmp_path / "x.tif"), image)
    again = run(image, tmp_path / "again.zarr", stats=url)
    assert store.read_attrs(again)["stats_given"] == store.read_stats(url).token()
    np.testing.assert_array_equal(store.open_output(again).compute(), image)


class _NeedsToken(_Quiet):
    def _refused(self) -> bool:
        if self.headers.get("X-Token") == "s3cret":
            return False
        self.send_error(403, "need X-Token")
        return True

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if not self._refused():
            super().do_GET()

    def do_HEAD(self) -> None:  # noqa: N802
        if not self._refused():
            super().do_HEAD()


def test_stylize_array_passes_storage_options_as_stylize_does(run, tmp_path, client, style_image):
    """Statistics at a URL that needs a header: ``storage_options`` reach it from both calls."""
    folder = tmp_path / "served"
    folder.mkdir()
    image = random_image(64, 64, seed=22)
    run(image, folder / "s.zarr")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_NeedsToken, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url, opts = f"http://127.0.0.1:{server.server_address[1]}/s.zarr", {"headers": {"X-Token": "s3cret"}}
        lazy = urst_dask.stylize_array(image, style_image, stats=url, storage_options=opts, method="identity",
                                       weights=tmp_path, stride=32, margin=4)
        np.testing.assert_array_equal(lazy.compute(scheduler="sync"), image)
    finally:
        server.shutdown()
        server.server_close()


def test_http_resume_scan_and_identity_list_through_the_server(served_output):
    url, _ = served_output
    assert chunkio.present_chunks(url) == {(r, c) for r in range(3) for c in range(4)}  # 90 x 100 in 32-px chunks
    assert store.zarr_node_type(url) == "group"


# ---------------------------------------------------------------------------- memory://


def _memory_url(name: str) -> str:
    return f"memory://urst-tests/{uuid.uuid4().hex}/{name}"


def _lose_chunks(out: str, chunks=((0, 1), (1, 0))) -> None:
    """Make a finished store at a URL look like an interrupted run: chunk keys deleted, the
    completion marker flipped back to running."""
    rp = attach(out)
    fs = rp.fs()
    for r, c in chunks:
        fs.rm(f"{rp.fs_path()}/0/c/0/{r}/{c}")
    root = zarr.open_group(store.zarr_target(rp), mode="r+")
    root.attrs["urst_dask"] = {**root.attrs["urst_dask"], "status": "running"}


def test_memory_input_and_output_with_in_process_workers_resume(run):
    image = random_image(70, 90, seed=22)
    src = make_zarr(_memory_url("in.zarr"), image)
    out = run(src, _memory_url("out.zarr"))
    assert isinstance(out, RemotePath)
    assert store.read_attrs(out)["status"] == "complete"
    np.testing.assert_array_equal(store.open_output(out).compute(), image)
    before = _keys(out, None)
    _lose_chunks(out)
    assert chunkio.present_chunks(out) == {(r, c) for r in range(3) for c in range(3)} - {(0, 1), (1, 0)}
    windows = toy_models.WINDOWS["count"]
    run(src, out)
    assert toy_models.WINDOWS["count"] - windows == 2  # only the two lost chunks were recomputed
    assert _keys(out, None) == before  # byte-identical
    assert store.read_attrs(out)["status"] == "complete"


class _FakeClient:
    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    def scheduler_info(self) -> dict:
        return {"workers": {a: {} for a in self.addresses}}


def test_memory_store_needs_in_process_workers():
    from urst_dask.errors import ParameterError
    from urst_dask.io.remote import check_in_process

    check_in_process(_FakeClient("inproc://10.0.0.1/1/2"), output="memory://x/o.zarr", content="memory://x/i.zarr")
    check_in_process(_FakeClient("tcp://127.0.0.1:1"), output="s3://b/o.zarr", content="/data/in.zarr")
    with pytest.raises(OutputError, match="output='memory://x/o.zarr': memory:// stores live in this process"):
        check_in_process(_FakeClient("inproc://a", "tcp://127.0.0.1:1"), output="memory://x/o.zarr")
    with pytest.raises(ParameterError, match=r"content='memory://x/i.zarr': .*separate processes \(tcp://h:1\)"):
        check_in_process(_FakeClient("tcp://h:1"), output="/tmp/o.zarr", content="memory://x/i.zarr")


@pytest.mark.slow
def test_memory_store_with_worker_processes_is_refused(tmp_path, style_image):
    """memory:// lives in one process: a local cluster of worker processes is refused, before
    anything is written."""
    out = _memory_url("out.zarr")
    with pytest.raises(OutputError, match=r"memory:// stores live in this process, but the workers are separate "
                                          r"processes \(tcp://.*processes=False"):
        urst_dask.stylize(random_image(40, 50, seed=23), style_image, out, method="passthrough", weights=tmp_path,
                          workers=1, processes=True, stride=32, margin=4)
    assert not store.exists(out)


def test_url_output_equal_to_or_inside_the_input_is_refused(run):
    base = _memory_url("")
    src = make_zarr(base + "in.zarr", random_image(40, 50, seed=24))
    fs = fsspec.filesystem("memory")
    before = {k: fs.cat_file(k) for k in fs.find(attach(src).fs_path())}
    cases = {base + "in.zarr/": "is the content image", base + "x/../in.zarr": "is the content image",
             base + "in.zarr/out.zarr": "is inside the content image", base.rstrip("/"): "contains the content image",
             base.replace("memory://", "memory:///") + "in.zarr": "is the content image"}
    for out, how in cases.items():
        with pytest.raises(OutputError, match=f"{how} .*choose an output path outside the input"):
            run(src, out, overwrite=True)
    assert {k: fs.cat_file(k) for k in fs.find(attach(src).fs_path())} == before


# -------------------------------------------------------------------------------- S3


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """Storage options of a local S3 endpoint: moto's server in a process of its own (in a
    thread of this one it would compete for the GIL with the in-process workers)."""
    pytest.importorskip("moto.server", reason="moto[server] not installed")
    pytest.importorskip("s3fs")
    import time
    import urllib.request

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto server did not start (exit {proc.poll()})")
                time.sleep(0.2)
        yield {"key": "testing", "secret": "testing", "endpoint_url": endpoint}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def bucket(s3):
    name = f"b{uuid.uuid4().hex[:12]}"
    fsspec.filesystem("s3", **s3).mkdir(name)
    return f"s3://{name}"


def _keys(url: str, opts: dict, under: str = "0") -> dict[str, bytes]:
    rp = attach(url, opts)
    fs = rp.fs()
    fs.invalidate_cache()
    return {k: fs.cat_file(k) for k in fs.find(f"{rp.fs_path()}/{under}")}


def test_s3_output_lost_chunks_resume_byte_identical(run, s3, bucket):
    """Chunk keys deleted and the completion marker reset (a killed run): the rerun lists the
    keys through S3, computes only the missing chunks and ends byte-identical."""
    image = random_image(64, 90, seed=25)
    src = make_zarr(f"{bucket}/in.zarr", image, storage_options=s3)
    out = run(src, f"{bucket}/out.zarr", storage_options=s3)
    assert isinstance(out, RemotePath) and out == f"{bucket}/out.zarr"
    first = _keys(out, s3)
    assert len([k for k in first if "/c/" in k]) == 6  # 2 x 3 chunks of 32 px
    np.testing.assert_array_equal(store.open_output(out).compute(), image)
    _lose_chunks(out, ((0, 2), (1, 0)))
    assert chunkio.present_chunks(out) == {(0, 0), (0, 1), (1, 1), (1, 2)}
    windows = toy_models.WINDOWS["count"]
    run(src, f"{bucket}/out.zarr", storage_options=s3)
    assert toy_models.WINDOWS["count"] - windows == 2
    assert store.read_attrs(out)["status"] == "complete"
    assert _keys(out, s3) == first
    assert not store.exists(lock_path(out))  # the lock object was released


@pytest.mark.slow
def test_s3_cli_with_worker_processes_and_storage_options(tmp_path, s3, bucket):
    """The CLI's local cluster of worker processes: --storage-options travels with the URLs to
    them (no AWS_*/FSSPEC_* variables set); a lost chunk is rewritten; export reads S3."""
    image = random_image(64, 90, seed=32)
    src = make_zarr(f"{bucket}/in.zarr", image, storage_options=s3)
    Image.fromarray(random_image(32, 32, seed=26)).save(tmp_path / "s.png")
    out = f"{bucket}/out.zarr"
    argv = ["stylize", src, str(tmp_path / "s.png"), "-o", out, "--method", "passthrough", "--weights", str(tmp_path),
            "--stride", "32", "--margin", "8", "--no-progress", "--workers", "1", "--storage-options", json.dumps(s3)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FSSPEC_"))}
    for attempt in range(2):
        done = subprocess.run([sys.executable, "-m", "urst_dask.cli", *argv], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"wrote {out}"
        if attempt == 0:
            first = _keys(out, s3)
            _lose_chunks(attach(out, s3), ((1, 1),))
    assert store.read_attrs(attach(out, s3))["status"] == "complete"
    assert _keys(out, s3) == first
    png = tmp_path / "o.png"
    assert main(["export", out, str(png), "--storage-options", json.dumps(s3)]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(png)), image)


def test_s3_input_changed_in_place_refuses_the_resume(run, s3, bucket):
    image = random_image(70, 90, seed=27)
    src = make_zarr(f"{bucket}/in.zarr", image, storage_options=s3)
    out = run(src, f"{bucket}/out.zarr", storage_options=s3)
    identity = store.read_attrs(out)["content"]["identity"]
    assert identity["url"] == src and identity["files"] == 10 and identity["listing"]
    _lose_chunks(out)
    zarr.open_array(src, mode="r+", storage_options=s3)[...] = random_image(70, 90, seed=28)  # same sizes
    with pytest.raises(OutputError, match="already exists from a different run"):
        run(src, out, storage_options=s3)
    assert store.read_attrs(out)["status"] == "running"


def _write_lock(out: RemotePath, pid: int, host: str | None = None) -> RemotePath:
    import datetime
    import socket

    lock = lock_path(out)
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")  # as a run writes it
    lock.fs().pipe_file(lock.fs_path(), json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                                    "started": now, "token": "someone-else"}).encode())
    return lock


def test_s3_lock_object_refuses_a_live_run_and_another_host_takes_over_a_dead_one(run, s3, bucket):
    image = random_image(40, 50, seed=29)
    out = attach(f"{bucket}/out.zarr", s3)
    assert lock_path(out) == f"{bucket}/out.zarr.lock"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = _write_lock(out, sleeper.pid)
        with pytest.raises(OutputError, match=f"in use by another run \\(pid {sleeper.pid} on host"):
            run(image, out)
        assert store.exists(lock) and not store.exists(out)
    finally:
        sleeper.kill()
        sleeper.wait()
    _write_lock(out, 12345, host="elsewhere.invalid")
    with pytest.raises(OutputError, match="host 'elsewhere.invalid'.*delete the lock file if that run is gone"):
        run(image, out)
    assert not store.exists(out)
    from urst_dask.io.lock import acquire, read_lock, release

    _write_lock(out, sleeper.pid)  # now dead: taken over
    path, info = acquire(out)
    assert read_lock(path) == info and info.pid == os.getpid()
    release(path, info)
    assert not store.exists(lock_path(out))


def test_s3_lock_is_created_exclusively(s3, bucket):
    """The lock is a conditional write (If-None-Match): a second create of the same object fails."""
    from urst_dask.io.lock import acquire, release

    out = attach(f"{bucket}/excl.zarr", s3)
    path, info = acquire(out)
    with pytest.raises(OutputError, match=f"in use by another run \\(pid {os.getpid()}"):
        acquire(out)
    fs = path.fs()
    with pytest.raises(FileExistsError):
        fs.pipe_file(path.fs_path(), b"{}", mode="create")
    release(path, info)
    assert not store.exists(path)


def test_s3_existing_output_is_refused(run, s3, bucket):
    out = attach(f"{bucket}/o.zarr", s3)
    store.create_output(out, (40, 50, 3), 32, "uint8", {"fingerprint": "an-earlier-run"}, None)
    assert store.zarr_node_type(out) == "group" and store.read_attrs(out)["status"] == "running"
    with pytest.raises(OutputError, match=f"output='{out}': already exists from a different run"):
        run(random_image(40, 50, seed=31), out)
    with pytest.raises(OutputError, match="already exists; pass --overwrite"):
        store.check_output_path(out, overwrite=False)
    attach(out).fs().pipe_file(f"{bucket.removeprefix('s3://')}/notzarr/a.txt", b"x")
    with pytest.raises(OutputError, match="already exists and is not a Zarr store"):
        run(random_image(40, 50, seed=31), f"{bucket}/notzarr", storage_options=s3, overwrite=True)
    with pytest.raises(OutputError, match="bucket 'no-such-bucket' does not exist"):
        run(random_image(40, 50, seed=31), "s3://no-such-bucket/o.zarr", storage_options=s3)


def test_scratch_of_a_url_output_is_local(monkeypatch, tmp_path):
    import tempfile

    from urst_dask.io.scratch import REMOTE_ROOT, scratch_root

    monkeypatch.delenv("URST_DASK_SCRATCH", raising=False)
    assert scratch_root("s3://b/o.zarr") == Path(tempfile.gettempdir()).resolve() / REMOTE_ROOT
    monkeypatch.setenv("URST_DASK_SCRATCH", str(tmp_path))
    assert scratch_root("s3://b/o.zarr") == tmp_path.resolve()
    assert scratch_root("s3://b/o.zarr", tmp_path / "x") == (tmp_path / "x").resolve()


class EndpointDown(Exception):
    """What botocore raises when the endpoint cannot be reached (not an OSError)."""


def test_a_storage_outage_at_the_locks_release_leaves_the_runs_own_error(monkeypatch, caplog):
    """A network outage mid-run failed the chunk write, then the lock's release in the `finally`
    failed too and its botocore error replaced the run's one-line error (295 lines, exit 1)."""
    import logging

    from urst_dask.io import lock

    url = f"memory://lk-{uuid.uuid4().hex}/out.zarr"

    def outage(path):
        raise EndpointDown('Could not connect to the endpoint URL: ".../out.zarr.lock"')

    with caplog.at_level(logging.WARNING, logger="urst_dask"), \
            pytest.raises(OutputError, match="cannot write the chunk at rows 0:40"):
        with lock.output_lock(url):
            monkeypatch.setattr(lock, "read_lock", outage)
            raise OutputError(f"output={url!r}: cannot write the chunk at rows 0:40")
    assert "could not remove the lock (EndpointDown: Could not connect to the endpoint URL" in caplog.text
    assert "the next run takes it over" in caplog.text


class _Unreachable:
    """An object store client that cannot reach its endpoint, answering as s3fs does."""

    def invalidate_cache(self, path=None):
        pass

    def exists(self, path):
        return False  # s3fs: any error while looking up a bucket reads as "not there"

    def info(self, path):
        raise EndpointDown(f'Could not connect to the endpoint URL: "http://127.0.0.1:5999/{path}"')


def test_an_unreachable_endpoint_is_not_reported_as_a_missing_bucket(monkeypatch):
    """An output at an endpoint that refuses connections, or with a misspelt storage option, was
    refused with "bucket 'results' does not exist" though it did."""
    from urst_dask.io import remote_store

    rp = RemotePath("s3://results/e1.zarr")
    monkeypatch.setattr(RemotePath, "fs", lambda self: _Unreachable())
    with pytest.raises(OutputError) as info:
        remote_store.check_bucket(rp)
    assert "cannot look up the bucket 'results' (EndpointDown: Could not connect to the endpoint URL" in str(info.value)
    assert "does not exist" not in str(info.value)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_export_of_a_store_at_an_unreachable_url_is_one_line(tmp_path):
    """export/compare of a remote store whose endpoint is down (or without credentials) ended in a
    raw traceback, exit 1, and then ~100 lines of "Exception ignored in <coroutine ...>"."""
    url = f"http://127.0.0.1:{_closed_port()}/out.zarr"
    with pytest.raises(OutputError, match=rf"store='{url}': cannot read zarr.json \(ClientConnectorError"):
        urst_dask.export(url, tmp_path / "x.png")
    proc = subprocess.run([sys.executable, "-m", "urst_dask", "export", url, str(tmp_path / "x.png")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"urst-dask: error: store='{url}': cannot read zarr.json (ClientConnectorError")
    assert proc.stderr.count("\n") == 1, proc.stderr[:2000]
    assert not (tmp_path / "x.png").exists()


def test_an_overwrite_killed_while_it_deletes_a_remote_store_is_finished_by_the_next(run, monkeypatch):
    """A remote --overwrite killed half-way through deleting the old store left a prefix without
    zarr.json, refused for good ("already exists and is not a Zarr store", --overwrite too): 20k
    objects to delete by hand.  The removal now marks the prefix first and unmarks it last."""
    from fsspec.implementations.memory import MemoryFileSystem

    from urst_dask.io import remote_store

    out = run(random_image(70, 90, seed=23), _memory_url("out.zarr"))
    real_rm = MemoryFileSystem.rm

    def killed(self, path, *a, **k):  # the kill lands while the chunks are being deleted
        if isinstance(path, list):
            raise KeyboardInterrupt
        return real_rm(self, path, *a, **k)

    monkeypatch.setattr(MemoryFileSystem, "rm", killed)
    with pytest.raises(KeyboardInterrupt):
        remote_store.remove(out)
    monkeypatch.setattr(MemoryFileSystem, "rm", real_rm)
    fs, base = out.fs(), out.fs_path()
    assert not fs.exists(f"{base}/zarr.json") and fs.exists(f"{base}/0/c/0/0/0")  # never read as complete
    assert fs.exists(f"{base}/{remote_store.REMOVING}")
    image = random_image(70, 90, seed=24)
    with pytest.raises(OutputError, match="removal was interrupted; pass --overwrite to finish removing it"):
        run(image, out)
    assert run(image, out, overwrite=True) == out
    np.testing.assert_array_equal(store.open_output(out).compute(), image)
    assert not fs.exists(f"{base}/{remote_store.REMOVING}")


def test_a_remote_prefix_that_is_not_a_store_is_still_refused_with_overwrite(run):
    url = _memory_url("notes")
    rp = attach(url)
    rp.fs().pipe_file(f"{rp.fs_path()}/readme.txt", b"mine")
    with pytest.raises(OutputError, match="already exists and is not a Zarr store"):
        run(random_image(20, 20, seed=1), url, overwrite=True)
    assert rp.fs().cat_file(f"{rp.fs_path()}/readme.txt") == b"mine"
