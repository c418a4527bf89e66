"""Hostile input, generated here: truncated files, decompression bombs, malformed NGFF,
malicious pickles and symbolic-link tricks.

Each case builds its (tiny) input under a fresh folder and expects one single-line
:class:`UrstError` subclass whose message names the file and the value, or the documented
recovery.  Every case runs under an alarm (:data:`CASE_SECONDS`): a hang fails the case
instead of stalling the suite, and a refusal that allocated the image it refuses would be
far slower than that.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest
import tifffile
import torch
import zarr
from PIL import Image
from test_io_bad_input import png_header_only

import urst_dask
from urst_dask.errors import InputImageError, OutputError, UrstError, WeightsError
from urst_dask.io import images, readers
from urst_dask.testing import random_image

CASE_SECONDS = 30  # generous for 2 shared cores; every case takes well under a second or two


@pytest.fixture(autouse=True)
def alarm() -> Iterator[None]:
    """Fail (rather than hang) a case that runs longer than :data:`CASE_SECONDS`."""
    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"hostile-input case still running after {CASE_SECONDS} s: it hangs")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(CASE_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def one_line(exc: BaseException, *fragments: str) -> str:
    """The message of ``exc``: a :class:`UrstError`, one line, holding every fragment."""
    msg = str(exc)
    assert isinstance(exc, UrstError), repr(exc)
    assert "\n" not in msg and "Traceback" not in msg, msg
    for fragment in fragments:
        assert fragment in msg, msg
    return msg


# ----------------------------------------------------------------------- truncated files


def cut_in_half(path: Path) -> Path:
    """``path`` with its second half removed."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def truncated_png(d: Path) -> Path:
    Image.fromarray(random_image(64, 80, seed=1)).save(d / "half.png")
    return cut_in_half(d / "half.png")


def truncated_jpeg(d: Path) -> Path:
    Image.fromarray(random_image(64, 80, seed=2)).save(d / "half.jpg", quality=90)
    return cut_in_half(d / "half.jpg")


def truncated_strip_tiff(d: Path) -> Path:
    tifffile.imwrite(d / "half.tif", random_image(64, 80, seed=3), photometric="rgb", rowsperstrip=8)
    return cut_in_half(d / "half.tif")


@pytest.mark.parametrize("build, name, fragment", [
    (truncated_png, "half.png", "not a readable image"),
    (truncated_jpeg, "half.jpg", "not a readable image"),
    (truncated_strip_tiff, "half.tif", "truncated TIFF: image data runs to byte"),
], ids=["png", "jpeg", "tiff"])
def test_a_file_cut_in_half_is_refused_when_opened(tmp_path: Path, build: Callable[[Path], Path], name: str,
                                                   fragment: str) -> None:
    path = build(tmp_path)
    with pytest.raises(InputImageError) as info:
        images.open_image(path, scratch_dir=tmp_path / "scratch")
    one_line(info.value, f"content={str(path)!r}", fragment)


def chunked_zarr(d: Path, zarr_format: int) -> tuple[Path, Path]:
    """A 40 x 50 RGB Zarr array in 4 chunks, and the file of its chunk (1, 0)."""
    path = d / f"v{zarr_format}.zarr"
    z = zarr.create_array(str(path), shape=(40, 50, 3), dtype="uint8", chunks=(20, 25, 3), zarr_format=zarr_format)
    z[...] = random_image(40, 50, seed=4)
    chunk = path / ("c/1/0/0" if zarr_format == 3 else "1.0.0")
    assert chunk.is_file(), sorted(str(p.relative_to(path)) for p in path.rglob("*"))
    return path, chunk


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_zarr_chunk_is_named_when_its_block_is_read(tmp_path: Path, zarr_format: int, damage: str) -> None:
    path, chunk = chunked_zarr(tmp_path, zarr_format)
    if damage == "truncated":
        cut_in_half(chunk)
    else:
        chunk.write_bytes(b"\xde\xad\xbe\xef not a compressed chunk " * 3)
    src = images.open_image(path)  # lazily: nothing is read yet, so opening works
    assert np.asarray(src.array[:20].compute()).shape == (20, 50, 3)  # the sound chunks read fine
    with pytest.raises(InputImageError) as info:
        src.array.compute()
    key = "c/1/0/0" if zarr_format == 3 else "1.0.0"
    one_line(info.value, f"content={str(path)!r}", f"chunk {key!r} (index [20:40, 0:25, 0:3])",
             "the store is damaged")


