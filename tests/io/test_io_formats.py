"""Input and output formats: every reader gives (H, W, C) with its levels and metadata, and
every writer round-trips (tiny images, generated here)."""

from __future__ import annotations

import os
import pickle
import socket
import struct
import subprocess
import sys
import zlib

import dask
import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from urst_dask.errors import InputImageError, OutputError, ParameterTypeError
from urst_dask.io import halving, images, readers, writers
from urst_dask.pipeline import export, pyramid
from urst_dask.pipeline.pyramid import write_pyramid


def rgb(h, w, seed=0, c=3, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.random((h, w, c), dtype=np.float32)
    return rng.integers(0, np.iinfo(dtype).max + 1, size=(h, w, c), dtype=dtype)


def half_ref(a):
    """Reference 2x area mean (edge repeated on odd sizes), rounded for integers."""
    a = np.pad(a, ((0, a.shape[0] % 2), (0, a.shape[1] % 2), (0, 0)), mode="edge").astype(np.float64)
    m = (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]) / 4
    return m


def close_to(level, ref, dtype):
    if np.dtype(dtype).kind == "f":
        np.testing.assert_allclose(level, ref, rtol=1e-5, atol=1e-6)
    else:
        assert np.abs(level.astype(np.float64) - ref).max() <= 0.5 + 1e-6


def graph_values(arr):
    return list(dict(arr.__dask_graph__()).values())


def embedded_arrays(arr, min_size=64):
    """numpy arrays of at least ``min_size`` elements embedded in the graph."""
    found = []

    def walk(v):
        if isinstance(v, np.ndarray) and v.size >= min_size:
            found.append(v)
        elif isinstance(v, (tuple, list)):
            for x in v:
                walk(x)
        elif hasattr(v, "args") and isinstance(v.args, tuple):  # dask Task objects
            walk(v.args)
            if hasattr(v, "value"):
                walk(v.value)
        elif hasattr(v, "value"):
            walk(v.value)

    for v in graph_values(arr):
        walk(v)
    return found


# --------------------------------------------------------------------------- PNG / JPEG


def test_png_is_streamed_into_a_temporary_zarr(tmp_path):
    img = rgb(70, 90, seed=1)
    Image.fromarray(img).save(tmp_path / "c.png")
    src = images.open_image(tmp_path / "c.png")
    assert (src.format, src.channels, src.axes_in, src.shape) == ("png", "rgb", "YXC", (70, 90, 3))
    np.testing.assert_array_equal(src.array.compute(), img)
    assert embedded_arrays(src.array) == []  # the pixels live in the Zarr, not in the graph
    zarrs = [v for v in graph_values(src.array) if isinstance(v, zarr.Array)]
    assert zarrs and "urst-dask-" in str(zarrs[0].store)
    again = images.open_image(tmp_path / "c.png")  # unchanged file: the same store is reused
    assert again.array.name == src.array.name
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(src.array)).compute(), img)


@pytest.mark.parametrize("mode, channels, dtype", [("L", "gray", np.uint8), ("LA", "rgba", np.uint8),
                                                   ("RGBA", "rgba", np.uint8), ("P", "rgb", np.uint8),
                                                   ("I;16", "gray", np.uint16)])
def test_png_modes(tmp_path, mode, channels, dtype):
    base = rgb(20, 30, seed=2, c=4)
    if mode == "I;16":
        pixels = rgb(20, 30, seed=2, c=1, dtype=np.uint16)[..., 0]
        Image.fromarray(pixels).save(tmp_path / "m.png")
    elif mode == "P":
        Image.fromarray(base[..., :3]).convert("P").save(tmp_path / "m.png")
    else:
        Image.fromarray(base).convert(mode).save(tmp_path / "m.png")
    src = images.open_image(tmp_path / "m.png")
    assert src.channels == channels and src.array.dtype == dtype
    out = src.array.compute()
    if mode == "RGBA":
        np.testing.assert_array_equal(out, base)  # alpha untouched
    if mode == "LA":  # gray repeated into RGB, alpha kept
        la = np.asarray(Image.open(tmp_path / "m.png"))
        np.testing.assert_array_equal(out[..., 0], la[..., 0])
        np.testing.assert_array_equal(out[..., 3], la[..., 1])
    if mode == "I;16":
        np.testing.assert_array_equal(out[..., 0], pixels)


