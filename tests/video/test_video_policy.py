"""Video statistics policies, shot cuts and the flicker metric (pure functions, and a tiny
end-to-end run with the toy ``identity`` network)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from urst_dask.errors import ParameterError, ParameterTypeError
from urst_dask.metrics import flicker, global_shift
from urst_dask.stats import NormStats
from urst_dask.video import VideoOptions, stylize_video
from urst_dask.video.cuts import colour_histogram, detect_cuts, histogram_distance, sample_frames, shots
from urst_dask.video.policy import ema_sequence, from_moments, moments


def _scene(seed: int, h: int = 96, w: int = 256) -> np.ndarray:
    """A smooth random colour field (a 'photograph') for generated pans."""
    rng = np.random.default_rng(seed)
    base = rng.random((h // 16 + 2, w // 16 + 2, 3)) * rng.random(3) * 255
    big = np.kron(base, np.ones((16, 16, 1)))[:h, :w]
    return np.clip(big + rng.normal(0, 4, big.shape), 0, 255).astype(np.uint8)


def _sequence(cut_at: tuple[int, ...], n: int, size=(48, 64)) -> list[np.ndarray]:
    """A pan over one scene, switching to another scene at each cut."""
    scenes = [_scene(s) for s in range(len(cut_at) + 1)]
    out = []
    for t in range(n):
        s = sum(t >= c for c in cut_at)
        out.append(scenes[s][: size[0], 3 * t : 3 * t + size[1]])
    return out


def test_cut_detection_finds_the_known_cuts():
    frames = _sequence((5, 11), 16)
    hists = [colour_histogram(f) for f in frames]
    assert detect_cuts(hists, 0.3) == [5, 11]
    assert shots([5, 11], 16) == [(0, 5), (5, 11), (11, 16)]
    within = max(histogram_distance(hists[t - 1], hists[t]) for t in range(1, 16) if t not in (5, 11))
    across = min(histogram_distance(hists[t - 1], hists[t]) for t in (5, 11))
    assert within < 0.3 < across
    assert detect_cuts(hists, 1.0) == []  # nothing is ever further apart than 1


def test_sample_frames_spreads_over_the_shot():
    assert sample_frames(10, 30, 4) == [10, 16, 23, 29]
    assert sample_frames(0, 3, 4) == [0, 1, 2]
    assert sample_frames(5, 9, 1) == [7]


def _stats(rng: np.random.Generator, c: int = 4) -> NormStats:
    x = rng.normal(size=(c, 500)) * rng.uniform(0.5, 2.0, size=(c, 1)) + rng.normal(size=(c, 1))
    mu, cov = x.mean(1), np.cov(x)
    evals, evecs = np.linalg.eigh(cov + np.eye(c))
    whiten = (evecs * evals**-0.5) @ evecs.T
    return NormStats.build("toy", {"wct": {"mean": mu, "whiten": whiten},
                                   "in": {"mean": mu.astype(np.float32), "std": np.sqrt(x.var(1) + 1e-5).astype(np.float32)}})


def test_moments_round_trip():
    s = _stats(np.random.default_rng(0))
    back = from_moments(moments(s), s)
    for point in s.points():
        for field, v in s[point].items():
            np.testing.assert_allclose(back[point][field], v, rtol=1e-5, atol=1e-6)


def test_ema_follows_its_recurrence_and_resets_at_cuts():
    rng = np.random.default_rng(1)
    raw = [_stats(rng) for _ in range(6)]
    d = 0.8
    out, states = ema_sequence(raw, starts={4}, decay=d)
    m = [moments(s) for s in raw]
    expect = m[0]
    for t in range(6):
        if t > 0:
            expect = m[t] if t == 4 else {p: {f: d * expect[p][f] + (1 - d) * m[t][p][f] for f in m[t][p]} for p in m[t]}
        for p in expect:
            for f in expect[p]:
                np.testing.assert_allclose(states[t][p][f], expect[p][f], rtol=1e-12)
    # the whitening is re-derived from the averaged covariance: W^-2 = S - mu mu^T
    w, mu = out[2]["wct"]["whiten"], out[2]["wct"]["mean"]
    s2 = states[2]["wct"]["whiten"]
    np.testing.assert_allclose(np.linalg.inv(w @ w), s2 - np.outer(mu, mu), rtol=1e-8)
    # a cut resets: frame 4 gets its own statistics back
    np.testing.assert_allclose(out[4]["wct"]["whiten"], raw[4]["wct"]["whiten"], rtol=1e-6)
    np.testing.assert_allclose(out[4]["in"]["std"], raw[4]["in"]["std"], rtol=1e-5)
    assert not np.allclose(out[5]["wct"]["mean"], raw[5]["wct"]["mean"])


@pytest.mark.parametrize("kwargs", [{"stats_policy": "weekly"}, {"ema_decay": 1.5}, {"cut_threshold": -0.1},
                                    {"in_flight": 0}, {"shot_frames": 0}, {"crf": 60}, {"fps": True},
                                    {"format": "bmp"}, {"format": 5}, {"codec": 5}, {"pix_fmt": ""}])
def test_bad_video_options_are_refused(kwargs):
    """Each refused when the options are made (a bool fps was a 1-fps video; a bad format or
    codec was refused only when the run started)."""
    with pytest.raises((ParameterError, ParameterTypeError), match=next(iter(kwargs))):
        VideoOptions(**kwargs)


def test_frame_format_spellings():
    assert VideoOptions(format="TIFF").format == "tif"
    assert VideoOptions(format=".jpeg").format == "jpg"
    assert VideoOptions().format is None


@pytest.mark.parametrize("old, new", [("stats", "stats_policy"), ("window", "in_flight")])
def test_the_earlier_video_setting_names_say_the_new_ones(tmp_path, old, new):
    """``stats`` is stylize's store of statistics and ``window`` the tiles': video's own were
    renamed, and the old keyword says so; the command line still takes the old flags."""
    with pytest.raises(ParameterTypeError, match=f"got {old}=.*: this setting is now {new}="):
        stylize_video(tmp_path / "in", tmp_path / "s.png", tmp_path / "out", **{old: 1})
    from urst_dask.cli import _parser

    a = _parser().parse_args(["video", "f/", "s.png", "-o", "o/", "--stats", "ema", "--window", "2"])
    assert (a.stats_policy, a.in_flight) == ("ema", 2)
    a = _parser().parse_args(["video", "f/", "s.png", "-o", "o/"])
    assert (a.stats_policy, a.in_flight) == ("shot", 3)


def test_global_shift_and_flicker():
    scene = _scene(7, 128, 256)
    content = [scene[:, 4 * t : 4 * t + 128] for t in range(6)]
    assert global_shift(content[0], content[1]) == (0, -4)
    steady = flicker(content, content)
    assert steady.flicker == 0.0 and steady.pairs == 5 and steady.max_shift == 4
    rng = np.random.default_rng(0)
    noisy = [np.clip(c.astype(int) + rng.integers(-20, 21, c.shape), 0, 255).astype(np.uint8) for c in content]
    shaky = flicker(noisy, content)
    assert shaky.flicker > 3.0  # ~10 levels of change per pixel where the content has none (floor 1 level)
    assert flicker(noisy, content, cuts=[3]).pairs == 4


def _write(folder, frames):
    folder.mkdir()
    for t, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"shot_{t:04d}.png")


def test_policies_end_to_end_record_keys_and_share_statistics(tmp_path, client, style_image):
    frames = _sequence((4,), 7)
    _write(tmp_path / "in", frames)
    keys = {}
    for policy in ("per-frame", "shot", "ema"):
        out = stylize_video(tmp_path / "in", style_image, tmp_path / policy, method="identity", client=client,
                            stats_policy=policy, stride=32, shot_frames=3)
        meta = json.loads((out / "urst_video.json").read_text())
        assert meta["status"] == "complete" and meta["cuts"] == [4] and meta["stats_policy"] == policy
        keys[policy] = [f["stats_sha256"] for f in meta["frames"]]
        for t, f in enumerate(frames):  # identity network: the frames come back as they went in
            np.testing.assert_array_equal(np.asarray(Image.open(out / f"shot_{t:04d}.png")), f)
        assert not (tmp_path / f"{policy}.video-state").exists()
    shot = keys["shot"]
    assert len(set(shot[:4])) == 1 and len(set(shot[4:])) == 1 and shot[0] != shot[4]
    assert len(set(keys["per-frame"])) == 7
    assert keys["ema"][0] == keys["per-frame"][0] and keys["ema"][4] == keys["per-frame"][4]  # reset at the cut
    assert keys["ema"][1] != keys["per-frame"][1]
    # the identity output changes exactly as its content does: flicker at most 1
    from urst_dask.api import compare

    f = compare(tmp_path / "shot", video=True)
    assert f["pairs"] == 5 and f["cuts_skipped"] == 1 and f["cuts"] == [4] and f["flicker"] <= 1.0
    assert f["content"] == str(tmp_path / "in")


@pytest.mark.parametrize("policy", ["per-frame", "ema"])
def test_a_per_frame_run_reads_each_frames_statistics_back_when_it_is_tiled(tmp_path, client, style_image,
                                                                            monkeypatch, policy):
    """A per-frame or ema run held every frame's statistics in memory to its end (wct16x: 0.64 MB
    a frame, 6 GB for 10 000 frames): they are read back from the run's records, one at a time."""
    from urst_dask.io import framestore
    from urst_dask.pipeline import video as video_pipeline

    frames = _sequence((), 5)
    _write(tmp_path / "in", frames)
    held, reads = [], []
    real_statistics, real_read = video_pipeline._Run._statistics, framestore.RunState.probe_stats
    monkeypatch.setattr(video_pipeline._Run, "_statistics",
                        lambda self, *a: (lambda got: held.append(type(got[0]).__name__) or got)(
                            real_statistics(self, *a)))
    monkeypatch.setattr(framestore.RunState, "probe_stats", lambda self, t: reads.append(t) or real_read(self, t))
    given = []  # the frame graphs take the style and statistics by key: distributed's client kept the data
    real_graph = video_pipeline._Run._frame_graph  # embedded in every graph it computed (0.3 MB a frame)
    monkeypatch.setattr(video_pipeline._Run, "_frame_graph",
                        lambda self, t, stats, style, *a: given.append((stats, style))
                        or real_graph(self, t, stats, style, *a))
    out = stylize_video(tmp_path / "in", style_image, tmp_path / "out", method="identity", client=client,
                        stats_policy=policy, stride=32)
    assert held == ["SavedStats"]  # read back from the records, one frame at a time
    assert sorted(set(reads)) == list(range(5))
    from dask.delayed import Delayed

    assert len(given) == 5 and all(isinstance(x, Delayed) for pair in given for x in pair)
    meta = json.loads((out / "urst_video.json").read_text())
    assert len({f["stats_sha256"] for f in meta["frames"]}) == 5
    for t, f in enumerate(frames):
        np.testing.assert_array_equal(np.asarray(Image.open(out / f"shot_{t:04d}.png")), f)


def test_compare_video_cli(tmp_path, capsys):
    frames = _sequence((), 4)
    _write(tmp_path / "a", frames)
    rng = np.random.default_rng(3)
    _write(tmp_path / "b", [np.clip(f.astype(int) + rng.integers(-30, 31, f.shape), 0, 255).astype(np.uint8)
                            for f in frames])
    from urst_dask.cli import main

    assert main(["compare", "--video", str(tmp_path / "b"), str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("flicker: ") and "3 frame pairs" in out
    assert float(out.split()[1]) > 3.0
    assert main(["compare", "--video", str(tmp_path / "b")]) == 2  # no recorded input: one line
    assert "records no input" in capsys.readouterr().err


@pytest.mark.parametrize("setting", [{"axes": "CYX"}, {"scratch": "/tmp/x"}, {"storage_options": {"anon": True}}])
def test_still_image_settings_are_refused_by_video(tmp_path, setting):
    """They were accepted and ignored (no scratch folder was made, the axes were not read)."""
    name = next(iter(setting))
    with pytest.raises(ParameterError, match=f"stylize_video: {name}=.* would have no effect: they are for still"):
        stylize_video(tmp_path / "in", tmp_path / "s.png", tmp_path / "out", **setting)