def test_a_damaged_zarr_chunk_fails_a_run_with_one_line(tmp_path: Path, client: Any, style_image: np.ndarray,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    path, chunk = chunked_zarr(tmp_path, 3)
    cut_in_half(chunk)
    Image.fromarray(style_image).save(tmp_path / "style.png")
    with pytest.raises(InputImageError) as info:
        urst_dask.stylize(path, tmp_path / "style.png", tmp_path / "out.zarr", method="identity", weights=tmp_path,
                          client=client, stride=32, margin=4)
    one_line(info.value, "chunk 'c/1/0/0'")


# ------------------------------------------------------------------ decompression bombs


@pytest.mark.parametrize("arg", ["content", "style"])
def test_a_png_claiming_100000_squared_pixels_is_refused_at_once(tmp_path: Path, arg: str) -> None:
    bomb = png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    assert bomb.stat().st_size < 200
    tracemalloc.start()  # decoding would allocate its 30 GB; the refusal reads the header alone
    try:
        with pytest.raises(InputImageError) as info:
            (images.open_image if arg == "content" else images.read_style)(bomb, arg)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    one_line(info.value, f"{arg}={str(bomb)!r}", "100000 x 100000 = 10000000000 pixels", "--allow-large-images")
    assert peak < 16 << 20, peak


def test_a_16_bit_png_bomb_is_refused_before_its_decoder_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    path = tmp_path / "bomb16.png"  # 16 bits per sample, RGB, 100000 x 100000, in 60 bytes
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the 16-bit decoder ran on a bomb")

    monkeypatch.setattr(readers.png, "decode_png16", never)
    with pytest.raises(InputImageError) as info:
        images.open_image(path)
    one_line(info.value, "100000 x 100000", "--allow-large-images")


# ------------------------------------------------------------------------ malformed NGFF


def ngff(path: Path, multiscale: dict[str, Any], arrays: tuple[str, ...] = ("0",)) -> Path:
    """An OME-Zarr 0.5 group holding 3 x 40 x 50 arrays named ``arrays``, with one multiscale."""
    g = zarr.open_group(str(path), mode="w")
    for name in arrays:
        g.create_array(name, shape=(3, 40, 50), dtype="uint8", chunks=(3, 40, 50), dimension_names=("c", "y", "x"))
    g.attrs["ome"] = {"version": "0.5", "multiscales": [{"axes": ["c", "y", "x"], **multiscale}]}
    return path


def subgroup(path: Path) -> Path:
    """An OME-Zarr whose dataset path names a group instead of an array."""
    ngff(path, {"datasets": [{"path": "0"}, {"path": "g"}]})
    zarr.open_group(str(path), mode="a").create_group("g")
    return path


@pytest.mark.parametrize("build, fragment", [
    (lambda p: ngff(p, {"datasets": []}), "ome.multiscales[0].datasets=[]: no datasets: expected at least one"),
    (lambda p: ngff(p, {}), "ome.multiscales[0].datasets=None: no datasets: expected at least one"),
    (lambda p: ngff(p, {"datasets": [{"path": "scale0"}]}), "NGFF dataset 'scale0' listed in the metadata is missing"),
    (subgroup, "NGFF dataset 'g' listed in the metadata is a group, not an array"),
    (lambda p: ngff(p, {"datasets": [{"path": "0", "coordinateTransformations": [
        {"type": "scale", "scale": [1.0, 0.5]}]}]}),
     "ome.multiscales[0].datasets[0].coordinateTransformations[0].scale=[1.0, 0.5]: 2 values for 3 axes"),
    (lambda p: ngff(p, {"datasets": [{"path": 0}]}), "ome.multiscales[0].datasets[0].path=0: expected a non-empty"),
], ids=["empty datasets", "no datasets key", "missing first dataset", "dataset is a group", "short scale",
        "numeric path"])
def test_malformed_ngff_is_refused_when_opened(tmp_path: Path, build: Callable[[Path], Path], fragment: str) -> None:
    path = build(tmp_path / "n.zarr")
    with pytest.raises(InputImageError) as info:
        images.open_image(path)
    one_line(info.value, f"content={str(path)!r}", fragment)


# ---------------------------------------------------------------------- malicious pickles


class Payload:
    """Unpickling this runs a shell command (what a hostile "checkpoint" does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def hostile_checkpoint(d: Path) -> tuple[Path, Path]:
    """A ``.pth`` whose unpickling would create ``marker``, and that marker's path."""
    marker = d / "pwned"
    torch.save({"conv1.conv2d.weight": Payload(marker)}, d / "evil.pth")
    assert not marker.exists()
    return d / "evil.pth", marker


def test_a_pickle_that_runs_code_is_refused_unrun(tmp_path: Path, client: Any) -> None:
    ckpt, marker = hostile_checkpoint(tmp_path)
    with pytest.raises(WeightsError) as info:
        urst_dask.stylize(random_image(40, 50, seed=5), ckpt, tmp_path / "out.zarr", method="johnson",
                          weights=tmp_path, client=client)
    one_line(info.value, str(ckpt), "torch.load(weights_only=True) refused it", "GLOBAL posix.system")
    assert not marker.exists()


def test_a_plain_pickle_is_refused_unrun(tmp_path: Path) -> None:
    from urst_dask.io.weights import WeightFile, load_state_dict

    marker = tmp_path / "pwned"
    (tmp_path / "plain.pth").write_bytes(pickle.dumps(Payload(marker), protocol=2))
    with pytest.raises(WeightsError) as info:
        load_state_dict(tmp_path, WeightFile("plain.pth", ""))
    one_line(info.value, "plain.pth", "torch.load(weights_only=True) refused")
    assert not marker.exists()


def truncated_checkpoint(path: Path) -> None:
    """A real torch.save archive cut at half its length, as an interrupted copy leaves it."""
    torch.save({"w": torch.ones(64, 64)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def other_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not a network")


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p.write_text("not a checkpoint"), "is not a PyTorch checkpoint (it starts with b'not a ch'"),
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(8)), "is not a PyTorch checkpoint (it starts with b'\\x89PNG"),
    (lambda p: p.touch(), "is empty"),
    (lambda p: p.mkdir(), "is a folder, not a checkpoint file"),
    (lambda p: truncated_checkpoint(p), "is a damaged zip archive, the format of torch.save (File is not a zip file)"),
    (lambda p: other_zip(p), "is a zip archive without data.pkl (1 entries): not a torch.save checkpoint"),
], ids=["text", "png", "empty", "folder", "truncated", "other-zip"])
def test_a_file_that_is_no_checkpoint_is_named_so(tmp_path: Path, make: Callable[[Path], Any], fragment: str) -> None:
    from urst_dask.io.weights import WeightFile, load_state_dict

    make(tmp_path / "c.pth")
    with pytest.raises(WeightsError) as info:
        load_state_dict(tmp_path, WeightFile("c.pth", ""))
    one_line(info.value, f"weights file {tmp_path / 'c.pth'} {fragment}")