def test_jpeg_and_exif_orientation(tmp_path):
    img = rgb(20, 30, seed=3)
    Image.fromarray(img).save(tmp_path / "j.jpg", quality=95)
    src = images.open_image(tmp_path / "j.jpg")
    assert (src.format, src.shape) == ("jpeg", (20, 30, 3))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: displayed 90 degrees clockwise
    Image.fromarray(img).save(tmp_path / "r.png", exif=exif)
    rotated = images.open_image(tmp_path / "r.png").array.compute()
    np.testing.assert_array_equal(rotated, np.rot90(img, k=-1))


def test_decompression_bomb_needs_the_flag(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    Image.fromarray(rgb(40, 40)).save(tmp_path / "big.png")
    with pytest.raises(InputImageError, match="1600 pixels exceeds Pillow's decompression-bomb limit of 1000 "
                                              "pixels; if you trust this file pass --allow-large-images"):
        images.open_image(tmp_path / "big.png")
    assert images.open_image(tmp_path / "big.png", allow_large=True).shape == (40, 40, 3)
    assert Image.MAX_IMAGE_PIXELS == 1000  # lifted for that read only


# ---------------------------------------------------------------------------------- TIFF


def write_ome_pyramid(path, data, pixel=0.25, levels=2):
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
        opts = {"tile": (32, 32), "photometric": "rgb", "compression": "zlib"}
        tw.write(data, subifds=levels, metadata={"axes": "YXS", "PhysicalSizeX": pixel, "PhysicalSizeXUnit": "µm",
                                                 "PhysicalSizeY": pixel, "PhysicalSizeYUnit": "µm"}, **opts)
        for i in range(1, levels + 1):
            tw.write(data[:: 2**i, :: 2**i], subfiletype=1, **opts)


def test_ome_tiff_pyramid_levels_pixel_size_and_pickling(tmp_path):
    data = rgb(160, 120, seed=4)
    write_ome_pyramid(tmp_path / "p.ome.tif", data)
    src = images.open_image(tmp_path / "p.ome.tif")
    assert (src.format, src.channels, src.axes_in) == ("ome-tiff", "rgb", "YXS")
    assert src.pixel_size == {"y": (0.25, "micrometer"), "x": (0.25, "micrometer")}
    assert [lv.shape for lv in src.levels] == [(80, 60, 3), (40, 30, 3)]
    np.testing.assert_array_equal(src.array.compute(), data)
    np.testing.assert_array_equal(src.levels[1].compute(), data[::4, ::4])
    # thumbnail level: the smallest whose shorter side still reaches the thumbnail size
    assert src.level_for(50).shape == (80, 60, 3)
    assert src.level_for(30).shape == (40, 30, 3)
    assert src.level_for(100).shape == (160, 120, 3)
    # tifffile's own store cannot be pickled; ours reopens the file in the receiving process
    blob = pickle.dumps(src.array)
    readers._close_tiffs()
    np.testing.assert_array_equal(pickle.loads(blob).compute(), data)


def test_tiff_channels_first_rgba_and_gray(tmp_path):
    chw = rgb(40, 50, seed=5, c=3).transpose(2, 0, 1).copy()
    tifffile.imwrite(tmp_path / "chw.tif", chw, photometric="minisblack", metadata={"axes": "CYX"})
    src = images.open_image(tmp_path / "chw.tif")
    assert src.shape == (40, 50, 3) and src.axes_in.replace("Q", "C") in ("CYX",)
    np.testing.assert_array_equal(src.array.compute(), chw.transpose(1, 2, 0))
    rgba = rgb(40, 50, seed=6, c=4)
    tifffile.imwrite(tmp_path / "rgba.tif", rgba, photometric="rgb", extrasamples=["unassalpha"], tile=(16, 16))
    src = images.open_image(tmp_path / "rgba.tif")
    assert src.channels == "rgba"
    np.testing.assert_array_equal(src.array.compute(), rgba)
    gray = rgb(40, 50, seed=7, c=1, dtype=np.uint16)[..., 0]
    tifffile.imwrite(tmp_path / "gray.tif", gray, photometric="minisblack")
    src = images.open_image(tmp_path / "gray.tif")
    assert (src.channels, src.shape, src.array.dtype) == ("gray", (40, 50, 1), np.uint16)


def test_ome_tiff_tczyx_with_singletons(tmp_path):
    data = rgb(30, 40, seed=8, c=3).transpose(2, 0, 1)[None, :, None]  # (1, 3, 1, 30, 40)
    tifffile.imwrite(tmp_path / "t.ome.tif", data, photometric="minisblack",
                     metadata={"axes": "TCZYX", "Channel": {"Name": ["R", "G", "B"]}})
    src = images.open_image(tmp_path / "t.ome.tif")
    assert src.shape == (30, 40, 3) and src.channel_names == ("R", "G", "B")
    np.testing.assert_array_equal(src.array.compute(), data[0, :, 0].transpose(1, 2, 0))


# ---------------------------------------------------------------------------------- Zarr


def test_plain_zarr_v2_and_v3(tmp_path):
    img = rgb(20, 30, seed=9)
    z2 = zarr.create_array(str(tmp_path / "v2.zarr"), shape=img.shape, dtype="uint8", chunks=(8, 8, 3),
                           zarr_format=2)
    z2[...] = img
    g = zarr.open_group(str(tmp_path / "v3.zarr"), mode="w", zarr_format=3)
    g.create_array("0", shape=img.shape, dtype="uint8", chunks=(8, 8, 3))[...] = img
    for name in ("v2.zarr", "v3.zarr"):
        src = images.open_image(tmp_path / name)
        assert (src.format, src.axes_in) == ("zarr", "YXC")
        np.testing.assert_array_equal(src.array.compute(), img)


def test_zarr_dimension_names_resolve_an_ambiguous_shape(tmp_path):
    data = rgb(4, 3, seed=10, c=3).transpose(2, 0, 1)  # (3, 4, 3): ambiguous by shape alone
    z = zarr.create_array(str(tmp_path / "named.zarr"), shape=data.shape, dtype="uint8", chunks=data.shape,
                          dimension_names=("c", "y", "x"))
    z[...] = data
    src = images.open_image(tmp_path / "named.zarr")
    assert src.axes_in == "CYX"
    np.testing.assert_array_equal(src.array.compute(), data.transpose(1, 2, 0))
    z2 = zarr.create_array(str(tmp_path / "xr.zarr"), shape=data.shape, dtype="uint8", chunks=data.shape,
                           zarr_format=2, attributes={"_ARRAY_DIMENSIONS": ["c", "y", "x"]})
    z2[...] = data
    assert images.open_image(tmp_path / "xr.zarr").axes_in == "CYX"


@pytest.mark.parametrize("axes, shape, expect", [
    ("CYX", (3, 20, 30), lambda d: d.transpose(1, 2, 0)),
    ("TCZYX", (1, 3, 1, 20, 30), lambda d: d[0, :, 0].transpose(1, 2, 0)),
    ("YXC", (20, 30, 4), lambda d: d),
    ("ZYX", (1, 20, 30), lambda d: d[0][..., None]),
    ("SYX", (3, 20, 30), lambda d: d.transpose(1, 2, 0)),
    ("XYC", (30, 20, 3), lambda d: d.transpose(1, 0, 2)),
])
def test_explicit_axes(tmp_path, axes, shape, expect):
    data = np.arange(np.prod(shape), dtype=np.uint16).reshape(shape)
    z = zarr.create_array(str(tmp_path / "a.zarr"), shape=shape, dtype="uint16", chunks=shape)
    z[...] = data
    src = images.open_image(tmp_path / "a.zarr", axes=axes.lower())
    assert src.axes_in == axes
    np.testing.assert_array_equal(src.array.compute(), expect(data))


def test_shape_heuristics():
    where = "content='x'"
    assert readers.guess_axes((20, 30), where) == "YX"
    assert readers.guess_axes((20, 30, 3), where) == "YXC"
    assert readers.guess_axes((3, 20, 30), where) == "CYX"
    assert readers.guess_axes((1, 20, 30, 3), where) == "ZYXC"
    assert readers.guess_axes((1, 1, 3, 20, 30), where) == "TZCYX"
    for bad in ((3, 4, 3), (4, 100, 4), (10, 20, 30), (1, 1, 1, 20, 30, 3)):
        with pytest.raises(InputImageError, match="cannot tell the axes"):
            readers.guess_axes(bad, where)


def ngff_group(path, data_cyx, zarr_format, *, nested=False):
    root = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    g = root.create_group("0") if nested else root
    g.create_array("0", shape=data_cyx.shape, dtype=data_cyx.dtype, chunks=data_cyx.shape)[...] = data_cyx
    small = data_cyx[:, ::2, ::2]
    g.create_array("1", shape=small.shape, dtype=small.dtype, chunks=small.shape)[...] = small
    ms = {"axes": [{"name": "c", "type": "channel"}, {"name": "y", "type": "space", "unit": "micrometer"},
                   {"name": "x", "type": "space", "unit": "micrometer"}],
          "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 0.5, 0.5]}]},
                       {"path": "1", "coordinateTransformations": [{"type": "scale", "scale": [1, 1.0, 1.0]}]}]}
    omero = {"channels": [{"label": n} for n in ("DAPI", "GFP", "RFP")]}
    if zarr_format == 2:
        g.attrs.update({"multiscales": [{"version": "0.4", **ms}], "omero": omero})
    else:
        g.attrs.update({"ome": {"version": "0.5", "multiscales": [ms], "omero": omero}})
    return path


