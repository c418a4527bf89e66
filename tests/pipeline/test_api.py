"""The public API end to end on the in-process cluster, with the toy identity network."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

import urst_dask
from urst_dask.errors import OutputError, ParameterTypeError
from urst_dask.io import images, removal, store
from urst_dask.testing import random_image


@pytest.fixture
def run(tmp_path, client, style_image):
    def _run(image, name="out.zarr", **kw):
        kw.setdefault("method", "identity")
        return urst_dask.stylize(image, style_image, tmp_path / name, weights=tmp_path, client=client, **kw)

    return _run


def test_identity_roundtrip_through_store(run):
    image = random_image(130, 170, seed=11)
    out = run(image, stride=64, margin=8)
    root = zarr.open_group(str(out), mode="r")
    arr = root["0"]
    assert arr.shape == (3, 130, 170) and arr.dtype == np.uint8  # NGFF order: c, y, x
    assert arr.chunks == (3, 64, 64)
    np.testing.assert_array_equal(np.moveaxis(arr[...], 0, 2), image)
    np.testing.assert_array_equal(store.open_output(out).compute(), image)
    meta = dict(root.attrs["urst_dask"])
    assert meta["status"] == "complete"
    assert meta["tile_plan"] == {"stride": 64, "margin": 8, "blend": "crop", "align": True}
    assert meta["tile_grid"] == {"stride": 64, "margin": 8, "multiple": 8, "blend": "crop", "align": True}
    assert meta["options"]["norm"] == "tin" and meta["version"] == urst_dask.__version__
    assert len(meta["style"]["sha256"]) == 64 and len(meta["fingerprint"]) == 64
    json.dumps(meta)  # plain JSON


def test_stats_are_stored_and_reusable(run, tmp_path):
    image = random_image(80, 100, seed=12)
    first = run(image, "a.zarr", stride=32, margin=4)
    stats = store.read_stats(first)
    assert stats.points() == ["in1"]
    assert stats.token() == store.read_attrs(first)["stats"]["sha256"]
    second = run(image, "b.zarr", stride=48, margin=4, stats=first)
    assert store.read_attrs(second)["stats"]["sha256"] == stats.token()
    np.testing.assert_array_equal(store.open_output(second).compute(), image)


def test_interrupted_run_never_looks_complete(run, tmp_path):
    image = random_image(100, 100, seed=13)
    with pytest.raises(RuntimeError, match="simulated worker failure"):
        run(image, "broken.zarr", method="identity-fails", stride=32, margin=4)
    path = tmp_path / "broken.zarr"
    assert store.read_attrs(path)["status"] == "running"
    with pytest.raises(OutputError, match="incomplete"):
        store.open_output(path)
    with pytest.raises(OutputError, match="incomplete"):
        urst_dask.export(path, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_existing_output_from_another_run_needs_overwrite(run, tmp_path):
    image = random_image(40, 40, seed=14)
    run(image, "o.zarr", stride=32, margin=4)
    with pytest.raises(OutputError, match="already exists from a different run .*pass --overwrite"):
        run(image, "o.zarr", stride=32, margin=5)
    with pytest.raises(OutputError, match="already exists from a different run"):
        run(random_image(40, 40, seed=15), "o.zarr", stride=32, margin=4)
    run(image, "o.zarr", stride=32, margin=5, overwrite=True)
    assert store.read_attrs(tmp_path / "o.zarr")["tile_plan"]["margin"] == 5


def test_an_overwrite_interrupted_while_it_deletes_never_leaves_a_complete_looking_store(run, tmp_path, monkeypatch):
    """--overwrite deletes the old store; stopped half-way (Ctrl-C, kill), what is left must not
    read as complete: rmtree went in directory order, chunks before the marker's zarr.json, and
    export wrote a picture 23 % black with exit 0."""
    image = random_image(96, 96, seed=16)
    run(image, "o.zarr", stride=32, margin=4)
    real = shutil.rmtree
    deleted: list[str] = []

    def interrupted(path, *a, **kw):  # deletes one chunk, then the user presses Ctrl-C
        if ".removing-" in str(path) and not deleted:
            chunk = next(p for p in Path(path, "0").rglob("*") if p.is_file())
            chunk.unlink()
            deleted.append(str(chunk))
            raise KeyboardInterrupt
        return real(path, *a, **kw)

    monkeypatch.setattr(removal.shutil, "rmtree", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(image, "o.zarr", stride=32, margin=5, overwrite=True)
    assert deleted and not (tmp_path / "o.zarr").exists()  # renamed aside at once: nothing there looks complete
    assert [p.name.startswith(".o.zarr.removing-") for p in tmp_path.iterdir() if p.name.startswith(".")] == [True]
    monkeypatch.setattr(removal.shutil, "rmtree", real)
    out = run(image, "o.zarr", stride=32, margin=5)  # the rerun: a new store, and the leftover removed
    np.testing.assert_array_equal(store.open_output(out).compute(), image)
    assert not [p for p in tmp_path.iterdir() if ".removing-" in p.name]


@pytest.mark.parametrize("blend", ["crop", "linear", "gaussian"])
def test_rerun_resumes_only_missing_chunks(run, tmp_path, blend):
    """An interrupted store (chunks missing, status running) is finished by rerunning the same
    call: only the windows the missing chunks need are computed (their own with ``crop``; with
    a blend, also the neighbours that feather into them) and the result is byte-identical."""
    from urst_dask.testing import toys as toy_models

    image = random_image(100, 130, seed=16)
    ref = run(image, "ref.zarr", stride=32, margin=4, blend=blend)
    out = run(image, "part.zarr", stride=32, margin=4, blend=blend)
    chunk_dir = out / "0" / "c" / "0"
    removed = [(0, 1), (2, 3), (3, 0)]
    for r, c in removed:
        (chunk_dir / str(r) / str(c)).unlink()
    meta = zarr.open_group(str(out), mode="r+")
    meta.attrs["urst_dask"] = {**meta.attrs["urst_dask"], "status": "running"}
    before = toy_models.WINDOWS["count"]
    run(image, "part.zarr", stride=32, margin=4, blend=blend)
    # 100 x 130 at stride 32: a 3 x 4 window grid (the 4- and 2-px tails merge into the last
    # windows), stored in 32-px chunks (4 x 5); a missing chunk needs its window ...
    homes = {(min(r, 2), min(c, 3)) for r, c in removed}
    # ... and, with a blend, the neighbouring windows that feather into it
    needed = homes if blend == "crop" else {(r + dr, c + dc) for r, c in homes for dr in (-1, 0, 1)
                                            for dc in (-1, 0, 1) if 0 <= r + dr < 3 and 0 <= c + dc < 4}
    assert toy_models.WINDOWS["count"] - before == len(needed)
    assert store.read_attrs(out)["status"] == "complete"
    np.testing.assert_array_equal(store.open_output(out).compute(), store.open_output(ref).compute())
    before = toy_models.WINDOWS["count"]
    run(image, "part.zarr", stride=32, margin=4, blend=blend)  # complete: nothing to do
    assert toy_models.WINDOWS["count"] == before


def test_unknown_setting_is_a_type_error(run):
    with pytest.raises(ParameterTypeError, match="unknown setting 'strides'"):
        run(random_image(10, 10), strides=10)


def test_norm_in_stores_no_stats(run):
    out = run(random_image(50, 60, seed=15), "in.zarr", stride=32, margin=4, norm="in")
    assert store.read_attrs(out)["stats"] is None
    with pytest.raises(OutputError, match="no statistics"):
        store.read_stats(out)


def test_exports(run, tmp_path):
    import tifffile
    from PIL import Image

    image = random_image(300, 420, seed=16)
    out = run(image, stride=128, margin=8)
    urst_dask.export(out, tmp_path / "o.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o.png")), image)
    urst_dask.export(out, tmp_path / "o.tif")
    with tifffile.TiffFile(tmp_path / "o.tif") as tf:
        assert tf.pages[0].is_tiled
        np.testing.assert_array_equal(tf.asarray(), image)
    with pytest.raises(OutputError, match="already exists"):
        urst_dask.export(out, tmp_path / "o.png")


def test_an_export_counts_its_rows_over_every_level(run, tmp_path, capsys):
    """A gigapixel's TIFF export took minutes without a word: progress=True draws one line
    counting the rows written, over the levels of the pyramid too; the pixels are the same."""
    import tifffile

    image = random_image(300, 420, seed=16)
    out = run(image, stride=128, margin=8)
    urst_dask.export(out, tmp_path / "o.tif", tile=64, progress=True)
    err = capsys.readouterr().err.splitlines()
    with tifffile.TiffFile(tmp_path / "o.tif") as tf:
        heights = [level.shape[0] for level in tf.series[0].levels]
        np.testing.assert_array_equal(tf.asarray(), image)
    assert len(heights) > 1 and err, err
    assert f"{sum(heights)}/{sum(heights)} rows" in err[-1] and f"o.tif, {len(heights)} levels" in err[-1], err
    urst_dask.export(out, tmp_path / "o.png", progress=True)
    assert "300/300 rows" in capsys.readouterr().err.splitlines()[-1]
    urst_dask.export(out, tmp_path / "quiet.png")
    assert capsys.readouterr().err == ""


def test_an_export_of_a_store_replaced_meanwhile_is_removed(run, tmp_path, monkeypatch):
    """Another run that replaces the store while it is exported (``--overwrite``) would have
    its missing chunks read as black: the export is removed and refused, not left looking done."""
    from urst_dask.io import writers

    out = run(random_image(60, 80, seed=17), stride=32, margin=4)
    real = writers.write_raster

    def write_while_replaced(path, *args, **kwargs):
        written = real(path, *args, **kwargs)
        root = zarr.open_group(str(out), mode="r+")
        root.attrs["urst_dask"] = {**root.attrs["urst_dask"], "status": "running", "started": "later"}
        return written

    monkeypatch.setattr(writers, "write_raster", write_while_replaced)
    with pytest.raises(OutputError, match="was replaced or changed by another run while it was exported"):
        urst_dask.export(out, tmp_path / "o.png")
    assert not (tmp_path / "o.png").exists()


def test_model_loaded_once_per_process(run):
    """36 windows over two runs: the network is built once in this (worker) process."""
    from urst_dask.engine import load_count

    run(random_image(60, 60, seed=20), "warm.zarr", stride=16, margin=4)
    before = load_count("identity")
    assert before >= 1
    out = run(random_image(96, 96, seed=21), "many.zarr", stride=16, margin=4)
    assert store.open_output(out).numblocks[:2] == (6, 6)
    assert load_count("identity") == before


@pytest.mark.parametrize("channels, dtype", [(4, np.uint8), (1, np.uint16), (3, np.float32)])
def test_channels_and_dtypes_end_to_end(run, tmp_path, channels, dtype):
    """RGBA keeps its alpha untouched, gray stays gray (luminance transfer), the output dtype is
    the input's; the store carries an NGFF pyramid and exports to a pyramidal TIFF."""
    import tifffile

    rng = np.random.default_rng(5)
    shape = (300, 260, channels)
    image = rng.random(shape, dtype=np.float32) if dtype == np.float32 else \
        rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype)
    out = run(image if channels != 1 else image[..., 0], f"c{channels}.zarr", stride=128, margin=8)
    result = store.open_output(out).compute()
    assert result.shape == shape and result.dtype == dtype
    if dtype == np.float32:
        np.testing.assert_allclose(result, image, atol=1e-6)
    else:
        np.testing.assert_array_equal(result, image)
    root = zarr.open_group(str(out), mode="r")
    ome = root.attrs.asdict().get("ome", {})
    assert [d["path"] for d in ome["multiscales"][0]["datasets"]][:2] == ["0", "1"]
    assert root["1"].shape == (channels, 150, 130)
    urst_dask.export(out, tmp_path / f"c{channels}.tif")
    with tifffile.TiffFile(tmp_path / f"c{channels}.tif") as tf:
        level0 = tf.series[0].levels[0].asarray()
        assert len(tf.series[0].levels) >= 2
    np.testing.assert_array_equal(level0.reshape(shape), result)


