"""kill -9 of a whole run, then the same command again: finishes byte-identical to a clean run."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from urst_dask.io import chunkio, store
from urst_dask.pipeline.synthetic import synthetic_array
from urst_dask.testing.processes import kill_when


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "urst_dask.cli", *args]


@pytest.mark.parametrize("blend", [pytest.param("crop", marks=pytest.mark.slow), "linear",
                                   pytest.param("gaussian", marks=pytest.mark.slow)])
def test_kill_9_then_rerun_is_byte_identical(tmp_path, weights, blend):
    """With a blend, the rerun recomputes the missing chunks' neighbour windows too; those
    are deterministic, so the store ends byte-identical to a clean run all the same."""
    content = tmp_path / "c.png"
    Image.fromarray(synthetic_array((480, 720), seed=3).compute()).save(content)
    style = tmp_path / "s.png"
    from urst_dask.synthetic import demo_style

    Image.fromarray(demo_style(128)).save(style)
    common = ["--weights", str(weights), "--style-size", "128", "--stride", "240", "--margin", "16", "--no-progress",
              "--blend", blend]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    clean = tmp_path / "clean.zarr"
    subprocess.run(_cli("stylize", str(content), str(style), "-o", str(clean), *common), check=True, env=env,
                   timeout=300)

    out = tmp_path / "killed.zarr"
    cmd = _cli("stylize", str(content), str(style), "-o", str(out), *common)
    kill_when(cmd, lambda: out.exists() and len(chunkio.present_chunks(out)) >= 1, env=env)
    done_before = chunkio.present_chunks(out)
    assert store.read_attrs(out)["status"] == "running"
    assert 1 <= len(done_before) < 6  # 2 x 3 chunks: interrupted mid-run
    half = out / "0" / "c" / "0" / "1" / f"2.{'ab' * 16}.partial"  # what a kill mid-write leaves (zarr's name)
    half.parent.mkdir(parents=True, exist_ok=True)
    half.write_bytes(b"half a chunk")
    kept = out / "notes.partial"  # not zarr's pattern: not ours to remove
    kept.write_text("x")

    rerun = subprocess.run(_cli("stylize", str(content), str(style), "-o", str(out), *common), env=env,
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert store.read_attrs(out)["status"] == "complete"
    assert chunkio.present_chunks(out) == {(r, c) for r in range(2) for c in range(3)}
    assert not half.exists() and kept.exists()
    np.testing.assert_array_equal(store.open_output(out).compute(), store.open_output(clean).compute())


def test_fingerprint_mismatch_refuses_to_resume(tmp_path, weights, capsys):
    from urst_dask.cli import main

    content = tmp_path / "c.png"
    Image.fromarray(synthetic_array((64, 64), seed=3).compute()).save(content)
    out = tmp_path / "o.zarr"
    base = ["stylize", str(content), "mosaic", "--method", "johnson", "-o", str(out), "--weights", str(weights),
            "--no-progress", "--workers", "1"]
    assert main(base) == 0
    assert main([*base, "--alpha", "0.5"]) == 2
    assert "already exists from a different run" in capsys.readouterr().err
    assert main([*base, "--alpha", "0.5", "--overwrite"]) == 0


def test_paths_typed_differently_are_the_same_run(tmp_path, weights, monkeypatch, capsys):
    """The fingerprint identifies the content by its resolved identity and the style by its
    sha256, not by the paths as typed: relative, then absolute, is the same run."""
    from urst_dask.cli import main

    Image.fromarray(synthetic_array((64, 64), seed=3).compute()).save(tmp_path / "c.png")
    Image.fromarray(synthetic_array((48, 48), seed=4).compute()).save(tmp_path / "s.png")
    monkeypatch.chdir(tmp_path)
    tail = ["-o", "o.zarr", "--method", "passthrough", "--workers", "1", "--in-process"]
    assert main(["stylize", "c.png", "s.png", *tail, "--no-progress"]) == 0
    first = store.read_attrs(tmp_path / "o.zarr")
    capsys.readouterr()
    assert main(["stylize", str(tmp_path / "c.png"), str(tmp_path / "s.png"), *tail]) == 0
    assert "already complete (same fingerprint)" in capsys.readouterr().err
    assert store.read_attrs(tmp_path / "o.zarr")["fingerprint"] == first["fingerprint"]
    assert first["content"]["path"] == "c.png"  # the record keeps what was typed


def test_a_zarr_array_rewritten_in_place_is_a_different_run(tmp_path, client):
    """dask names ``da.from_zarr`` by path, not pixels: the fingerprint also digests three of
    the array's blocks, so a store made before the rewrite is not 'already complete' after it."""
    import dask.array as da
    import zarr

    import urst_dask
    from urst_dask.errors import OutputError

    z = zarr.create_array(str(tmp_path / "in.zarr"), shape=(96, 128, 3), chunks=(32, 32, 3), dtype="u1")
    z[...] = 50
    style = synthetic_array((48, 48), seed=4).compute()
    kw = dict(method="passthrough", stride=32, margin=0, client=client, progress=False)
    out = urst_dask.stylize(da.from_zarr(str(tmp_path / "in.zarr")), style, tmp_path / "o.zarr", **kw)
    assert urst_dask.stylize(da.from_zarr(str(tmp_path / "in.zarr")), style, out, **kw) == out  # same: complete
    z[...] = 200
    with pytest.raises(OutputError, match="already exists from a different run"):
        urst_dask.stylize(da.from_zarr(str(tmp_path / "in.zarr")), style, out, **kw)


def test_a_lost_chunk_write_keeps_the_store_running(tmp_path, client, monkeypatch):
    """A chunk whose write went elsewhere (a worker in another folder, say) is not on disk: the
    store is not marked complete, and the same call then finishes it."""
    import urst_dask
    from urst_dask.errors import OutputError

    real = chunkio.write_region

    def lose_one(path, y0, x0, block, token=""):
        if (y0, x0) != (32, 32):
            real(path, y0, x0, block, token)

    image = synthetic_array((64, 96), seed=6).compute()
    kw = dict(method="passthrough", stride=32, margin=0, client=client, progress=False)
    monkeypatch.setattr(chunkio, "write_region", lose_one)
    with pytest.raises(OutputError, match=r"1 image chunks were not written \(row:col 1:1\)"):
        urst_dask.stylize(image, image, tmp_path / "o.zarr", **kw)
    assert store.read_attrs(tmp_path / "o.zarr")["status"] == "running"
    monkeypatch.setattr(chunkio, "write_region", real)
    out = urst_dask.stylize(image, image, tmp_path / "o.zarr", **kw)
    assert store.read_attrs(out)["status"] == "complete"
    np.testing.assert_array_equal(store.open_output(out).compute(), image)