@pytest.mark.parametrize("zarr_format, nested", [(2, False), (3, False), (3, True)])
def test_ome_zarr_read(tmp_path, zarr_format, nested):
    data = np.ascontiguousarray(rgb(30, 40, seed=11).transpose(2, 0, 1))
    src = images.open_image(ngff_group(tmp_path / "n.zarr", data, zarr_format, nested=nested))
    assert (src.format, src.axes_in, src.channels) == ("ome-zarr", "CYX", "rgb")
    assert src.pixel_size == {"y": (0.5, "micrometer"), "x": (0.5, "micrometer")}
    assert src.channel_names == ("DAPI", "GFP", "RFP")
    assert [lv.shape for lv in src.levels] == [(15, 20, 3)]
    np.testing.assert_array_equal(src.array.compute(), data.transpose(1, 2, 0))
    np.testing.assert_array_equal(src.levels[0].compute(), data[:, ::2, ::2].transpose(1, 2, 0))


def test_arrays_through_as_source():
    chw = rgb(20, 30, seed=12).transpose(2, 0, 1)
    src = images.as_source(chw)
    assert (src.axes_in, src.shape, src.format) == ("CYX", (20, 30, 3), "array")
    np.testing.assert_array_equal(src.array.compute(), chw.transpose(1, 2, 0))
    gray = images.as_source(da.zeros((20, 30), dtype=np.float32, chunks=10))
    assert (gray.channels, gray.shape) == ("gray", (20, 30, 1))


