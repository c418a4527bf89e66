"""Data-loss and silent-wrong-result guards: an output that would destroy its input, a resume
over a changed input, two runs on one output, float input outside [0, 1], a huge stride on a
tiny image, and a scheduler address that is not a Dask scheduler."""

from __future__ import annotations

import errno
import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
import zarr
from PIL import Image

import urst_dask
from urst_dask.cli import main
from urst_dask.errors import OutputError
from urst_dask.io import store
from urst_dask.testing import random_image


def make_input(path: Path, image: np.ndarray, chunk: int = 32) -> Path:
    z = zarr.create_array(str(path), shape=image.shape, dtype=image.dtype, chunks=(chunk, chunk, image.shape[2]),
                          dimension_names=("y", "x", "c"))
    z[...] = image
    return path


def tree_digest(path: Path) -> str:
    """Every file under ``path`` (names, bytes and mtimes): equal digests mean nothing was touched."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(path)}:{f.stat().st_mtime_ns}:".encode() + f.read_bytes())
    return h.hexdigest()


# ------------------------------------------------------------------ 1. output == input


@pytest.mark.parametrize("where", ["same", "symlink", "inside", "contains"])
def test_output_that_is_or_holds_the_input_is_refused(run, tmp_path, where):
    folder = tmp_path / "data"
    folder.mkdir()
    src = make_input(folder / "in.zarr", random_image(60, 70, seed=1))
    out = {"same": src, "symlink": tmp_path / "link.zarr", "inside": src / "out.zarr", "contains": folder}[where]
    if where == "symlink":
        out.symlink_to(src, target_is_directory=True)
    before = tree_digest(src)
    how = {"same": "is the content image", "symlink": "is the content image", "inside": "is inside the content image",
           "contains": "contains the content image"}[where]
    with pytest.raises(OutputError, match=f"output='{out}': {how} '{src}'.*choose an output path outside the input"):
        run(src, out, overwrite=True)
    assert tree_digest(src) == before
    assert not (src / "out.zarr").exists()
    np.testing.assert_array_equal(zarr.open_array(str(src), mode="r")[...], random_image(60, 70, seed=1))


def test_restyling_an_output_in_place_is_refused(run, tmp_path):
    image = random_image(50, 60, seed=2)
    first = run(image, tmp_path / "first.zarr")
    before = tree_digest(first)
    with pytest.raises(OutputError, match="is the content image"):
        run(first, first, overwrite=True)
    assert tree_digest(first) == before
    assert store.read_attrs(first)["status"] == "complete"
    np.testing.assert_array_equal(store.open_output(first).compute(), image)


def test_cli_output_equal_to_input_exits_2_and_keeps_the_input(tmp_path, capsys):
    src = make_input(tmp_path / "in.zarr", random_image(40, 50, seed=3))
    Image.fromarray(random_image(32, 32, seed=4)).save(tmp_path / "s.png")
    before = tree_digest(src)
    rc = main(["stylize", str(src), str(tmp_path / "s.png"), "-o", str(src), "--overwrite", "--method", "identity",
               "--weights", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and err.startswith(f"urst-dask: error: output='{src}': is the content image")
    assert tree_digest(src) == before


# ------------------------------------------------------- 2. resume over a changed input


def interrupt(out: Path, chunks=((0, 1), (1, 0))) -> None:
    """Make a finished store look like an interrupted run: chunks missing, status running."""
    for r, c in chunks:
        (out / "0" / "c" / "0" / str(r) / str(c)).unlink()
    root = zarr.open_group(str(out), mode="r+")
    root.attrs["urst_dask"] = {**root.attrs["urst_dask"], "status": "running"}


def test_resume_of_an_unchanged_zarr_input_completes(run, tmp_path):
    image = random_image(70, 90, seed=5)
    src = make_input(tmp_path / "in.zarr", image)
    out = run(src, tmp_path / "out.zarr")
    interrupt(out)
    run(src, out)
    assert store.read_attrs(out)["status"] == "complete"
    np.testing.assert_array_equal(store.open_output(out).compute(), image)


def test_resume_after_the_zarr_input_changed_in_place_is_refused(run, tmp_path):
    src = make_input(tmp_path / "in.zarr", random_image(70, 90, seed=6))
    out = run(src, tmp_path / "out.zarr")
    interrupt(out)
    zarr.open_array(str(src), mode="r+")[...] = random_image(70, 90, seed=7)  # same shape, dtype, metadata
    with pytest.raises(OutputError, match="already exists from a different run"):
        run(src, out)
    assert store.read_attrs(out)["status"] == "running"  # never marked complete with mixed data


def test_input_identity_sees_a_tiff_header_change_with_size_and_mtime_kept(tmp_path):
    import tifffile

    from urst_dask.io.readers import input_identity

    path = tmp_path / "scan.tif"
    tifffile.imwrite(path, random_image(40, 50, seed=8), photometric="rgb")
    st = path.stat()
    first = input_identity(path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # a pixel byte: inside the first 64 KiB of this small file
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    assert input_identity(path) != first
    assert input_identity(path) == input_identity(path)


# ------------------------------------------------------------ 3. one run per output


def write_lock(out: Path, pid: int, host: str | None = None, started: str | None = None) -> Path:
    """A lock of another run (``started``: now unless given, as a run would write it)."""
    import datetime
    import json
    import socket

    from urst_dask.io.lock import lock_path

    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    path = lock_path(out)
    path.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(), "started": started or now,
                                "token": "someone-else"}))
    return path


def test_output_locked_by_a_live_run_is_refused(run, tmp_path):
    import subprocess
    import sys

    image = random_image(40, 50, seed=9)
    out = run(image, tmp_path / "out.zarr")
    before = tree_digest(out)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = write_lock(out, sleeper.pid)
        with pytest.raises(OutputError, match=f"in use by another run \\(pid {sleeper.pid} on host '.+', started .*; "
                                              f"wait for it to finish, or if you are sure no run is using this output, "
                                              f"delete the lock file '{lock}'$"):
            run(image, out, overwrite=True)
        assert lock.exists()  # not ours: left alone
        assert tree_digest(out) == before  # --overwrite deleted nothing
    finally:
        sleeper.kill()
        sleeper.wait()


def test_lock_naming_this_process_is_refused_only_while_this_process_holds_it(run, tmp_path):
    """A lock naming this process's pid that this process does not hold is a dead run's whose
    pid came round again (a restarted container): taken over.  One it holds is refused."""
    from urst_dask.io.lock import acquire, lock_path, output_lock

    out = tmp_path / "new.zarr"
    write_lock(out, os.getpid(), started="2020-01-01T00:00:00+00:00")
    image = random_image(40, 50, seed=9)
    run(image, out)
    np.testing.assert_array_equal(store.open_output(out).compute(), image)
    assert not lock_path(out).exists()
    with output_lock(out) as held:
        with pytest.raises(OutputError, match=f"in use by another run \\(pid {os.getpid()} on host"):
            acquire(out)
        assert held.exists()
    assert not lock_path(out).exists()


def test_lock_whose_pid_now_names_a_younger_process_is_taken_over(run, tmp_path):
    """The lock's pid is alive, but that process started after the lock was written: the pid
    was reused (a reboot, a restarted container), the run that wrote the lock is gone."""
    import subprocess
    import sys

    from urst_dask.io.lock import lock_path

    if not Path("/proc/self/stat").exists():
        pytest.skip("no /proc: a live pid keeps its lock")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_lock(tmp_path / "out.zarr", sleeper.pid, started="2020-01-01T00:00:00+00:00")
        image = random_image(40, 50, seed=10)
        out = run(image, tmp_path / "out.zarr")
        np.testing.assert_array_equal(store.open_output(out).compute(), image)
        assert not lock_path(out).exists() and sleeper.poll() is None  # the unrelated process is left alone
    finally:
        sleeper.kill()
        sleeper.wait()


def test_process_start_is_when_the_process_started():
    import subprocess
    import sys
    import time

    from urst_dask.io.lock import process_start

    before = time.time()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    after = time.time()
    try:
        begun = process_start(sleeper.pid)
        if begun is None:
            pytest.skip("no /proc")
        assert before - 1.5 <= begun <= after + 1.5
    finally:
        sleeper.kill()
        sleeper.wait()
    assert process_start(sleeper.pid) is None  # gone


def test_lock_from_another_host_is_refused_with_what_to_do(run, tmp_path):
    out = tmp_path / "new.zarr"
    lock = write_lock(out, 12345, host="elsewhere.invalid")
    with pytest.raises(OutputError, match="host 'elsewhere.invalid'.*delete the lock file if that run is gone"):
        run(random_image(40, 50, seed=9), out)
    assert lock.exists() and not out.exists()


def test_stale_lock_of_a_dead_process_is_taken_over(run, tmp_path):
    import subprocess
    import sys

    from urst_dask.io.lock import lock_path

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    image = random_image(40, 50, seed=10)
    out = tmp_path / "out.zarr"
    write_lock(out, int(done.stdout))
    run(image, out)
    assert store.read_attrs(out)["status"] == "complete"
    np.testing.assert_array_equal(store.open_output(out).compute(), image)
    assert not lock_path(out).exists()
    assert not list(tmp_path.glob("out.zarr.lock*"))


@pytest.mark.parametrize("where, err, fragment", [
    ("open", errno.EROFS, "cannot create the lock '{lock}' (Read-only file system)"),  # was a traceback
    ("fsync", errno.ENOSPC, "cannot write the lock '{lock}' (No space left on device); nothing was written"),
])
def test_a_lock_that_cannot_be_made_is_one_error_and_leaves_nothing(tmp_path, monkeypatch, where, err, fragment):
    """A read-only file system or a full disk at the lock: one OutputError; a half-written (empty)
    lock blocked every later run as 'exists but cannot be read'."""
    from urst_dask.io import lock

    out = tmp_path / "o.zarr"
    real = getattr(lock.os, where)

    def failing(*a, **kw):
        if where == "fsync" or str(a[0]).endswith(".lock"):
            raise OSError(err, os.strerror(err))
        return real(*a, **kw)

    monkeypatch.setattr(lock.os, where, failing)
    with pytest.raises(OutputError, match=re.escape(fragment.format(lock=lock.lock_path(out)))):
        with lock.output_lock(out):
            pass
    monkeypatch.setattr(lock.os, where, real)
    assert not lock.lock_path(out).exists()
    with lock.output_lock(out) as held:  # the next run takes it
        assert held.exists()


def test_lock_is_released_after_a_normal_and_a_failed_run(run, tmp_path):
    from urst_dask.io.lock import lock_path

    out = run(random_image(40, 50, seed=11), tmp_path / "ok.zarr")
    assert not lock_path(out).exists()
    bad = tmp_path / "bad.zarr"
    with pytest.raises(RuntimeError, match="simulated worker failure"):
        run(random_image(40, 50, seed=11), bad, method="identity-fails")
    assert store.read_attrs(bad)["status"] == "running"
    assert not lock_path(bad).exists()


# ---------------------------------------------------- 4. float input outside [0, 1]


def float_image(lo: float, hi: float, seed: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = (lo + (hi - lo) * rng.random((60, 70, 3))).astype(np.float32)
    image[0, 0, 0], image[-1, -1, -1] = lo, hi
    return image


@pytest.mark.parametrize("lo, hi", [(0.0, 3.5), (-0.25, 1.0)])
def test_float_input_outside_unit_range_is_refused(run, tmp_path, lo, hi):
    from urst_dask.errors import InputImageError

    src = make_input(tmp_path / "in.zarr", float_image(lo, hi))
    with pytest.raises(InputImageError, match=f"content='{src}': float values from .* in rows .*, columns .*; "
                                              ".*must be in \\[0, 1\\].*--intensity percentile:0.5,99.5"):
        run(src, tmp_path / "out.zarr")
    out = tmp_path / "out.zarr"
    assert not out.exists() or store.read_attrs(out).get("status") != "complete"


def test_unit_range_check_names_the_block_and_the_values():
    import dask.array as da

    from urst_dask.errors import InputImageError
    from urst_dask.io.readers import check_unit_range

    image = np.full((40, 40, 3), 0.5, np.float32)
    image[25, 33, 1] = 7.25
    checked = check_unit_range(da.from_array(image, chunks=(20, 20, 3)), "scan.zarr", "content")
    np.testing.assert_array_equal(checked[:20].compute(), image[:20])  # blocks inside [0, 1] pass untouched
    with pytest.raises(InputImageError, match="content='scan.zarr': float values from 0.5 to 7.25 in rows 20:40, "
                                              "columns 20:40"):
        checked.compute()


def test_float_input_outside_unit_range_works_with_percentile_intensity(run, tmp_path):
    image = float_image(-2.0, 500.0)
    src = make_input(tmp_path / "in.zarr", image)
    out = run(src, tmp_path / "out.zarr", intensity="percentile:0,100")
    result = store.open_output(out).compute()
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, image, atol=502 * 1e-5)  # identity network: the input's own range back
    lo, hi = store.read_attrs(out)["intensity"]["range_in_dtype"]
    assert lo == pytest.approx(-2.0) and hi == pytest.approx(500.0)


# ------------------------------------------------ 5. a stride larger than the image


def test_huge_stride_on_a_tiny_image_keeps_chunks_and_memory_to_the_image(run, tmp_path):
    """--stride 20000 on 300 x 200: chunks were stride x stride (a 1.2 GB uint8 chunk
    allocated per write, 7.4 GB peak); they are clamped to the image now."""
    import tracemalloc

    image = random_image(300, 200, seed=13)
    tracemalloc.start()
    try:
        out = run(image, tmp_path / "big.zarr", stride=20000, margin=8)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(store.open_output(out).compute(), image)
    root = zarr.open_group(str(out), mode="r")
    levels = [name for name, _ in root.arrays()]
    assert "0" in levels and "1" in levels
    for name in levels:
        arr = root[name]
        assert all(c <= s for c, s in zip(arr.chunks, arr.shape)), (name, arr.chunks, arr.shape)
    assert root["0"].chunks == (3, 300, 200)
    assert peak < 200 << 20, f"peak traced memory {peak / 2**20:.0f} MiB"


# ------------------------------------------- 6. a scheduler address that is not one


@pytest.fixture
def silent_server():
    """A TCP server on 127.0.0.1 that accepts connections and never says anything."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    srv.close()


