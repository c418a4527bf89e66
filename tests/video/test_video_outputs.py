"""Video runs: output frame names, run identity and --overwrite, the encoder checked up front,
frames checked against their header, and the errors of refused runs."""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pytest
import zarr
from PIL import Image

from urst_dask.errors import InputImageError, OutputError, ParameterError, ParameterTypeError
from urst_dask.io import frames as frame_io
from urst_dask.video import stylize_video

KW = dict(method="identity", stride=32, stats_policy="per-frame")


def _frames(n: int, h: int = 40, w: int = 56, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for _ in range(n)]


def _folder(path, frames, prefix="f"):
    path.mkdir(parents=True, exist_ok=True)
    for t, f in enumerate(frames):
        frame_io.write_frame(path / f"{prefix}{t}.png", f, "png")
    return path


def _zarr(path, frames):
    arr = zarr.create_array(str(path), shape=(len(frames),) + frames[0].shape, chunks=(1,) + frames[0].shape,
                            dtype="uint8")
    for t, f in enumerate(frames):
        arr[t] = f
    return path


def test_zarr_input_to_a_folder_writes_one_file_per_frame(tmp_path, client, style_image):
    frames = _frames(3)
    out = tmp_path / "out"
    stylize_video(_zarr(tmp_path / "seq.zarr", frames), style_image, out, client=client, **KW)
    names = [f"seq_{t:06d}.png" for t in range(3)]
    assert sorted(p.name for p in out.glob("*.png")) == names
    for t, name in enumerate(names):
        np.testing.assert_array_equal(np.asarray(Image.open(out / name)), frames[t])
    assert [f["file"] for f in json.loads((out / "urst_video.json").read_text())["frames"]] == names


def test_two_inputs_written_to_one_name_are_refused_naming_both(tmp_path, style_image):
    folder = _folder(tmp_path / "in", _frames(2))
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(folder / "f1.tif", _frames(1, seed=1)[0], photometric="rgb")
    with pytest.raises(OutputError, match=r"f1\.png.*f1\.tif.*both be written as f1"):
        stylize_video(folder, style_image, tmp_path / "out", **KW)
    assert not (tmp_path / "out").exists()