def test_style_is_rgb_whatever_the_source(tmp_path):
    Image.fromarray(rgb(10, 12, seed=13, c=4)).save(tmp_path / "a.png")
    Image.fromarray(rgb(10, 12, seed=13, c=1)[..., 0]).save(tmp_path / "g.png")
    assert images.read_style(tmp_path / "a.png").shape == (10, 12, 3)
    g = images.read_style(tmp_path / "g.png")
    assert g.shape == (10, 12, 3) and (g[..., 0] == g[..., 2]).all()


def test_style_is_read_without_a_dask_compute(tmp_path, monkeypatch):
    """io computes nothing: the style is read straight from the stored array, checks kept."""
    img = rgb(20, 16, seed=14, dtype=np.float32).transpose(2, 0, 1)
    zarr.save_array(str(tmp_path / "s.zarr"), img)
    bad = img.copy()
    bad[1, 3, 4] = np.nan
    zarr.save_array(str(tmp_path / "nan.zarr"), bad)

    def refuse(*args, **kwargs):
        raise AssertionError("read_style computed a Dask graph")

    monkeypatch.setattr(da.Array, "compute", refuse)
    np.testing.assert_array_equal(images.read_style(tmp_path / "s.zarr", axes="CYX"), img.transpose(1, 2, 0))
    with pytest.raises(InputImageError, match="nan.zarr': 1 non-finite values"):
        images.read_style(tmp_path / "nan.zarr", axes="CYX")


# ------------------------------------------------------------------------------- writers


def ngff_is_conformant(axes):
    """The NGFF 0.4/0.5 ordering rules (as ome-zarr-py checks them)."""
    types = [a.get("type") for a in axes]
    if "time" in types and types.index("time") != 0:
        return False
    if types.count("channel") > 1:
        return False
    if "channel" in types and types.index("channel") > types.index("space"):
        return False
    return 2 <= types.count("space") <= 3


