"""Frame sequences and video files in and out, and the inputs a video run refuses."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
import zarr
from PIL import Image

from urst_dask.errors import InputImageError, OutputError, ParameterError
from urst_dask.io import frames as frame_io
from urst_dask.video import stylize_video


def _frames(n: int, h: int = 40, w: int = 56, seed: int = 0, dtype=np.uint8) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    return [rng.integers(0, top + 1, size=(h, w, 3), dtype=dtype) for _ in range(n)]


def _write(folder, frames, suffix="png"):
    folder.mkdir(exist_ok=True)
    for t, f in enumerate(frames):
        frame_io.write_frame(folder / f"f{t:03d}.{suffix}", f, suffix)
    return folder


@pytest.mark.parametrize("fmt,dtype", [("png", np.uint8), ("png", np.uint16), ("tif", np.uint16), ("tif", np.uint8),
                                       ("jpg", np.uint8), ("exr", np.float32)])
def test_frame_formats_round_trip_with_their_depth(tmp_path, fmt, dtype):
    if fmt == "exr":
        pytest.importorskip("OpenEXR")
        frame = np.random.default_rng(0).random((20, 30, 3)).astype(np.float16).astype(np.float32)
    else:
        frame = _frames(1, 20, 30, dtype=dtype)[0]
    path = frame_io.write_frame(tmp_path / f"a.{fmt}", frame, fmt)
    assert not list(tmp_path.glob(".*partial"))
    head = frame_io.read_header(path)
    assert (head.height, head.width, head.channels, head.dtype) == (20, 30, 3, np.dtype(dtype).name)
    back = frame_io.read_frame(path)
    assert back.dtype == dtype and back.shape == frame.shape
    if fmt == "jpg":
        assert np.abs(back.astype(int) - frame).mean() < 40  # lossy, but the same picture
    else:
        np.testing.assert_array_equal(back, frame)


def test_video_round_trip_keeps_count_size_and_rate(tmp_path, client, style_image):
    av = pytest.importorskip("av")
    from urst_dask.io import video as video_io

    src = tmp_path / "in.mp4"
    with video_io.VideoEncoder(src, width=64, height=48, rate=Fraction(30000, 1001), crf=0) as enc:
        for f in _frames(7, 48, 64, seed=2):
            enc.write(f)
    info = video_io.probe(src)
    assert (info.frames, info.height, info.width, info.rate) == (7, 48, 64, Fraction(30000, 1001))
    out = stylize_video(src, style_image, tmp_path / "out.mkv", method="identity", client=client, stride=32,
                        codec="libx264", crf=10)
    got = video_io.probe(out)
    assert (got.frames, got.height, got.width, got.rate) == (7, 48, 64, Fraction(30000, 1001))
    assert len(list(video_io.decode(out))) == 7
    meta = json.loads((tmp_path / "out.mkv.json").read_text())
    assert meta["video"]["frames"] == 7 and meta["status"] == "complete"
    # a Zarr (T, H, W, C) output of the same input holds every frame
    z = stylize_video(src, style_image, tmp_path / "out.zarr", method="identity", client=client, stride=32)
    import zarr

    arr = zarr.open_array(str(z))
    assert arr.shape == (7, 48, 64, 3) and arr.attrs["urst_dask_video"]["status"] == "complete"
    assert av is not None


def test_video_without_a_video_stream_is_refused(tmp_path, style_image):
    av = pytest.importorskip("av")
    path = tmp_path / "sound.mkv"
    with av.open(str(path), mode="w") as box:
        st = box.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for pkt in st.encode(frame):
            box.mux(pkt)
        for pkt in st.encode():
            box.mux(pkt)
    with pytest.raises(InputImageError, match=r"sound\.mkv.*no video stream \(audio\)"):
        stylize_video(path, style_image, tmp_path / "out", method="identity")


def test_empty_folder_is_refused(tmp_path, style_image):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no frames here")
    with pytest.raises(InputImageError, match="no frames"):
        stylize_video(tmp_path / "empty", style_image, tmp_path / "out", method="identity")


def test_mixed_frame_sizes_are_refused_naming_the_frame(tmp_path, style_image):
    folder = _write(tmp_path / "in", _frames(3))
    frame_io.write_frame(folder / "f003.png", _frames(1, 41, 56)[0], "png")
    with pytest.raises(InputImageError, match=r"f003\.png.*56x41.*f000\.png is 56x40"):
        stylize_video(folder, style_image, tmp_path / "out", method="identity")
    assert not (tmp_path / "out").exists()


def test_unreadable_frame_in_the_middle_keeps_the_frames_before(tmp_path, client, style_image):
    frames = _frames(6, seed=4)
    folder = _write(tmp_path / "in", frames)
    data = (folder / "f003.png").read_bytes()
    (folder / "f003.png").write_bytes(data[: len(data) // 2])  # header intact, pixel data cut short
    out = tmp_path / "out"
    with pytest.raises(InputImageError, match=r"f003\.png.*cannot be read.*frame 4 of 6.*3 frames before it"):
        stylize_video(folder, style_image, out, method="identity", client=client, stride=32, stats_policy="per-frame")
    for t in range(3):
        np.testing.assert_array_equal(np.asarray(Image.open(out / f"f{t:03d}.png")), frames[t])
    assert not (out / "f003.png").exists()
    meta = json.loads((out / "urst_video.json").read_text())
    assert meta["status"] == "running"
    # fixed: the same call resumes and completes
    frame_io.write_frame(folder / "f003.png", frames[3], "png")
    stylize_video(folder, style_image, out, method="identity", client=client, stride=32, stats_policy="per-frame")
    assert json.loads((out / "urst_video.json").read_text())["status"] == "complete"
    assert sorted(p.name for p in out.glob("*.png")) == [f"f{t:03d}.png" for t in range(6)]


def test_outputs_refused(tmp_path, style_image):
    folder = _write(tmp_path / "in", _frames(2, dtype=np.uint16))
    with pytest.raises(ParameterError, match="JPEG holds 8 bits"):
        stylize_video(folder, style_image, tmp_path / "out", method="identity", format="jpg")
    with pytest.raises(OutputError, match="content image"):
        stylize_video(folder, style_image, folder / "sub", method="identity")
    other = tmp_path / "busy"
    other.mkdir()
    (other / "mine.txt").write_text("x")
    with pytest.raises(OutputError, match="not a urst-dask video output"):
        stylize_video(folder, style_image, other, method="identity")


def test_an_unfinished_frame_store_is_refused_as_input(tmp_path, client, style_image):
    """A video run stopped after its first frame left a (T, H, W, C) store whose later frames
    were zeros; given as the input, they were stylized as black frames and marked complete."""
    from urst_dask.io import framestore, store
    from urst_dask.io.readers.zarrstore import OUTPUT_ATTRS

    assert OUTPUT_ATTRS == (store.ATTR, framestore.ATTR)
    out = stylize_video(_write(tmp_path / "in", _frames(2)), style_image, tmp_path / "v.zarr", method="identity",
                        client=client, stride=32, stats_policy="per-frame")
    arr = zarr.open_array(str(out / "0") if (out / "0").exists() else str(out), mode="r+")
    arr.attrs[framestore.ATTR] = {**arr.attrs[framestore.ATTR], "status": "running"}
    with pytest.raises(InputImageError, match=r"frames='.*v.zarr': an unfinished urst-dask output \(status 'running'\)"):
        stylize_video(out, style_image, tmp_path / "again", method="identity", client=client, stride=32)
    assert not (tmp_path / "again").exists()


def test_video_output_resumes_from_its_records(tmp_path, client, style_image):
    """A video file appears only at the end; an interrupted run's records alone let the rerun
    write only the missing frames (counted with the toy network's window counter)."""
    pytest.importorskip("av")
    from urst_dask.io import video as video_io
    from urst_dask.testing import toys as toy_models

    frames = _frames(6, 48, 64, seed=5)
    folder = _write(tmp_path / "in", frames)
    good = (folder / "f004.png").read_bytes()
    (folder / "f004.png").write_bytes(good[: len(good) // 2])
    out = tmp_path / "out.mp4"
    kw = dict(method="identity", client=client, stride=64, stats_policy="per-frame", in_flight=1)
    with pytest.raises(InputImageError, match=r"f004\.png"):
        stylize_video(folder, style_image, out, **kw)
    assert not out.exists() and len(list((tmp_path / "out.mp4.video-state" / "done").glob("*.json"))) == 4
    (folder / "f004.png").write_bytes(good)
    before = toy_models.WINDOWS["count"]
    stylize_video(folder, style_image, out, **kw)
    assert toy_models.WINDOWS["count"] - before == 2  # one window per frame, frames 4 and 5 only
    assert video_io.probe(out).frames == 6 and not (tmp_path / "out.mp4.video-state").exists()


def test_a_run_on_worker_processes_starts_them_beside_its_preparation(tmp_path, style_image, monkeypatch):
    """Without a client, the embedded cluster starts early, loads the network, and the run takes it."""
    from urst_dask.pipeline import earlystart

    made: list[earlystart.EarlyCluster] = []

    class Spy(earlystart.EarlyCluster):
        def __init__(self, options) -> None:  # noqa: ANN001
            super().__init__(options)
            made.append(self)

    monkeypatch.setattr(earlystart, "EarlyCluster", Spy)
    folder = _write(tmp_path / "in", _frames(3, seed=6))
    out = stylize_video(folder, style_image, tmp_path / "out.zarr", method="passthrough", weights=tmp_path,
                        stride=32, workers=1, progress=False)
    assert len(made) == 1 and made[0]._taken and not made[0]._preloads  # taken by the run; preload submitted
    assert zarr.open_array(str(out), mode="r").shape[0] == 3