def test_a_changed_input_is_another_run_and_overwrite_recomputes(tmp_path, client, style_image):
    a = _folder(tmp_path / "A", _frames(2, seed=1))
    b = _folder(tmp_path / "B", _frames(2, seed=2))
    out = tmp_path / "out"
    stylize_video(a, style_image, out, client=client, **KW)
    with pytest.raises(OutputError, match="different run"):  # same names, another folder
        stylize_video(b, style_image, out, client=client, **KW)
    copy = shutil.copytree(a, tmp_path / "C")  # same names, sizes and mtimes, another folder
    with pytest.raises(OutputError, match="different run"):
        stylize_video(copy, style_image, out, client=client, **KW)
    new = _frames(2, seed=3)
    _folder(a, new)  # re-rendered in place
    st = os.stat(a / "f0.png")
    os.utime(a / "f0.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(OutputError, match="different run"):
        stylize_video(a, style_image, out, client=client, **KW)
    stylize_video(a, style_image, out, client=client, overwrite=True, **KW)
    np.testing.assert_array_equal(np.asarray(Image.open(out / "f0.png")), new[0])
    # a finished run with --overwrite computes again (not "already complete")
    (out / "f1.png").write_bytes(b"")
    stylize_video(a, style_image, out, client=client, overwrite=True, **KW)
    np.testing.assert_array_equal(np.asarray(Image.open(out / "f1.png")), new[1])


def test_overwrite_removes_the_previous_runs_frames_only(tmp_path, client, style_image):
    out = tmp_path / "out"
    stylize_video(_folder(tmp_path / "A", _frames(3), prefix="a"), style_image, out, client=client, **KW)
    (out / "notes.txt").write_text("mine")
    stylize_video(_folder(tmp_path / "B", _frames(2), prefix="b"), style_image, out, client=client, overwrite=True,
                  **KW)
    assert sorted(p.name for p in out.iterdir()) == ["b0.png", "b1.png", "notes.txt", "urst_video.json"]


def test_a_frame_that_disagrees_with_its_header_is_refused(tmp_path):
    from urst_dask.video.tasks import FrameRef, load

    Image.fromarray(_frames(1)[0]).save(tmp_path / "f.png")
    with pytest.raises(InputImageError, match=re.escape(f"frame='{tmp_path / 'f.png'}': decoded as 56x40 with 3 "
                                                        "channels") + ".*says 40x56"):
        load(FrameRef("file", str(tmp_path / "f.png"), 0, "f.png", (56, 40, 3)))
    assert load(FrameRef("file", str(tmp_path / "f.png"), 0, "f.png", (40, 56, 3))).shape == (40, 56, 3)


@pytest.mark.parametrize("out,settings,match", [
    ("out.webm", {}, r"codec='libx264'.*webm"),
    ("out.mp4", {"pix_fmt": "foo"}, r"pix_fmt='foo'"),
    ("out.mp4", {"codec": "nosuchcodec"}, r"codec='nosuchcodec'"),
])
def test_an_unusable_encoder_is_refused_before_any_work(tmp_path, style_image, monkeypatch, out, settings, match):
    pytest.importorskip("av")
    from urst_dask.pipeline import video as pipeline_video

    def no_work(*args, **kwargs):  # noqa: ANN002, ANN003
        raise AssertionError("the run started")

    monkeypatch.setattr(pipeline_video, "start_early", no_work)
    folder = _folder(tmp_path / "in", _frames(2))
    with pytest.raises(ParameterError, match=match):
        stylize_video(folder, style_image, tmp_path / out, **{**KW, **settings})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_odd_sizes_to_yuv420p_leave_no_records(tmp_path, style_image):
    pytest.importorskip("av")
    folder = _folder(tmp_path / "in", _frames(2, 39, 55))
    with pytest.raises(ParameterError, match="needs even sizes"):
        stylize_video(folder, style_image, tmp_path / "out.mp4", **KW)
    assert not (tmp_path / "out.mp4.video-state").exists()


def test_fixing_the_encoder_settings_keeps_the_stylized_frames(tmp_path, client, style_image):
    pytest.importorskip("av")
    from urst_dask.testing import toys as toy_models

    folder = _folder(tmp_path / "in", _frames(4, 48, 64, seed=5))
    good = (folder / "f3.png").read_bytes()
    (folder / "f3.png").write_bytes(good[: len(good) // 2])
    out = tmp_path / "out.mp4"
    kw = dict(KW, client=client, stride=64, in_flight=1)
    with pytest.raises(InputImageError, match=r"f3\.png"):
        stylize_video(folder, style_image, out, crf=16, **kw)
    (folder / "f3.png").write_bytes(good)
    before = toy_models.WINDOWS["count"]
    stylize_video(folder, style_image, out, crf=30, pix_fmt="yuv444p", **kw)
    assert toy_models.WINDOWS["count"] - before == 1  # frame 3 only
    assert json.loads((tmp_path / "out.mp4.json").read_text())["video"]["crf"] == 30


def test_allow_large_images_applies_to_the_style_image(tmp_path, client, monkeypatch):
    from PIL import Image as PILImage

    style = tmp_path / "style.png"
    Image.fromarray(_frames(1, 64, 64)[0]).save(style)
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 1000)
    content = _zarr(tmp_path / "seq.zarr", _frames(2))
    with pytest.raises(InputImageError, match="decompression-bomb"):
        stylize_video(content, style, tmp_path / "a.zarr", client=client, **KW)
    stylize_video(content, style, tmp_path / "b.zarr", client=client, allow_large_images=True, **KW)
    assert zarr.open_array(str(tmp_path / "b.zarr")).shape[0] == 2


def test_the_help_examples_use_style_image_methods():
    from urst_dask.cli.video import EXAMPLES
    from urst_dask.models import method_entry

    methods = re.findall(r"--method (\S+)", EXAMPLES)
    assert methods and all(method_entry(m).takes_style_image for m in methods)


def test_compare_names_both_frame_counts(tmp_path):
    from urst_dask.video.compare import flicker_report

    a = _zarr(tmp_path / "a.zarr", _frames(3))
    b = _zarr(tmp_path / "b.zarr", _frames(2))
    with pytest.raises(ParameterError, match=r"b\.zarr'?: has 2 frames, but .*a\.zarr'? has 3"):
        flicker_report(a, b)


def test_exr_output_without_the_extra_is_refused_before_any_work(tmp_path, style_image, monkeypatch):
    """It was refused when the first stylized frame was written, after the probe and the statistics."""
    from urst_dask.pipeline import video as pipeline_video

    monkeypatch.setattr(frame_io, "_exr_module", lambda: (_ for _ in ()).throw(
        InputImageError("EXR frames need the 'exr' extra: pip install 'urst-dask[exr]'")))
    monkeypatch.setattr(pipeline_video, "start_early", lambda *a, **kw: (_ for _ in ()).throw(AssertionError("ran")))
    folder = _folder(tmp_path / "in", _frames(2))
    with pytest.raises(InputImageError, match=re.escape("EXR frames need the 'exr' extra")):
        stylize_video(folder, style_image, tmp_path / "out", format="exr", **KW)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_a_misspelt_video_setting_is_named_with_the_video_settings():
    with pytest.raises(ParameterTypeError, match=r"stylize_video\(\) got an unknown setting 'ema_decya'; valid: .*"
                       r"\bema_decay\b.*\bstride\b"):
        stylize_video("in", "style.png", "out", ema_decya=0.5)


def test_the_recorded_input_is_absolute_and_leftover_records_go(tmp_path, client, style_image, monkeypatch):
    """compare --video reads the content back from the recorded path: as typed, it was relative
    to the run's folder (another folder's same-named frames were measured, silently).  Records
    a kill left after the output was complete are removed by the rerun."""
    _folder(tmp_path / "frames", _frames(3))
    monkeypatch.chdir(tmp_path)
    out = stylize_video("frames", style_image, "out", client=client, **KW)
    recorded = json.loads((tmp_path / "out" / "urst_video.json").read_text())["input"]["path"]
    assert recorded == str(tmp_path / "frames")
    from urst_dask import compare

    assert compare(out, video=True)["content"] == recorded
    sidecar = tmp_path / "out" / "urst_video.json"
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "input": {**meta["input"], "path": "frames"}}))  # as older runs wrote it
    with pytest.raises(ParameterError, match="records its input as 'frames', relative to the folder it ran in"):
        compare(out, video=True)
    sidecar.write_text(json.dumps(meta))
    (tmp_path / "out.video-state").mkdir()  # as a kill -9 during the final removal leaves it
    assert stylize_video("frames", style_image, "out", client=client, **KW) == out
    assert not (tmp_path / "out.video-state").exists()


