"""kill -9 of a whole ``urst-dask video`` run mid-sequence, then the same command again:
every frame present once, byte-identical to an uninterrupted run.

The cheap ``passthrough`` network keeps it fast; the ``ema`` policy makes each frame's
statistics depend on every frame before it, so the statistics keys recorded by the resumed
run (sha256 of the values used) show that the chain continued from the records exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from urst_dask.pipeline.synthetic import synthetic_array
from urst_dask.synthetic import demo_style
from urst_dask.testing.processes import kill_when


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "urst_dask.cli", "video", *args]


def test_kill_9_mid_sequence_then_rerun_is_byte_identical(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    scene = synthetic_array((96, 400), seed=5).compute()
    n = 16
    for t in range(n):
        Image.fromarray(scene[:, 8 * t : 8 * t + 128]).save(frames / f"pan_{t:03d}.png")
    style = tmp_path / "s.png"
    Image.fromarray(demo_style(64)).save(style)
    common = [str(frames), str(style), "--method", "passthrough", "--style-size", "64", "--thumb-size", "64",
              "--stride", "64", "--margin", "16", "--stats-policy", "ema", "--in-flight", "2", "--no-progress"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    clean = tmp_path / "clean"
    subprocess.run(_cli(*common, "-o", str(clean)), check=True, env=env, timeout=300)

    out = tmp_path / "killed"
    done = tmp_path / "killed.video-state" / "done"
    kill_when(_cli(*common, "-o", str(out)), lambda: done.is_dir() and len(list(done.glob("*.json"))) >= 3, env=env)
    written = sorted(p.name for p in out.glob("*.png"))
    assert 3 <= len(written) < n, written
    assert json.loads((out / "urst_video.json").read_text())["status"] == "running"

    rerun = subprocess.run(_cli(*common, "-o", str(out)), env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    names = [f"pan_{t:03d}.png" for t in range(n)]
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".png") == names  # none missing, none extra
    assert not list(out.glob(".*")) and not (tmp_path / "killed.video-state").exists()
    for name in names:
        assert (out / name).read_bytes() == (clean / name).read_bytes(), name
    meta = json.loads((out / "urst_video.json").read_text())
    assert meta["status"] == "complete" and [f["index"] for f in meta["frames"]] == list(range(n))
    ref = json.loads((clean / "urst_video.json").read_text())
    assert [f["stats_sha256"] for f in meta["frames"]] == [f["stats_sha256"] for f in ref["frames"]]
    assert len({f["stats_sha256"] for f in meta["frames"]}) == n  # ema: every frame's statistics differ
    np.testing.assert_array_equal(np.asarray(Image.open(out / names[5])), scene[:, 40:168])  # passthrough
