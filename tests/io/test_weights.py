"""Weights: resolution order, clear messages, fetch with sha256 verification over HTTP."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import torch

from urst_dask.errors import WeightsError
from urst_dask.io import weights as w
from urst_dask.models import wct16x


@pytest.fixture
def server(tmp_path, weights):
    """127.0.0.1 HTTP server laid out like the upstream repository (upstream URL paths)."""
    root = tmp_path / "www"
    for wf in wct16x.WEIGHTS:
        dest = root / urlsplit(wf.url).path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(weights / wf.relpath, dest)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


def test_fetch_downloads_and_verifies(server, tmp_path):
    mirror, _ = server
    dest = tmp_path / "cache"
    paths = w.fetch(wct16x.WEIGHTS, dest, mirror=mirror)
    assert len(paths) == 10
    for wf in wct16x.WEIGHTS:
        assert w.file_status(dest, wf) == "ok"
    assert not list(dest.rglob(".part-*"))
    mask = os.umask(0)
    os.umask(mask)
    assert {p.stat().st_mode & 0o777 for p in paths} == {0o666 & ~mask}  # readable by a shared folder's users


def test_saved_checkpoints_have_the_umask_mode(tmp_path):
    """mkstemp makes 0600 files: trained checkpoints were unreadable by anyone else."""
    from urst_dask.io.checkpoints import save_tensors

    old = os.umask(0o022)
    try:
        path = save_tensors({"w": torch.zeros(2)}, tmp_path / "m.pth")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_fetch_rejects_a_corrupt_download(server, tmp_path):
    mirror, root = server
    wf = wct16x.WEIGHTS[0]
    (root / urlsplit(wf.url).path.lstrip("/")).write_bytes(b"corrupt")
    dest = tmp_path / "cache"
    with pytest.raises(WeightsError, match=f"download of {wf.relpath} .*sha256 .* != expected {wf.sha256}"):
        w.fetch([wf], dest, mirror=mirror)
    assert not (dest / wf.relpath).exists()
    assert not list(dest.rglob(".part-*"))


def test_fetch_reports_http_errors(server, tmp_path):
    mirror, root = server
    shutil.rmtree(root)
    with pytest.raises(WeightsError, match="failed: HTTP Error 404"):
        w.fetch(wct16x.WEIGHTS[:1], tmp_path / "cache", mirror=mirror)


def test_fetch_from_a_bad_mirror_is_one_weights_error(tmp_path):
    wf = wct16x.WEIGHTS[0]
    with pytest.raises(WeightsError, match=f"download of {wf.relpath} from notascheme/.* failed: unknown url type"):
        w.fetch([wf], tmp_path / "cache", mirror="notascheme")
    assert not list((tmp_path / "cache").rglob(".part-*"))


def test_cli_fetch(server, tmp_path, capsys):
    from urst_dask.cli import main

    mirror, _ = server
    assert main(["weights", "fetch", "wct16x", "--dest", str(tmp_path / "c"), "--mirror", mirror]) == 0
    assert main(["weights", "fetch", "wct16x", "--dest", str(tmp_path / "c"), "--mirror", mirror]) == 0
    assert capsys.readouterr().err.count("ok       wct16x/") == 10  # second run: nothing downloaded (progress: stderr)
    assert main(["weights", "fetch", "wct16x", "--dest", str(tmp_path / "c"), "--mirror", mirror, "-q"]) == 0
    got = capsys.readouterr()
    assert got.err == "" and got.out == f"weights in {tmp_path / 'c'}\n"  # -q: the final line only


def test_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("URST_DASK_WEIGHTS", str(tmp_path))
    assert w.resolve_weights_dir() == tmp_path
    assert w.resolve_weights_dir(tmp_path / "..") == tmp_path / ".."
    monkeypatch.delenv("URST_DASK_WEIGHTS")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert w.resolve_weights_dir() == tmp_path / "xdg" / "urst-dask" / "weights"


def test_hash_mismatch_is_reported(tmp_path):
    wf = wct16x.WEIGHTS[0]
    bad = tmp_path / wf.relpath
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"x")
    with pytest.raises(WeightsError, match="does not match the expected"):
        w.load_state_dict(tmp_path, wf)
    assert w.file_status(tmp_path, wf) == "bad-hash"


def test_upstream_urls_point_at_the_right_folders():
    enc = [wf.url for wf in wct16x.WEIGHTS if "/e" in wf.relpath]
    dec = [wf.url for wf in wct16x.WEIGHTS if "/d" in wf.relpath]
    assert all("/wct_se_16x_new/" in u for u in enc) and all("/wct_se_16x_new_sd/" in u for u in dec)
    assert Path(urlsplit(wct16x.WEIGHTS[0].url).path).name == "20191110-133713_E20.pth"



def test_an_empty_weights_path_is_refused():
    """--weights "" (an unset variable typed as "$W") meant the current folder."""
    with pytest.raises(WeightsError, match="weights='': an empty path"):
        w.resolve_weights_dir("")


def test_unreadable_weight_files_are_named(tmp_path, monkeypatch):
    """A file or folder without read permission ended in a PermissionError traceback (exit 1)."""
    wf = wct16x.WEIGHTS[0]
    path = tmp_path / wf.relpath
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(w, "sha256_file", denied)
    with pytest.raises(WeightsError, match=f"weights file {path}: cannot be read \\(Permission denied\\)"):
        w.file_digest(path)
    monkeypatch.setattr(Path, "is_file", denied)
    with pytest.raises(WeightsError, match=f"weights file {path}: cannot be read"):
        w.verify_file(path, wf)
    assert w.file_status(tmp_path, wf) == "unreadable"


def test_fetch_into_a_file_is_named(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(WeightsError, match=f"dest='{tmp_path / 'afile'}': cannot write"):
        w.fetch(wct16x.WEIGHTS[:1], tmp_path / "afile", mirror="http://127.0.0.1:9")


def test_the_missing_file_hint_names_the_folder(tmp_path):
    wf = wct16x.WEIGHTS[0]
    with pytest.raises(WeightsError, match=f"run `urst-dask weights fetch --dest {tmp_path}` to download it"):
        w.verify_file(tmp_path / wf.relpath, wf)


def test_shape_mismatches_of_any_rank_are_named():
    net = torch.nn.Conv2d(3, 4, 3)
    try:
        net.load_state_dict({"weight": torch.zeros(5, 5), "bias": torch.zeros(4)})
    except RuntimeError as exc:
        error = w.state_dict_mismatch(exc, ["x.pth"], "johnson")
    assert error is not None
    assert "1 shape mismatches (weight torch.Size([5, 5]) in the file, torch.Size([4, 3, 3, 3]) in the network)" \
        in str(error)