@pytest.fixture
def http_server():
    """A plain HTTP server on 127.0.0.1."""
    import http.server
    import threading

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def stylize_on(scheduler: str, tmp_path: Path, style_image, **kw):
    return urst_dask.stylize(random_image(40, 50, seed=14), style_image, tmp_path / "out.zarr", method="identity",
                             weights=tmp_path, scheduler=scheduler, **kw)


def test_silent_server_as_scheduler_times_out_with_a_clear_error(tmp_path, style_image, silent_server):
    import time

    from urst_dask.errors import SchedulerError

    start = time.monotonic()
    with pytest.raises(SchedulerError, match=f"scheduler='{silent_server}': did not answer as a Dask scheduler "
                                             "within 1 s"):
        stylize_on(silent_server, tmp_path, style_image, connect_timeout=1)
    assert time.monotonic() - start < 8
    assert not (tmp_path / "out.zarr").exists() and not (tmp_path / "out.zarr.lock").exists()


def test_http_server_as_scheduler_is_refused(tmp_path, style_image, http_server):
    import time

    from urst_dask.errors import SchedulerError

    start = time.monotonic()
    with pytest.raises(SchedulerError, match=f"scheduler='{http_server}': did not answer as a Dask scheduler"):
        stylize_on(http_server, tmp_path, style_image, connect_timeout=2)
    assert time.monotonic() - start < 8