def test_percentile_intensity_range(run):
    """A uint16 scan using 2000..6000 of 0..65535: the percentile range maps onto the
    network's [0, 1] (the statistics see a full-contrast thumbnail) and back on output; the
    range is recorded.  Identity network: output == input."""
    rng = np.random.default_rng(3)
    image = rng.integers(2000, 6001, size=(120, 150, 3), dtype=np.uint16)
    out = run(image, "pct.zarr", stride=64, margin=8, intensity="percentile:0,100")
    np.testing.assert_array_equal(store.open_output(out).compute(), image)
    meta = store.read_attrs(out)["intensity"]
    assert meta["mode"] == "percentile:0,100"
    lo, hi = meta["range_in_dtype"]
    assert abs(lo - 2000) < 1 and abs(hi - 6000) < 1
    stats = store.read_stats(out)["in1"]
    assert float(np.mean(stats["std"])) > 0.2  # full contrast (the raw dtype range would give ~0.018)
    plain = store.read_stats(run(image, "dtype.zarr", stride=64, margin=8))["in1"]
    assert float(np.mean(plain["std"])) < 0.05


def test_the_omero_window_is_the_runs_intensity_range(run):
    """A float32 scan in 0..4000 with a percentile mapping: omero's window said 0..1, so OME-Zarr
    viewers that follow it (not urst-dask's napari reader) showed every channel saturated; a
    uint16 one said 0..65535 where its data spans 2000..6000."""
    rng = np.random.default_rng(4)
    for dtype, lo, hi in ((np.float32, 0.0, 4000.0), (np.uint16, 2000, 6000)):
        image = rng.uniform(lo, hi, size=(70, 90, 3)).astype(dtype)
        image[0, 0], image[0, 1] = lo, hi
        out = run(image, f"w-{np.dtype(dtype).name}.zarr", stride=64, margin=8, intensity="percentile:0,100")
        window = zarr.open_group(str(out), mode="r").attrs["ome"]["omero"]["channels"][0]["window"]
        assert (window["start"], window["end"]) == pytest.approx((lo, hi), abs=1e-3)
        assert (window["min"], window["max"]) == ((lo, hi) if dtype == np.float32 else (0.0, 65535.0))
    plain = run(random_image(70, 90, seed=2), "plain.zarr", stride=64, margin=8)
    assert zarr.open_group(str(plain), mode="r").attrs["ome"]["omero"]["channels"][0]["window"] == \
        {"min": 0.0, "max": 255.0, "start": 0.0, "end": 255.0}


