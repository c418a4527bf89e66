"""A store marked complete but copied in part, or damaged afterwards: ``export`` read a missing
chunk as zeros (a black hole, exit 0) and a truncated one as a raw traceback; both are now
refused in one line naming the store and the chunk."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from urst_dask.cli import main
from urst_dask.testing import random_image


@pytest.fixture
def finished(tmp_path):
    content = tmp_path / "c.png"
    Image.fromarray(random_image(600, 520, seed=9)).save(content)
    Image.fromarray(random_image(64, 64, seed=2)).save(tmp_path / "s.png")
    out = tmp_path / "out.zarr"
    assert main(["stylize", str(content), str(tmp_path / "s.png"), "-o", str(out), "--method", "passthrough",
                 "--weights", str(tmp_path), "--stride", "128", "--margin", "0", "--no-progress", "--in-process"]) == 0
    return out


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_a_missing_image_chunk_is_refused(finished, tmp_path, capsys, suffix):
    (finished / "0" / "c" / "0" / "1" / "2").unlink()
    assert main(["export", str(finished), str(tmp_path / f"x{suffix}")]) == 2
    err = capsys.readouterr().err
    assert f"store='{finished}': 1 image chunks are missing (row:col 1:2), though the store is marked complete" in err
    assert not (tmp_path / f"x{suffix}").exists()


def _black_corner_store(tmp_path, capsys):
    """A store whose picture is black in its top-left 400 x 400 but for one pixel of value 1 in
    every 2 x 2 block (its 2 x 2 means round to 0), and that picture."""
    content = tmp_path / "c.png"
    image = random_image(600, 520, seed=9)
    image[:400, :400] = 0
    image[:400:2, :400:2] = 1
    Image.fromarray(image).save(content)
    Image.fromarray(random_image(64, 64, seed=2)).save(tmp_path / "s.png")
    out = tmp_path / "out.zarr"
    assert main(["stylize", str(content), str(tmp_path / "s.png"), "-o", str(out), "--method", "passthrough",
                 "--weights", str(tmp_path), "--stride", "128", "--margin", "0", "--no-progress",
                 "--in-process"]) == 0, capsys.readouterr().err
    return out, image


def test_every_pyramid_chunk_is_written_an_all_zero_one_too(tmp_path, capsys):
    out, _ = _black_corner_store(tmp_path, capsys)
    assert (out / "1" / "c" / "0" / "0" / "0").is_file()  # level 1's 128-px chunk 0:0 is all zero
    assert (out / "2" / "c" / "0" / "0" / "0").is_file()


def test_a_missing_pyramid_chunk_is_refused(finished, tmp_path, capsys):
    (finished / "1" / "c" / "0" / "1" / "1").unlink()  # what a copy stopped before the levels leaves
    assert main(["export", str(finished), str(tmp_path / "x.tif")]) == 2
    err = capsys.readouterr().err
    assert f"store='{finished}': 1 chunks of pyramid level 1 are missing (row:col 1:1), though the store is marked " \
           "complete" in err, err
    assert not (tmp_path / "x.tif").exists()


def test_an_earlier_stores_pyramid_without_its_empty_chunks_exports(tmp_path, capsys):
    """Earlier versions left a level's all-zero chunks unwritten (Zarr's default): such a store
    is intact and exports; a chunk missing over a picture that is not black there is refused."""
    out, image = _black_corner_store(tmp_path, capsys)
    (out / "1" / "c" / "0" / "0" / "0").unlink()  # all zero: level 1's 0:0, the picture's near-black 0:256 x 0:256
    assert main(["export", str(out), str(tmp_path / "x.tif")]) == 0, capsys.readouterr().err
    import tifffile

    np.testing.assert_array_equal(tifffile.imread(tmp_path / "x.tif"), image)
    (out / "1" / "c" / "0" / "1" / "1").unlink()  # the picture's 256:512 x 256:512: partly not black
    assert main(["export", str(out), str(tmp_path / "y.tif")]) == 2
    assert "1 chunks of pyramid level 1 are missing (row:col 1:1)" in capsys.readouterr().err


def test_a_damaged_chunk_is_named(finished, tmp_path, capsys):
    chunk = finished / "0" / "c" / "0" / "1" / "1"
    chunk.write_bytes(chunk.read_bytes()[:10])
    assert main(["export", str(finished), str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert f"store='{finished}': cannot read chunk '0/c/0/1/1'" in err and "the store is damaged" in err
    assert not np.any([p.name.endswith(".partial") for p in tmp_path.iterdir()])
