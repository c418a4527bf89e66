"""Scratch data (decoded copies of PNG/JPEG inputs) lives beside the output or where
``--scratch``/``URST_DASK_SCRATCH`` says, and never outlives the run: not on success, not on
SIGTERM, and a killed run's leftover is removed by the next run (issue 10, item 9)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import urst_dask
from urst_dask.io import scratch, store
from urst_dask.testing import random_image

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


def dead_pid() -> int:
    """The pid of a process that has just exited (not reused this quickly)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def leftovers(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*"))


@pytest.fixture
def pngs(tmp_path):
    Image.fromarray(random_image(128, 128, seed=4)).save(tmp_path / "c.png")
    Image.fromarray(random_image(64, 64, seed=5)).save(tmp_path / "s.png")
    return tmp_path


def test_sigterm_unwinds_like_ctrl_c_and_leaves_no_scratch(pngs):
    """The CLI, in its own session, on a PNG with the slow toy network (1 s per window, 16
    windows): SIGTERM once the tile stage has written its first chunk.  Exit status 143, one
    ``urst-dask:`` line, and neither ``<out>.scratch`` nor a ``urst-dask-*`` folder in TMPDIR."""
    tmp = pngs / "tmp"
    tmp.mkdir()
    out = pngs / "out.zarr"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p),
               TMPDIR=str(tmp), URST_TOY_DELAY="1.0",
               DASK_DISTRIBUTED__WORKER__PRELOAD=json.dumps(["urst_dask.testing.preload"]))
    env.pop(scratch.ENV_VAR, None)
    argv = ["stylize", str(pngs / "c.png"), str(pngs / "s.png"), "-o", str(out), "--method", "identity-slow",
            "--weights", str(pngs), "--stride", "32", "--margin", "4", "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, *argv], env=env, cwd=pngs, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        decoded, chunks = [], []
        while time.monotonic() < deadline and proc.poll() is None and not chunks:
            decoded = list(Path(f"{out}.scratch").glob("run-*/urst-dask-*/c.png.zarr"))
            chunks = [p for p in (out / "0" / "c").rglob("*") if p.is_file()] if (out / "0" / "c").is_dir() else []
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        assert chunks and decoded, "the run did not start within 120 s"
        os.kill(proc.pid, signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    ours = [line for line in stderr.splitlines() if line.startswith("urst-dask:")]
    assert proc.returncode == 143, stderr
    assert ours == ["urst-dask: terminated (SIGTERM); any output store is left marked incomplete"], stderr
    assert not Path(f"{out}.scratch").exists()
    assert [p for p in leftovers(tmp) if "urst-dask" in p] == []  # (dask keeps its own dask-scratch-space locks)
    assert store.read_attrs(out)["status"] == "running"  # interrupted, never claims completion


def test_next_run_removes_a_killed_runs_scratch(pngs, client, style_image):
    """A run folder left by a dead process of this host is removed by the next run on the same
    output; one of another host is left alone (its process cannot be checked)."""
    root = Path(f"{pngs / 'out.zarr'}.scratch")
    stale = root / f"run-{socket.gethostname()}-{dead_pid()}-0badcafe"
    (stale / "urst-dask-x" / "c.png.zarr").mkdir(parents=True)
    (stale / "urst-dask-x" / "c.png.zarr" / "zarr.json").write_text("{}")
    foreign = root / "run-some-other-host-1-0badcafe"
    foreign.mkdir()
    urst_dask.stylize(pngs / "c.png", style_image, pngs / "out.zarr", method="identity", weights=pngs,
                      client=client, stride=32, margin=4)
    assert not stale.exists() and foreign.is_dir()
    assert [p.name for p in root.iterdir()] == [foreign.name]
    foreign.rmdir()
    urst_dask.stylize(pngs / "c.png", style_image, pngs / "out2.zarr", method="identity", weights=pngs,
                      client=client, stride=32, margin=4)
    assert not Path(f"{pngs / 'out2.zarr'}.scratch").exists()


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_scratch_folder_can_be_chosen(pngs, client, style_image, monkeypatch, how):
    """``stylize(scratch=DIR)`` (``--scratch DIR``) or ``URST_DASK_SCRATCH``: the decoded copies of
    the content and style go there, not beside the output, and are gone after the run."""
    made = []
    real = scratch.make
    monkeypatch.setattr(scratch, "make", lambda folder: made.append(folder) or real(folder))
    chosen = pngs / "elsewhere"
    kwargs = {"scratch": chosen} if how == "argument" else {}
    if how == "environment":
        monkeypatch.setenv(scratch.ENV_VAR, str(chosen))
    out = urst_dask.stylize(pngs / "c.png", pngs / "s.png", pngs / "out.zarr", method="identity", weights=pngs,
                            client=client, stride=32, margin=4, **kwargs)
    assert len(made) == 2 and {p.parent for p in made} == {chosen}  # content and style
    assert not chosen.exists() and not Path(f"{out}.scratch").exists()
    np.testing.assert_array_equal(store.open_output(out).compute(),
                                  np.asarray(Image.open(pngs / "c.png")))


def test_a_scratch_folder_of_yours_is_kept(pngs, client):
    """A root that existed before the run (yours: a fast disk's folder, its permissions set) is
    left in place, empty; only a root urst-dask made is removed with its last run folder."""
    mine = pngs / "fast"
    mine.mkdir()
    urst_dask.stylize(pngs / "c.png", pngs / "s.png", pngs / "out.zarr", method="identity", weights=pngs,
                      client=client, stride=32, margin=4, scratch=mine)
    assert mine.is_dir() and list(mine.iterdir()) == []


def test_a_run_folder_whose_pid_was_reused_is_removed(tmp_path):
    """The folder names a live pid, but that process (here: this one) started after the folder
    was last changed: its run is gone (a restarted container reuses pids); a live run's stays."""
    root = tmp_path / "out.zarr.scratch"
    old = root / f"run-{socket.gethostname()}-{os.getpid()}-0ldcafe0"
    old.mkdir(parents=True)
    os.utime(old, (1_000_000_000, 1_000_000_000))  # 2001: long before this process started
    live = root / f"run-{socket.gethostname()}-{os.getpid()}-11vecafe"
    live.mkdir()
    assert scratch.clean_stale(root) == [old]
    assert live.is_dir()


def test_owner_is_read_from_the_folder_name():
    assert scratch.owner(Path("/x/run-my-host-name-1234-abcd1234")) == ("my-host-name", 1234)
    assert scratch.owner(Path("/x/urst-dask-abc")) is None
    assert scratch.owner(Path("/x/run-host-notapid-ab")) is None


def test_a_full_disk_while_decoding_is_one_error_naming_the_scratch_folder(tmp_path, monkeypatch):
    """Decoding a PNG/JPEG into the scratch folder on a full disk: one OutputError naming the
    folder and what to do (it was a 60-line traceback through zarr), and no half-written copy."""
    import errno

    import zarr
    from PIL import Image

    from urst_dask.errors import OutputError
    from urst_dask.io import images

    Image.fromarray(random_image(40, 50, seed=3)).save(tmp_path / "c.png")
    real = zarr.create_array

    def full(store, *a, **kw):
        real(store, *a, **kw)  # the folder is made, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(zarr, "create_array", full)
    root = tmp_path / "scratch"
    with pytest.raises(OutputError, match=r"scratch='.*scratch/run-[^']*': cannot write the decoded copy of "
                       r"content='.*c.png' \(No space left on device\); free some space, or pass --scratch DIR"):
        images.open_image(tmp_path / "c.png", scratch_dir=root / "run-x")
    assert not [p for p in (root / "run-x").rglob("*.zarr")]


def test_a_missing_scratch_folder_from_the_environment_is_named_as_scratch(tmp_path, monkeypatch):
    """Only the default scratch folder, beside the output, is named as the output's folder."""
    from urst_dask.errors import OutputError

    monkeypatch.setenv(scratch.ENV_VAR, str(tmp_path / "no-such-dir" / "scratch"))
    folder = scratch.start(tmp_path / "o.zarr")  # the output's folder exists: nothing refused here
    with pytest.raises(OutputError, match=r"scratch='.*no-such-dir/scratch': folder '.*no-such-dir' does not exist"):
        scratch.make(folder)
    monkeypatch.delenv(scratch.ENV_VAR)
    with pytest.raises(OutputError, match=r"output='.*nodir/o.zarr': folder '.*nodir' does not exist"):
        scratch.start(tmp_path / "nodir" / "o.zarr")