def test_bad_intensity_spec(run):
    from urst_dask.errors import ParameterError

    with pytest.raises(ParameterError, match="intensity='percentile:99,1'"):
        run(random_image(10, 10), intensity="percentile:99,1")


def test_a_store_with_one_channel_per_chunk_gives_the_same_statistics(run, tmp_path):
    """OME-Zarr keeps one channel per chunk: the thumbnail (hence the statistics) must see
    all three, as for the same pixels in one chunk (it took channel 0 three times)."""
    image = random_image(96, 120, seed=12)
    tokens = {}
    for chunks in ((1, 32, 32), (2, 32, 32), (3, 32, 32)):
        path = tmp_path / f"c{chunks[0]}.zarr"
        zarr.create_array(str(path), shape=(3, 96, 120), chunks=chunks, dtype="uint8")[...] = np.moveaxis(image, 2, 0)
        src = images.open_image(path)
        assert src.array.chunks[2] == (3,)
        out = run(path, name=f"o{chunks[0]}.zarr", stride=64, margin=8)
        np.testing.assert_array_equal(store.open_output(out).compute(), image)
        tokens[chunks[0]] = store.read_stats(out).token()
    assert tokens[1] == tokens[2] == tokens[3] == store.read_stats(run(image, stride=64, margin=8)).token()


def test_a_client_of_yours_gets_the_worker_plugins(run, client):
    """client= skipped the plugins that --scheduler registers: each task ran torch on 1 thread
    where its share was more, the heap was never trimmed, and the bytes differed (1 level)."""
    from urst_dask.pipeline.plugins import HeapTrim, TorchThreads

    run(random_image(40, 50, seed=3), stride=32, margin=4)
    plugins = client.run(lambda dask_worker: sorted(dask_worker.plugins))
    assert plugins and all({TorchThreads.name, HeapTrim.name} <= set(names) for names in plugins.values()), plugins