# ------------------------------------------------------------------------------- symlinks


def test_a_content_symlink_loop_is_named(tmp_path: Path) -> None:
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    with pytest.raises(InputImageError) as info:
        images.open_image(tmp_path / "a.png")
    one_line(info.value, f"content={str(tmp_path / 'a.png')!r}", "symbolic link loop")


def test_a_dangling_content_symlink_names_its_target(tmp_path: Path) -> None:
    (tmp_path / "c.tif").symlink_to(tmp_path / "gone.tif")
    with pytest.raises(InputImageError) as info:
        images.open_image(tmp_path / "c.tif")
    one_line(info.value, "dangling symbolic link", f"to {str(tmp_path / 'gone.tif')!r}")


@pytest.mark.parametrize("overwrite", [False, True])
def test_an_output_that_is_a_dangling_symlink_is_refused_and_nothing_is_created(
        tmp_path: Path, client: Any, style_image: np.ndarray, overwrite: bool) -> None:
    Image.fromarray(style_image).save(tmp_path / "style.png")
    target = tmp_path / "elsewhere" / "made.zarr"
    (tmp_path / "out.zarr").symlink_to(target)
    with pytest.raises(OutputError) as info:
        urst_dask.stylize(random_image(40, 50, seed=6), tmp_path / "style.png", tmp_path / "out.zarr",
                          method="identity", weights=tmp_path, client=client, stride=32, margin=4,
                          overwrite=overwrite)
    one_line(info.value, f"output={str(tmp_path / 'out.zarr')!r}", "symbolic link")
    assert not (tmp_path / "elsewhere").exists() and (tmp_path / "out.zarr").is_symlink()