def test_real_scheduler_passes_the_probe_and_a_worker_does_not(client):
    from urst_dask.errors import SchedulerError
    from urst_dask.pipeline.cluster import check_scheduler

    check_scheduler(client.scheduler.address, 5)
    worker = next(iter(client.scheduler_info()["workers"]))
    with pytest.raises(SchedulerError, match="answered, but as a Dask Worker, not as a Dask scheduler"):
        check_scheduler(worker, 5)


@pytest.mark.parametrize("scheduler, fragment", [
    ("notascheme://x", "scheduler='notascheme://x': unknown address scheme 'notascheme'"),
    ("silent", "did not answer as a Dask scheduler within 1 s"),
])
def test_cli_bad_scheduler_is_one_line_exit_2(tmp_path, capsys, silent_server, scheduler, fragment):
    src = make_input(tmp_path / "in.zarr", random_image(40, 50, seed=15))
    Image.fromarray(random_image(32, 32, seed=16)).save(tmp_path / "s.png")
    address = silent_server if scheduler == "silent" else scheduler
    rc = main(["stylize", str(src), str(tmp_path / "s.png"), "-o", str(tmp_path / "out.zarr"), "--method", "identity",
               "--weights", str(tmp_path), "--no-progress", "--scheduler", address, "--scheduler-timeout", "1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and err.startswith("urst-dask: error: ") and fragment in err


@pytest.mark.parametrize("address, fragment", [("tcp://127.0.0.1", "missing port number"),
                                               ("tcp://127.0.0.1:port", "invalid literal"),
                                               ("notascheme://x", "unknown address scheme 'notascheme'")])
def test_malformed_scheduler_address_is_a_parameter_error(address, fragment):
    from urst_dask.errors import ParameterError
    from urst_dask.pipeline.cluster import check_scheduler

    with pytest.raises(ParameterError, match=f"scheduler='{address}': {fragment}.*expected an address like "
                                             "tcp://host:8786"):
        check_scheduler(address, 1)


def test_a_worker_that_cannot_set_up_urst_dask_is_one_line():
    """A worker whose environment lacks urst-dask failed the plugin's registration with a plain
    Exception: 60 lines of traceback and exit 1."""
    from urst_dask.errors import SchedulerError
    from urst_dask.pipeline.cluster import _register
    from urst_dask.settings import ClusterOptions

    class Refusing:
        def register_plugin(self, plugin):
            raise Exception("ImportError('No module named urst_dask')")

    with pytest.raises(SchedulerError, match=r"scheduler='tcp://10.0.0.1:8786': a worker could not set up urst-dask "
                                             r"\(ImportError\('No module named urst_dask'\)\); its Python environment"):
        _register(Refusing(), ClusterOptions(scheduler="tcp://10.0.0.1:8786"))


def test_the_client_logger_is_quiet_too():
    """distributed.client has a level of its own: a scheduler lost mid-run printed its ERROR line
    ("Failed to reconnect to scheduler") before the one-line error."""
    import logging

    from urst_dask.pipeline.cluster import QUIET_LOGGERS, quiet_logging

    saved = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    try:
        quiet_logging()
        assert logging.getLogger("distributed.client").getEffectiveLevel() == logging.CRITICAL
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
