"""``precision="auto"`` in a video run (wct16x): one bf16 probe decision for the whole
sequence, from its first, middle and last frames; every frame in that precision."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from urst_dask.engine import probe
from urst_dask.pipeline.video import stylize_video
from urst_dask.testing import random_image


def _frames(folder, n=4):
    folder.mkdir()
    for t in range(n):
        Image.fromarray(random_image(64, 96, seed=40 + t)).save(folder / f"f{t:03d}.png")
    return folder


@pytest.mark.parametrize("bar, want", [(-1.0, "bfloat16"), (1000.0, "float32")])
def test_auto_settles_one_precision_for_the_sequence(tmp_path, client, style_image, weights, monkeypatch, bar, want):
    monkeypatch.setattr(probe, "cpu_native_bf16", lambda: True)
    monkeypatch.setattr(probe, "PROBE_BAR_DB", bar)
    src = _frames(tmp_path / "in")

    def run(name, precision):
        return stylize_video(src, style_image, tmp_path / name, method="wct16x", weights=weights, client=client,
                             precision=precision, backend="eager", stride=64, style_size=64)

    auto, asked = run("auto", "auto"), run("asked", want)
    meta = json.loads((auto / "urst_video.json").read_text())
    choice = meta["precision_auto"]
    assert choice["precision"] == want and choice["frames"] == [0, 2, 3] and choice["bar_db"] == bar
    assert "precision_auto" not in json.loads((asked / "urst_video.json").read_text())
    for t in range(4):
        a, b = (np.asarray(Image.open(d / f"f{t:03d}.png")) for d in (auto, asked))
        np.testing.assert_array_equal(a, b)