def test_an_export_onto_a_dangling_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.png").symlink_to(tmp_path / "elsewhere" / "x.png")
    with pytest.raises(OutputError) as info:
        images.write_raster(tmp_path / "x.png", np.zeros((8, 8, 3), np.uint8))
    one_line(info.value, f"output={str(tmp_path / 'x.png')!r}", "dangling symbolic link")
    assert not (tmp_path / "elsewhere").exists()


def test_a_style_symlink_to_a_directory_is_refused(tmp_path: Path, client: Any) -> None:
    (tmp_path / "styles").mkdir()
    (tmp_path / "style.png").symlink_to(tmp_path / "styles", target_is_directory=True)
    with pytest.raises(InputImageError) as info:
        urst_dask.stylize(random_image(40, 50, seed=7), tmp_path / "style.png", tmp_path / "out.zarr",
                          method="identity", weights=tmp_path, client=client, stride=32, margin=4)
    one_line(info.value, f"style={str(tmp_path / 'style.png')!r}", "is a directory")
    assert not (tmp_path / "out.zarr").exists()


def test_a_png_bomb_is_refused_even_with_allow_large_images(tmp_path: Path) -> None:
    """With the limit lifted, a header over a few bytes of data is still refused before any
    decoding: deflate cannot inflate 11 bytes of IDAT data to 30 GB of pixels."""
    bomb = png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    tracemalloc.start()  # decoding would allocate its 30 GB; the refusal reads the header alone
    try:
        with pytest.raises(InputImageError) as info:
            images.open_image(bomb, allow_large=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    one_line(info.value, "PNG header claims 100000 x 100000 pixels (30000000000 bytes)", "truncated or forged",
             "refused even with --allow-large-images")
    assert peak < 16 << 20, peak


def test_a_large_honest_png_passes_the_inflation_bound(tmp_path: Path) -> None:
    """The bound refuses no real file: a flat 2000 x 2000 image compresses near deflate's best."""
    Image.fromarray(np.zeros((2000, 2000, 3), np.uint8)).save(tmp_path / "flat.png", optimize=True)
    head = readers.png.read_png_header(tmp_path / "flat.png")
    assert head is not None and head.idat_bytes > 0 and not head.cannot_hold_its_pixels()
    assert images.open_image(tmp_path / "flat.png", scratch_dir=tmp_path / "s").shape == (2000, 2000, 3)