def test_a_frame_store_replaced_by_overwrite_never_reads_complete_half_deleted(tmp_path, monkeypatch):
    """As for image stores: the old (T, H, W, C) store is renamed aside before it is deleted, so
    a Ctrl-C during the delete cannot leave its 'complete' marker over missing frames."""
    from urst_dask.io import framestore, removal

    out = tmp_path / "out.zarr"
    framestore.create_frames_zarr(out, (2, 8, 8, 3), "uint8", {"x": 1})
    real = shutil.rmtree

    def interrupted(path, *a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(removal.shutil, "rmtree", interrupted)
    with pytest.raises(KeyboardInterrupt):
        framestore.create_frames_zarr(out, (2, 8, 8, 3), "uint8", {"x": 2})
    assert not out.exists() and len(list(tmp_path.glob(".out.zarr.removing-*"))) == 1
    monkeypatch.setattr(removal.shutil, "rmtree", real)
    framestore.create_frames_zarr(out, (2, 8, 8, 3), "uint8", {"x": 3})  # the leftover goes with the next run
    assert out.exists() and not list(tmp_path.glob(".out.zarr.removing-*"))


def test_a_full_disk_while_a_frame_is_written_is_one_line(tmp_path, client, style_image, monkeypatch):
    """Pillow's OSError reached the command line as a traceback with exit 1."""
    import errno

    real = frame_io._encode

    def encode(tmp, frame, fmt):
        if tmp.name.startswith(".f1.png") and "out" in str(tmp):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(tmp, frame, fmt)

    monkeypatch.setattr(frame_io, "_encode", encode)
    with pytest.raises(OutputError, match=r"output='.*out/f1.png': cannot write the frame: No space left on device "
                                          r"\(disk full: free some space, then rerun the same command: it resumes"):
        stylize_video(_folder(tmp_path / "in", _frames(3)), style_image, tmp_path / "out", client=client, **KW)
    assert not list((tmp_path / "out").glob(".*partial"))


def test_a_full_disk_while_the_frame_store_is_made_leaves_nothing(tmp_path, client, style_image, monkeypatch):
    """The half-made store was left, and the rerun refused it as another program's."""
    import errno

    real = zarr.create_array

    def create(store, **kw):
        real(store, **kw)  # made on disk, then the disk fills
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(zarr, "create_array", create)
    with pytest.raises(OutputError, match=r"output='.*v.zarr': cannot create the frame store: No space left on "
                                          r"device \(disk full: free some space, then rerun the same command: nothing "
                                          r"is left under that name\)"):
        stylize_video(_folder(tmp_path / "in", _frames(2)), style_image, tmp_path / "v.zarr", client=client, **KW)
    assert not (tmp_path / "v.zarr").exists()
    monkeypatch.undo()
    out = stylize_video(_folder(tmp_path / "in", _frames(2)), style_image, tmp_path / "v.zarr", client=client, **KW)
    assert zarr.open_array(str(out), mode="r").attrs["urst_dask_video"]["status"] == "complete"


@pytest.mark.parametrize("name, message", [("v.zarr", "already exists and is a file, not a Zarr store"),
                                           ("frames-out", "exists and is not a folder")])
def test_a_file_where_the_output_goes_is_refused_even_with_overwrite(tmp_path, style_image, name, message):
    """--overwrite hid the file under a dot-name, then crashed (NotADirectoryError) and left it."""
    (tmp_path / name).write_text("precious")
    with pytest.raises(OutputError, match=f"output='.*{name}': {message}"):
        stylize_video(_folder(tmp_path / "in", _frames(2)), style_image, tmp_path / name, overwrite=True, **KW)
    assert (tmp_path / name).read_text() == "precious"
    assert not list(tmp_path.glob(f".{name}*"))


def test_a_killed_delete_of_a_file_is_cleared_by_the_next_run(tmp_path):
    from urst_dask.io import removal

    (tmp_path / f".v.zarr{removal.REMOVING}123-abcd").write_text("left by a killed delete")
    (tmp_path / f".v.zarr{removal.REMOVING}456-ef01").mkdir()
    removal.clear_leftovers(tmp_path / "v.zarr")
    assert list(tmp_path.iterdir()) == []