@pytest.mark.parametrize("layout", ["yxc", "cyx"])
def test_pyramid_of_a_thin_strip_keeps_full_chunks(tmp_path, layout):
    """Level 0 of a 6 x 600 strip is chunked (6, 200): its levels are chunked 200 along x, not
    by the strip's height along both axes (which gave 1 x 1-pixel chunks further down)."""
    img = rgb(6, 600, seed=15)
    root = zarr.open_group(str(tmp_path / "o.zarr"), mode="w", zarr_format=3)
    stored = img if layout == "yxc" else img.transpose(2, 0, 1)
    chunks = (6, 200, 3) if layout == "yxc" else (3, 6, 200)
    root.create_array("0", shape=stored.shape, dtype=np.uint8, chunks=chunks)[...] = stored
    paths = write_pyramid(tmp_path / "o.zarr", min_size=16)
    root = zarr.open_group(str(tmp_path / "o.zarr"), mode="r")
    yx = [tuple(root[p].chunks[i] for i in ((0, 1) if layout == "yxc" else (1, 2))) for p in paths]
    assert yx == [(6, 200), (3, 200), (2, 150), (1, 75), (1, 38), (1, 19), (1, 10)]


@pytest.mark.parametrize("layout", ["yxc", "cyx"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_write_ngff_pyramid(tmp_path, layout, dtype):
    img = rgb(100, 70, seed=14, dtype=dtype)
    root = zarr.open_group(str(tmp_path / "o.zarr"), mode="w", zarr_format=3)
    stored = img if layout == "yxc" else img.transpose(2, 0, 1)
    names = ("y", "x", "c") if layout == "yxc" else ("c", "y", "x")
    chunks = (32, 32, 3) if layout == "yxc" else (3, 32, 32)
    root.create_array("0", shape=stored.shape, dtype=dtype, chunks=chunks, dimension_names=names)[...] = stored
    root.attrs["urst_dask"] = {"status": "complete", "method": "x"}
    root.create_array("7", shape=(1, 1, 3), dtype=dtype)  # a stale level of an earlier, bigger pyramid
    size = {"y": (0.5, "micrometer"), "x": (0.25, "micrometer")}
    paths = write_pyramid(tmp_path / "o.zarr", pixel_size=size, min_size=16)
    assert paths == ("0", "1", "2", "3")
    root = zarr.open_group(str(tmp_path / "o.zarr"), mode="r")
    assert "7" not in dict(root.arrays())
    assert root.attrs["urst_dask"] == {"status": "complete", "method": "x"}
    ms = root.attrs["ome"]["multiscales"][0]
    assert root.attrs["ome"]["version"] == "0.5"
    assert [a["name"] for a in ms["axes"]] == list(names)
    assert ngff_is_conformant(ms["axes"]) == (layout == "cyx")
    scales = [d["coordinateTransformations"][0]["scale"] for d in ms["datasets"]]
    ys = [s[names.index("y")] for s in scales]
    assert ys == [0.5, 1.0, 2.0, 4.0]
    assert [c["color"] for c in root.attrs["ome"]["omero"]["channels"]] == ["FF0000", "00FF00", "0000FF"]
    src = images.open_image(tmp_path / "o.zarr")
    assert (src.format, src.axes_in) == ("ome-zarr", layout.upper())
    assert src.pixel_size == size
    assert [lv.shape for lv in src.levels] == [(50, 35, 3), (25, 18, 3), (13, 9, 3)]
    np.testing.assert_array_equal(src.array.compute(), img)
    ref = img
    for level in src.levels:
        ref = half_ref(ref)
        close_to(level.compute(), ref, dtype)
        ref = level.compute()
    assert [lv.shape for lv in images.read_ngff_levels(tmp_path / "o.zarr")] == [lv.shape for lv in src.levels]


@pytest.mark.parametrize("layout", ["yxc", "cyx"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("local_bytes, computes", [(0, 4), ("level 1", 1), (64 << 20, 0)],
                         ids=["every-level-on-the-scheduler", "first-on-the-scheduler", "all-in-memory"])
def test_small_levels_reduced_in_memory_equal_the_scheduled_ones(tmp_path, monkeypatch, layout, dtype,
                                                                local_bytes, computes):
    """Levels reduced in this process (a level of at most LOCAL_BYTES and all after it) are the
    same pixels as levels computed chunk by chunk on the scheduler; only the small ones skip it."""
    img = rgb(101, 67, seed=15, dtype=dtype)  # odd sizes: the repeated last row/column
    stored = img if layout == "yxc" else img.transpose(2, 0, 1)
    names = ("y", "x", "c") if layout == "yxc" else ("c", "y", "x")
    if local_bytes == "level 1":  # level "0" on the scheduler, level "1" (51 x 34) and after it in memory
        local_bytes = 51 * 34 * 3 * np.dtype(dtype).itemsize
    levels = {}
    for mode, budget in (("reference", 0), ("tested", local_bytes)):
        root = zarr.open_group(str(tmp_path / f"{mode}.zarr"), mode="w", zarr_format=3)
        root.create_array("0", shape=stored.shape, dtype=dtype, chunks=(16, 16, 3) if layout == "yxc" else (3, 16, 16),
                          dimension_names=names)[...] = stored
        calls = []
        monkeypatch.setattr(pyramid, "LOCAL_BYTES", budget)
        monkeypatch.setattr(pyramid, "_compute", lambda client, c, calls=calls: (calls.append(1), dask.compute(c)))
        assert write_pyramid(tmp_path / f"{mode}.zarr", min_size=8, chunk=16) == ("0", "1", "2", "3", "4")
        levels[mode] = [np.asarray(a) for a in images.read_ngff_levels(tmp_path / f"{mode}.zarr")]
        chunks = [zarr.open_array(str(tmp_path / f"{mode}.zarr" / k)).chunks for k in "1234"]
        levels[mode + " chunks"] = chunks
        if mode == "tested":
            assert len(calls) == computes
    for got, want in zip(levels["tested"], levels["reference"], strict=True):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype
    assert levels["tested chunks"] == levels["reference chunks"]


def test_write_ngff_pyramid_gray_and_rgba_channels(tmp_path):
    for c, model, colours in ((1, "greyscale", ["FFFFFF"]), (4, "color", ["FF0000", "00FF00", "0000FF", "FFFFFF"])):
        root = zarr.open_group(str(tmp_path / f"{c}.zarr"), mode="w", zarr_format=3)
        root.create_array("0", shape=(40, 40, c), dtype="uint8", chunks=(16, 16, c))[...] = rgb(40, 40, c=c)
        write_pyramid(tmp_path / f"{c}.zarr", min_size=16, channel_names=["only"] if c == 1 else None)
        omero = zarr.open_group(str(tmp_path / f"{c}.zarr"), mode="r").attrs["ome"]["omero"]
        assert omero["rdefs"]["model"] == model
        assert [ch["color"] for ch in omero["channels"]] == colours
    assert omero["channels"][3]["active"] is False  # alpha is not shown as a colour
    with pytest.raises(OutputError, match="not a Zarr group"):
        write_pyramid(tmp_path / "none.zarr")


@pytest.mark.parametrize("c, dtype", [(3, np.uint8), (4, np.uint8), (1, np.uint16), (3, np.float32)])
def test_write_pyramidal_tiff_roundtrip(tmp_path, monkeypatch, c, dtype):
    img = rgb(300, 200, seed=15, c=c, dtype=dtype)
    arr = da.from_array(img, chunks=(64, 64, c))
    bands = []
    real = writers._bands

    def spy(array, rows):
        for band in real(array, rows):
            bands.append((int(array.shape[0]), band.shape[0]))
            yield band

    monkeypatch.setattr(writers, "_bands", spy)
    size = {"y": (0.5, "micrometer"), "x": (0.5, "micrometer")}
    export.write_tiff(tmp_path / "o.tif", arr, tile=64, pixel_size=size)
    # full resolution band by band (its chunk height rounded up to the tile), never whole
    assert max(rows for h, rows in bands if h == 300) == 64
    with tifffile.TiffFile(tmp_path / "o.tif") as tf:
        assert tf.is_bigtiff and tf.is_ome and tf.pages[0].is_tiled
        series = tf.series[0]
        shapes = [lv.shape[:2] for lv in series.levels]
        assert shapes == [(300, 200), (150, 100), (75, 50), (38, 25)]  # each level 2x smaller
        assert tf.pages[0].photometric == (tifffile.PHOTOMETRIC.MINISBLACK if c == 1 else tifffile.PHOTOMETRIC.RGB)
        if c == 4:
            assert tf.pages[0].extrasamples == (tifffile.EXTRASAMPLE.UNASSALPHA,)
        np.testing.assert_array_equal(series.asarray().reshape(img.shape), img)
        close_to(series.levels[1].asarray().reshape(150, 100, c), half_ref(img), dtype)
    back = images.open_image(tmp_path / "o.tif")
    assert back.pixel_size == size and back.channels == {1: "gray", 3: "rgb", 4: "rgba"}[c]
    assert [lv.shape[:2] for lv in back.levels] == shapes[1:]
    assert not list(tmp_path.glob(".o.tif*"))  # no partial file or scratch levels left


def test_write_pyramidal_tiff_with_given_levels_and_overwrite(tmp_path):
    img = rgb(64, 64, seed=16)
    levels = [da.from_array(img[::2, ::2]), da.from_array(img[::4, ::4])]
    export.write_tiff(tmp_path / "g.tif", da.from_array(img), tile=16, levels=levels)
    with tifffile.TiffFile(tmp_path / "g.tif") as tf:
        np.testing.assert_array_equal(tf.series[0].levels[2].asarray(), img[::4, ::4])
    with pytest.raises(OutputError, match="already exists; pass --overwrite"):
        export.write_tiff(tmp_path / "g.tif", da.from_array(img), tile=16)
    export.write_tiff(tmp_path / "g.tif", da.from_array(img), tile=16, levels=0, overwrite=True)
    with tifffile.TiffFile(tmp_path / "g.tif") as tf:
        assert len(tf.series[0].levels) == 1


def decode_png(data: bytes) -> tuple[dict, bytes]:
    """A minimal PNG reader for the test: chunk CRCs checked, IDAT inflated."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, head = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])[0] == zlib.crc32(tag + body) & 0xFFFFFFFF
        if tag == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            head = {"w": w, "h": h, "depth": depth, "ctype": ctype}
        elif tag == b"IDAT":
            idat += body
        pos += 12 + n
    return head, zlib.decompress(idat)


@pytest.mark.parametrize("c, dtype", [(3, np.uint8), (4, np.uint8), (1, np.uint8), (1, np.uint16), (3, np.uint16)])
def test_png_export_is_streamed_and_exact(tmp_path, c, dtype):
    img = rgb(150, 70, seed=17, c=c, dtype=dtype)
    export.write_raster(tmp_path / "o.png", da.from_array(img, chunks=(40, 70, c)))
    head, raw = decode_png((tmp_path / "o.png").read_bytes())
    assert head == {"w": 70, "h": 150, "depth": 8 * np.dtype(dtype).itemsize, "ctype": {1: 0, 3: 2, 4: 6}[c]}
    rows = np.frombuffer(raw, np.uint8).reshape(150, -1)
    assert (rows[:, 0] == 2).all()
    back = np.cumsum(rows[:, 1:].astype(np.int64), axis=0) % 256  # undo the "Up" filter
    pixels = back.astype(np.uint8).view(">u2" if dtype == np.uint16 else np.uint8).reshape(img.shape)
    np.testing.assert_array_equal(pixels, img)
    if dtype == np.uint8 or c == 1:  # what Pillow can read back exactly
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o.png")).reshape(img.shape), img)


def test_writers_take_numpy_and_leave_dask_to_the_pipeline(tmp_path):
    """io computes nothing: a Dask array is refused, pipeline.export streams it band by band."""
    img = rgb(30, 40, seed=18)
    with pytest.raises(ParameterTypeError, match="urst_dask.pipeline.export"):
        writers.write_raster(tmp_path / "o.png", da.from_array(img))
    export.write_raster(tmp_path / "d.png", da.from_array(img, chunks=(7, 40, 3)))
    writers.write_raster(tmp_path / "n.png", img)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "d.png")), img)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "n.png")), img)


def test_concurrent_exports_to_one_target_write_their_own_temporary_files(tmp_path):
    """While one export of o.png is under way a second one writes o.png too: each writes a
    hidden temporary file of its own beside the target, so the file renamed last is whole (not
    a mix of the two) and no temporary file is left."""
    first, second = rgb(64, 40, seed=19), rgb(64, 40, seed=20)
    target = tmp_path / "o.png"
    during: list[list[str]] = []

    def read(y0, y1):
        if not during:
            during.append([p.name for p in tmp_path.glob(".o.png.*.partial")])
            writers.write_raster(target, second)
            np.testing.assert_array_equal(np.asarray(Image.open(target)), second)
        return first[y0:y1]

    writers.write_raster(target, writers.Raster(first.shape, first.dtype, 16, read), overwrite=True)
    np.testing.assert_array_equal(np.asarray(Image.open(target)), first)
    assert len(during[0]) == 1 and during[0][0].startswith(f".o.png.{socket.gethostname()}-{os.getpid()}-"), during
    assert not list(tmp_path.glob(".*partial"))


def test_a_killed_exports_partial_file_is_removed_by_the_next_export(tmp_path):
    """kill -9 leaves the hidden temporary file; the next export of that target removes it
    when its process is gone, and keeps a live export's (and another target's)."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    left = tmp_path / f".o.png.{host}-{int(dead.stdout)}-abcd1234.partial"
    live = tmp_path / f".o.png.{host}-{os.getpid()}-abcd1234.partial"
    other = tmp_path / f".p.png.{host}-{int(dead.stdout)}-abcd1234.partial"
    # a host named like this one plus '-<digits>', writing on a shared folder: its pid is not ours to judge
    longer = tmp_path / f".o.png.{host}-{int(dead.stdout)}-{int(dead.stdout)}-abcd1234.partial"
    for p in (left, live, other, longer):
        p.write_bytes(b"half")
    writers.write_raster(tmp_path / "o.png", rgb(16, 8, seed=1))
    assert not left.exists() and live.exists() and other.exists() and longer.exists()


def test_an_export_to_a_name_near_the_length_limit_is_written(tmp_path):
    """The partial file's suffix (host, pid) must not push a valid name past 255 bytes."""
    target = tmp_path / ("x" * 250 + ".png")
    writers.write_raster(target, rgb(16, 8, seed=2))
    assert target.exists() and not list(tmp_path.glob(".*.partial"))


def test_jpeg_export_and_limits(tmp_path):
    img = rgb(30, 40, seed=18)
    images.write_raster(tmp_path / "o.jpg", img)
    assert np.asarray(Image.open(tmp_path / "o.jpg")).shape == (30, 40, 3)
    with pytest.raises(OutputError, match="JPEG has no alpha channel"):
        images.write_raster(tmp_path / "a.jpg", rgb(10, 10, c=4))
    with pytest.raises(OutputError, match="cannot hold float32 pixels; export a .tif"):
        images.write_raster(tmp_path / "f.png", rgb(10, 10, dtype=np.float32))


def test_half_matches_reference_on_odd_sizes():
    img = rgb(33, 17, seed=19, dtype=np.uint16)
    out = halving.half(da.from_array(img, chunks=(10, 7, 3)), chunk=8).compute()
    assert out.shape == (17, 9, 3)
    close_to(out, half_ref(img), np.uint16)


@settings(max_examples=60, deadline=None)
@given(dtype=st.sampled_from(["uint8", "int8", "uint16", "int16", "uint32", "int32"]),
       h=st.integers(1, 6), w=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_half_block_of_integers_is_the_rounded_exact_mean(dtype, h, w, seed):
    """The integer route equals the float64 mean of each 2 x 2 block rounded half to even,
    at the extremes of the dtype and at the half-way sums (values drawn from a few per block)."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    pool = np.array([info.min, info.min + 1, -1 if info.min < 0 else 2, 0, 1, info.max - 1, info.max], dtype=dtype)
    block = np.where(rng.random((2 * h, 2 * w, 3)) < 0.5, rng.choice(pool, (2 * h, 2 * w, 3)),
                     rng.integers(info.min, info.max, (2 * h, 2 * w, 3), dtype=dtype, endpoint=True))
    ref = np.rint(block.astype(np.float64).reshape(h, 2, w, 2, 3).mean(axis=(1, 3))).astype(dtype)
    got = halving.half_block(block)
    assert got.dtype == block.dtype
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("dtype", ["uint64", "int64"])
def test_half_block_of_64_bit_integers_rounds(dtype):
    """64-bit integers take the float route; their means are still rounded, not truncated."""
    block = np.array([[1, 2, 5, 5], [2, 2, 5, 6]], dtype=dtype)[:, :, None]  # 2 x 2 means 1.75, 5.25
    np.testing.assert_array_equal(halving.half_block(block)[..., 0], np.array([[2, 5]], dtype=dtype))


@pytest.mark.parametrize("name", ["in.zarr", "in.tif"])
def test_a_relative_input_is_read_from_where_it_was_named(tmp_path, monkeypatch, name):
    """Workers of an existing cluster may run in another folder: the lazy array keeps the
    absolute path, so it reads the image the user named, not a same-named one of theirs."""
    img, other = rgb(40, 50, seed=30), rgb(40, 50, seed=31)
    for folder, pixels in ((tmp_path / "client", img), (tmp_path / "worker", other)):
        folder.mkdir()
        if name.endswith(".zarr"):
            zarr.create_array(str(folder / name), shape=pixels.shape, dtype=pixels.dtype, chunks=(16, 16, 3))[...] = pixels
        else:
            tifffile.imwrite(folder / name, pixels, tile=(16, 16))
    monkeypatch.chdir(tmp_path / "client")
    src = images.open_image(name)
    monkeypatch.chdir(tmp_path / "worker")  # where a worker computes it
    readers._close_tiffs()  # a worker process opens the file afresh
    np.testing.assert_array_equal(src.array.compute(scheduler="sync"), img)
