"""Bad input that used to print a traceback: one table, each row one case of issue 10.

Each row builds its (tiny) input under a fresh folder, then runs either the command line
(in-process ``main``, or a real subprocess where worker logging matters) or an API call, and
expects one :class:`UrstError` subclass whose message holds a fragment naming the argument,
the file and the value.  Command-line rows also check exit status 2 and exactly one
``urst-dask: error:`` line on stderr, with no traceback.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import tifffile
import torch
import zarr
from PIL import Image

import urst_dask
from urst_dask import cli
from urst_dask.errors import InputImageError, OutputError, ParameterError, ParameterTypeError, UrstError, WeightsError
from urst_dask.io import chunkio, store
from urst_dask.stats import NormStats
from urst_dask.testing import REPO, random_image


@dataclass(frozen=True)
class Ctx:
    """What a row may use: its folder, the real weights, the session's in-process cluster and
    a style image on disk."""

    d: Path
    weights: Path
    client: Any
    style: Path
    monkeypatch: pytest.MonkeyPatch


@dataclass(frozen=True)
class Row:
    """One case: ``build`` makes the input and returns the CLI argv (``kind`` "cli" or
    "subprocess") or a zero-argument callable (``kind`` "api"); ``check`` runs afterwards."""

    id: str
    kind: str  # "cli" | "subprocess" | "api"
    build: Callable[[Ctx], Any]
    error: type[UrstError]
    fragment: str  # "{d}" is replaced by the row's folder
    check: Callable[[Ctx], bool] | None = None


# ------------------------------------------------------------------------------ inputs


def zarr_in(path: Path, image: np.ndarray) -> Path:
    z = zarr.create_array(str(path), shape=image.shape, dtype=image.dtype, chunks=image.shape,
                          dimension_names=("y", "x", "c"))
    z[...] = image
    return path


def png(path: Path, h: int, w: int) -> Path:
    Image.fromarray(random_image(h, w, seed=h * w)).save(path)
    return path


def ngff(path: Path, change: Callable[[dict], None]) -> Path:
    """A valid 3 x 40 x 50 OME-Zarr 0.5 image, with ``change`` applied to its ``ome`` attributes."""
    g = zarr.open_group(str(path), mode="w")
    g.create_array("0", shape=(3, 40, 50), dtype="uint8", chunks=(3, 40, 50), dimension_names=("c", "y", "x"))
    ome = {"version": "0.5", "multiscales": [{
        "axes": [{"name": "c", "type": "channel"}, {"name": "y", "type": "space", "unit": "micrometer"},
                 {"name": "x", "type": "space", "unit": "micrometer"}],
        "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1.0, 0.5, 0.5]}]}]}],
        "omero": {"channels": [{"label": "r"}, {"label": "g"}, {"label": "b"}]}}
    change(ome)
    g.attrs["ome"] = ome
    return path


def scale(value: Any) -> Callable[[dict], None]:
    def change(ome: dict) -> None:
        ome["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"] = value
    return change


def setter(*keys: Any, value: Any) -> Callable[[dict], None]:
    def change(ome: dict) -> None:
        node = ome
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return change


def plain_array(c: Ctx) -> Path:
    return zarr_in(c.d / "plain.zarr", random_image(20, 30, seed=1))


def done_store(c: Ctx, name: str = "done.zarr") -> Path:
    """A complete output store (identity network, in-process cluster)."""
    return urst_dask.stylize(random_image(40, 50, seed=2), c.style, c.d / name, method="identity", weights=c.d,
                             client=c.client, stride=32, margin=4)


def stylize_argv(c: Ctx, content: Path, *extra: str, out: str = "out.zarr") -> list[str]:
    return ["stylize", str(content), str(c.style), "-o", str(c.d / out), "--method", "identity", "--weights",
            str(c.d), "--no-progress", *extra]


def johnson_argv(c: Ctx, checkpoint: Path) -> list[str]:
    return ["stylize", str(good_input(c)), str(checkpoint), "-o", str(c.d / "out.zarr"), "--method", "johnson",
            "--weights", str(c.weights), "--no-progress"]


def half_checkpoint(path: Path) -> Path:
    torch.save({"w": torch.ones(64, 64)}, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def good_input(c: Ctx) -> Path:
    return zarr_in(c.d / "in.zarr", random_image(40, 50, seed=3))


def damaged_stats(c: Ctx, how: str) -> Path:
    out = done_store(c)
    grp = zarr.open_group(str(out / "urst" / "stats"), mode="r+")
    if how == "missing":
        zarr.open_group(str(out), mode="r+")["urst"].__delitem__("stats")
    elif how == "shape":
        point = grp.attrs["order"][0]
        for name, _ in list(grp[point].arrays()):
            grp[point].create_array(name, data=np.zeros((2, 2, 2), np.float32), overwrite=True)
    return out


def bad_checkpoint(c: Ctx) -> Path:
    """A johnson checkpoint: the real one with two keys dropped and two foreign keys added."""
    sd = torch.load(c.weights / "johnson" / "candy.pth", map_location="cpu", weights_only=True)
    sd = {k: v for k, v in sd.items() if not k.startswith("conv1.")}
    sd.update({"head.weight": torch.zeros(3), "extra_bias": torch.zeros(1)})
    torch.save(sd, c.d / "mine.pth")
    return c.d / "mine.pth"


def johnson_with(c: Ctx) -> Callable[[], Any]:
    ckpt = bad_checkpoint(c)
    return lambda: urst_dask.stylize(random_image(40, 50, seed=4), ckpt, c.d / "out.zarr", method="johnson",
                                     weights=c.weights, client=c.client)


def wct_stats_of_another_variant(c: Ctx) -> Callable[[], Any]:
    kw = dict(method="wct", weights=c.weights, client=c.client, style_size=64, thumb_size=64, stride=64)
    image = random_image(64, 80, seed=5)
    two = urst_dask.stylize(image, c.style, c.d / "two.zarr", variant="2", **kw)
    return lambda: urst_dask.stylize(image, c.style, c.d / "out.zarr", variant="3", stats=two, **kw)


def wct_stats_object_of_another_variant(c: Ctx, mark: bool = True) -> Callable[[], Any]:
    """The NormStats of a variant-2 run given as an object: as read (marked with its weights'
    digest), or without that mark (built by hand: the network's points refuse it)."""
    kw = dict(method="wct", weights=c.weights, client=c.client, style_size=64, thumb_size=64, stride=64)
    image = random_image(64, 80, seed=5)
    two = store.read_stats(urst_dask.stylize(image, c.style, c.d / "two.zarr", variant="2", **kw))
    two = two if mark else two.with_network(None)
    return lambda: urst_dask.stylize(image, c.style, c.d / "out.zarr", variant="3", stats=two, **kw)


def identity_stats(c: Ctx, how: str, lazy: bool = False) -> Callable[[], Any]:
    """The identity network's statistics with one field's shape changed, or made NaN (given to
    ``stylize``, or ``lazy``: to ``stylize_array``)."""
    stats = store.read_stats(done_store(c))
    point = stats.points()[0]
    fields = {p: dict(stats[p]) for p in stats.points()}
    name = sorted(fields[point])[0]
    fields[point][name] = np.zeros(2, np.float32) if how == "shape" else np.full_like(fields[point][name], np.nan)
    bad = NormStats.build(stats.method, fields)
    if lazy:
        return lambda: urst_dask.stylize_array(random_image(40, 50, seed=6), c.style, method="identity", weights=c.d,
                                               stride=32, margin=4, stats=bad)
    return lambda: urst_dask.stylize(random_image(40, 50, seed=6), c.style, c.d / "out.zarr", method="identity",
                                     weights=c.d, client=c.client, stride=32, margin=4, stats=bad)


class Full:
    """A stand-in for the image array on a disk that fills up at the first chunk (columns
    0:32): writing it fails as a full disk does, the other chunk "succeeds".  Failing every
    write would make the reported chunk whichever task the scheduler happened to run first."""

    def __setitem__(self, key: Any, value: Any) -> None:
        if key[2].start == 0:
            raise OSError(errno.ENOSPC, "No space left on device", "/data/out.zarr/0/c/0/0/0")


def disk_full_stylize(c: Ctx) -> Callable[[], Any]:
    c.monkeypatch.setattr(chunkio, "_image_array", lambda path, *options: Full())
    return lambda: urst_dask.stylize(random_image(40, 50, seed=5), c.style, c.d / "full.zarr", method="identity",
                                     weights=c.d, client=c.client, stride=32, margin=4)


def disk_full_export(c: Ctx) -> Callable[[], Any]:
    out = done_store(c)

    def full(path: Any, *a: Any, **k: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    c.monkeypatch.setattr("urst_dask.io.writers.write_raster", full)  # what urst_dask.pipeline.export writes with
    return lambda: urst_dask.export(out, c.d / "x.png")


def symlink_to_store(c: Ctx) -> list[str]:
    done_store(c)
    (c.d / "link.zarr").symlink_to(c.d / "done.zarr", target_is_directory=True)
    return stylize_argv(c, good_input(c), "--overwrite", out="link.zarr")


def nan_input(c: Ctx) -> list[str]:
    image = np.full((40, 50, 3), 0.5, np.float32)
    image[7, 9, 1] = np.nan
    src = zarr_in(c.d / "nan.zarr", image)
    return ["stylize", str(src), str(c.style), "-o", str(c.d / "out.zarr"), "--method", "passthrough",
            "--weights", str(c.d), "--no-progress"]


def ome_tiff_zero_pixel(c: Ctx) -> Path:
    path = c.d / "zero.ome.tif"
    tifffile.imwrite(path, random_image(40, 50, seed=6), photometric="rgb",
                     metadata={"axes": "YXS", "PhysicalSizeX": 0.0, "PhysicalSizeY": 0.5})
    return path


def status_of(path: Path) -> str | None:
    return store.read_attrs(path).get("status")


def unfinished_store(c: Ctx) -> Path:
    """A finished store marked running again, as a run stopped midway leaves it."""
    out = done_store(c, "part.zarr")
    grp = zarr.open_group(str(out), mode="r+")
    grp.attrs["urst_dask"] = {**grp.attrs["urst_dask"], "status": "running"}
    return out


ROWS = [
    # a. too small for the network (wct16x halves its input 4 times: at least 17 px a side)
    Row("a 16 px image, wct16x", "api",
        lambda c: lambda: urst_dask.stylize(random_image(16, 40, seed=7), c.style, c.d / "out.zarr", method="wct16x",
                                            weights=c.weights, client=c.client),
        InputImageError, "content='<array>': 16 x 40 px (height x width) is too small: wct16x needs at least 17 px "
                         "on each side", lambda c: not (c.d / "out.zarr").exists()),
    Row("a thumb_size 16, wct16x", "api",
        lambda c: lambda: urst_dask.stylize(random_image(40, 60, seed=8), c.style, c.d / "out.zarr", method="wct16x",
                                            weights=c.weights, client=c.client, thumb_size=16),
        InputImageError, "thumb_size=16: too small for the thumbnail: wct16x needs at least 17 px"),
    Row("a style_size 20, wct16x", "api",
        lambda c: lambda: urst_dask.stylize(random_image(40, 60, seed=8), c.style, c.d / "out.zarr", method="wct16x",
                                            weights=c.weights, client=c.client, style_size=20),
        InputImageError, "style_size=20: too small: wct16x needs a style of at least 32 px"),
    Row("e --stats from a store of another wct variant", "api", wct_stats_of_another_variant, ParameterError,
        "two.zarr': collected with variant '2', not '3'", lambda c: not (c.d / "out.zarr").exists()),
    Row("e stats object of another wct variant (refused before any work)", "api",
        wct_stats_object_of_another_variant, ParameterError,
        "stats: collected by other weights than this run's wct '3' (weight files sha256",
        lambda c: not (c.d / "out.zarr").exists()),
    Row("e stats object of another wct variant, unmarked (refused before any work)", "api",
        lambda c: wct_stats_object_of_another_variant(c, mark=False), ParameterError,
        "stats: points ['level2', 'level1'] are not the 'wct' variant '3' network's ['level3', 'level2', 'level1']",
        lambda c: not (c.d / "out.zarr").exists()),
    Row("e stats object with a field of another shape", "api", lambda c: identity_stats(c, "shape"), ParameterError,
        "stats: point 'in1' holds fields", lambda c: not (c.d / "out.zarr").exists()),
    Row("e stats object with a field of another shape, stylize_array", "api",
        lambda c: identity_stats(c, "shape", lazy=True), ParameterError, "stats: point 'in1' holds fields"),
    Row("e stats object holding NaN", "api", lambda c: identity_stats(c, "nan"), ParameterError,
        "stats: point 'in1' field", lambda c: not (c.d / "out.zarr").exists()),
    Row("e stats of a wrong type", "api",
        lambda c: lambda: urst_dask.stylize(random_image(40, 50, seed=6), c.style, c.d / "out.zarr", method="identity",
                                            weights=c.d, client=c.client, stats=123),
        ParameterTypeError, "stats=123: expected a NormStats or the path of an output store"),
    Row("a --precision float16 --device cpu (refused before any work)", "cli",
        lambda c: stylize_argv(c, good_input(c), "--precision", "float16", "--device", "cpu"),
        ParameterError, "precision='float16': float16 runs on CUDA devices only",
        lambda c: not (c.d / "out.zarr").exists()),
    Row("e --stats with --norm in (it would be ignored)", "cli",
        lambda c: stylize_argv(c, good_input(c), "--norm", "in", "--stats", str(c.d / "in.zarr")),
        ParameterError, "stats: given statistics serve norm='tin'", lambda c: not (c.d / "out.zarr").exists()),
    Row("e config of a wrong type", "api",
        lambda c: lambda: urst_dask.stylize(random_image(40, 50, seed=6), c.style, c.d / "out.zarr", config="x"),
        ParameterTypeError, "config='x': expected a RunConfig"),
    Row("f a network checkpoint missing: named by the method, not the style", "api",
        lambda c: lambda: urst_dask.stylize(random_image(40, 50, seed=6), random_image(32, 32, seed=7),
                                            c.d / "out.zarr", method="adain", weights=c.d, client=c.client),
        WeightsError, "method='adain': checkpoint {d}/adain/vgg_normalised.pth does not exist"),
    Row("a --variant for a method without variants", "cli",
        lambda c: stylize_argv(c, good_input(c), "--method", "wct16x", "--weights", str(c.weights), "--variant", "9"),
        ParameterError, "variant='9': wct16x has no variants; leave it out", lambda c: not (c.d / "out.zarr").exists()),
    # b. a plain Zarr array where a store is expected
    Row("b plain array as -o", "cli", lambda c: stylize_argv(c, good_input(c), out="plain.zarr")
        if plain_array(c) else None,
        OutputError, "output='{d}/plain.zarr': is a Zarr array, not a urst-dask output store (a Zarr group)"),
    Row("b plain array as export's store", "cli", lambda c: ["export", str(plain_array(c)), str(c.d / "x.png")],
        OutputError, "store='{d}/plain.zarr': is a Zarr array, not a urst-dask output store"),
    Row("b plain array as --stats", "cli", lambda c: stylize_argv(c, good_input(c), "--stats", str(plain_array(c))),
        OutputError, "stats='{d}/plain.zarr': is a Zarr array, not a urst-dask output store with statistics"),
    # c. malformed NGFF attributes
    Row("c scales as strings", "cli", lambda c: stylize_argv(c, ngff(c.d / "n.zarr", scale(["1", "0.5", "0.5"]))),
        InputImageError, "content='{d}/n.zarr': malformed NGFF metadata: ome.multiscales[0].datasets[0]."
                         "coordinateTransformations[0].scale=['1', '0.5', '0.5']: expected a list of numbers"),
    Row("c multiscales not a list", "cli",
        lambda c: stylize_argv(c, ngff(c.d / "n.zarr", setter("multiscales", value={"datasets": []}))),
        InputImageError, "malformed NGFF metadata: ome.multiscales={'datasets': []}: expected a list of objects"),
    Row("c datasets not a list", "cli",
        lambda c: stylize_argv(c, ngff(c.d / "n.zarr", setter("multiscales", 0, "datasets", value="0"))),
        InputImageError, "ome.multiscales[0].datasets='0': expected a list of objects"),
    Row("c omero.channels not a list", "cli",
        lambda c: stylize_argv(c, ngff(c.d / "n.zarr", setter("omero", "channels", value="rgb"))),
        InputImageError, "ome.omero.channels='rgb': expected a list of objects"),
    Row("c '..' in a dataset path", "cli",
        lambda c: stylize_argv(c, ngff(c.d / "n.zarr", setter("multiscales", 0, "datasets", 0, "path",
                                                                value="../in.zarr"))),
        InputImageError, "datasets[0].path='../in.zarr': a dataset path must stay inside the store"),
    # d. physical pixel size: validated when the input is read
    Row("d zero pixel size (NGFF)", "cli", lambda c: stylize_argv(c, ngff(c.d / "n.zarr", scale([1.0, 0.0, 0.5]))),
        InputImageError, "content='{d}/n.zarr': physical pixel size y=0.0 micrometer in the image's metadata: must be "
                         "a finite number > 0"),
    Row("d NaN pixel size (NGFF)", "cli",
        lambda c: stylize_argv(c, ngff(c.d / "n.zarr", scale([1.0, 0.5, float("nan")]))),
        InputImageError, "physical pixel size x=nan micrometer"),
    Row("d negative pixel size (NGFF)", "cli",
        lambda c: stylize_argv(c, ngff(c.d / "n.zarr", scale([1.0, -0.5, 0.5]))),
        InputImageError, "physical pixel size y=-0.5 micrometer"),
    Row("d zero pixel size (OME-TIFF)", "cli", lambda c: stylize_argv(c, ome_tiff_zero_pixel(c)),
        InputImageError, "content='{d}/zero.ome.tif': physical pixel size x=0.0"),
    # e. a malformed --stats store
    Row("e --stats store without urst/stats", "cli",
        lambda c: stylize_argv(c, good_input(c), "--stats", str(damaged_stats(c, "missing"))),
        OutputError, "stats='{d}/done.zarr': no statistics stored there"),
    Row("e --stats with wrong-shaped arrays", "cli",
        lambda c: stylize_argv(c, good_input(c), "--stats", str(damaged_stats(c, "shape"))),
        OutputError, "stats='{d}/done.zarr': the statistics in 'urst/stats' (in1/mean (2, 2, 2)"),
    # f. a checkpoint with the wrong keys
    Row("f johnson checkpoint with wrong keys", "api", johnson_with, WeightsError,
        "style='{d}/mine.pth': weights file '{d}/mine.pth' does not fit the johnson network (2 missing keys "
        "('conv1.conv2d.weight', 'conv1.conv2d.bias'); 2 unexpected keys ('head.weight', 'extra_bias'))"),
    Row("f johnson checkpoint that is a text file (refused before any work)", "cli",
        lambda c: johnson_argv(c, (c.d / "notes.pth").write_text("hello") and c.d / "notes.pth"), WeightsError,
        "style='{d}/notes.pth': checkpoint {d}/notes.pth is not a PyTorch checkpoint (it starts with b'hello'",
        lambda c: not (c.d / "out.zarr").exists()),
    Row("f johnson checkpoint that is a folder", "cli",
        lambda c: johnson_argv(c, (c.d / "ck.pth").mkdir() or c.d / "ck.pth"), WeightsError,
        "style='{d}/ck.pth': checkpoint {d}/ck.pth is a folder, not a checkpoint file",
        lambda c: not (c.d / "out.zarr").exists()),
    Row("f johnson checkpoint that is empty", "cli",
        lambda c: johnson_argv(c, (c.d / "e.pth").touch() or c.d / "e.pth"), WeightsError,
        "style='{d}/e.pth': checkpoint {d}/e.pth is empty", lambda c: not (c.d / "out.zarr").exists()),
    Row("f johnson checkpoint cut short, as an interrupted download leaves it (refused before any work)", "cli",
        lambda c: johnson_argv(c, half_checkpoint(c.d / "cut.pth")), WeightsError,
        "style='{d}/cut.pth': checkpoint {d}/cut.pth is a damaged zip archive, the format of torch.save",
        lambda c: not (c.d / "out.zarr").exists()),
    Row("f an unfinished store as the content (its unwritten chunks read as black)", "cli",
        lambda c: stylize_argv(c, unfinished_store(c)), InputImageError,
        "content='{d}/part.zarr': an unfinished urst-dask output (status 'running'): what its run did not write "
        "would be read as black", lambda c: not (c.d / "out.zarr").exists()),
    # g. a scheduler address with an unknown scheme
    Row("g --scheduler notascheme://x", "cli",
        lambda c: stylize_argv(c, good_input(c), "--scheduler", "notascheme://x"),
        ParameterError, "scheduler='notascheme://x': unknown address scheme 'notascheme'"),
    # h. disk full: the path is named, the store stays running
    Row("h disk full during stylize", "api", disk_full_stylize, OutputError,
        "output='{d}/full.zarr': cannot write the chunk at rows 0:40, columns 0:32: No space left on device at "
        "'/data/out.zarr/0/c/0/0/0' (disk full", lambda c: status_of(c.d / "full.zarr") == "running"),
    Row("h disk full during export", "api", disk_full_export, OutputError,
        "output='{d}/x.png': cannot write the export: No space left on device (disk full",
        lambda c: not (c.d / "x.png").exists()),
    # i. an export target that is a directory
    Row("i export x.png --overwrite onto a directory", "cli",
        lambda c: (c.d / "x.png").mkdir() or ["export", str(done_store(c)), str(c.d / "x.png"), "--overwrite"],
        OutputError, "output='{d}/x.png': is a directory; --overwrite replaces files only",
        lambda c: (c.d / "x.png").is_dir()),
    # j. -o a symbolic link to a store, with --overwrite: refused, the target untouched
    Row("j -o symlink to a store with --overwrite", "cli", symlink_to_store, OutputError,
        "output='{d}/link.zarr': is a symbolic link (to '{d}/done.zarr'); --overwrite does not delete through links",
        lambda c: status_of(c.d / "done.zarr") == "complete"),
    Row("k --export onto an existing picture: the hint writes the picture alone", "cli",
        lambda c: (c.d / "x.png").write_bytes(b"old") and stylize_argv(c, good_input(c), "--export", str(c.d / "x.png")),
        OutputError, "export='{d}/x.png': already exists; pass --overwrite to replace it (and the store, which the "
                     "run then computes again), or write the picture alone again from a finished store: "
                     "urst-dask export {d}/out.zarr {d}/x.png --overwrite",
        lambda c: (c.d / "x.png").read_bytes() == b"old" and not (c.d / "out.zarr").exists()),
    Row("k --export onto an existing picture, the store at a URL: the hint says to give the storage options", "cli",
        lambda c: (c.d / "x.png").write_bytes(b"old") and [
            "stylize", str(good_input(c)), str(c.style), "-o", "memory://hint/o.zarr", "--method", "identity",
            "--weights", str(c.d), "--no-progress", "--export", str(c.d / "x.png")],
        OutputError, "urst-dask export memory://hint/o.zarr {d}/x.png --overwrite with this run's --storage-options"),
    # k. --export with an unknown suffix: refused before the run
    Row("k --export out.bmp", "cli", lambda c: stylize_argv(c, good_input(c), "--export", str(c.d / "out.bmp")),
        ParameterError, "export='{d}/out.bmp': unknown format '.bmp'; use .png, .jpg or .tif",
        lambda c: not (c.d / "out.zarr").exists()),
    # l. an existing non-store -o: the hint says what works
    Row("l existing file as -o", "cli",
        lambda c: (c.d / "notes.txt").write_text("x") and stylize_argv(c, good_input(c), out="notes.txt"),
        OutputError, "output='{d}/notes.txt': already exists and is not a Zarr store; remove it or choose another "
                     "path (--overwrite replaces only Zarr stores)"),
    Row("l existing file as -o, with --overwrite", "cli",
        lambda c: (c.d / "notes.txt").write_text("x") and stylize_argv(c, good_input(c), "--overwrite",
                                                                        out="notes.txt"),
        OutputError, "already exists and is not a Zarr store; remove it or choose another path",
        lambda c: (c.d / "notes.txt").read_text() == "x"),
    # m. a failure inside a worker process: one line, no worker traceback
    Row("m NaN input through a worker process", "subprocess", nan_input, InputImageError,
        "content='{d}/nan.zarr': 1 non-finite values (NaN or inf)"),
]


def test_the_table_covers_every_case():
    assert {r.id[0] for r in ROWS} == set("abcdefghijklm")
    assert len({r.id for r in ROWS}) == len(ROWS)


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err and "Compute Failed" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("urst-dask: error: "), err
    return lines[0]


@pytest.mark.usefixtures("no_early_start")
@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_error_table(row, tmp_path, weights, client, style_image, capsys, monkeypatch):
    style = tmp_path / "style.png"
    Image.fromarray(style_image).save(style)
    ctx = Ctx(tmp_path, weights, client, style, monkeypatch)
    fragment = row.fragment.replace("{d}", str(tmp_path))
    made = row.build(ctx)
    if row.kind == "api":
        with pytest.raises(row.error) as info:
            made()
        assert "\n" not in str(info.value) and fragment in str(info.value), str(info.value)
    elif row.kind == "cli":
        seen: list[BaseException] = []
        handler = cli.run_command

        def recording(args: Any) -> None:
            try:
                handler(args)
            except BaseException as exc:
                seen.append(exc)
                raise

        monkeypatch.setattr(cli, "run_command", recording)
        capsys.readouterr()
        rc = cli.main(made)
        line = _one_error_line(capsys.readouterr().err)
        assert rc == 2 and fragment in line, line
        assert len(seen) == 1 and type(seen[0]) is row.error, seen
    else:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.run([sys.executable, "-m", "urst_dask.cli", *made], capture_output=True, text=True,
                              timeout=240, env=env, cwd=tmp_path)
        line = _one_error_line(proc.stderr)
        assert proc.returncode == 2 and fragment in line, line
        assert row.error.__name__ == "InputImageError" and "non-finite" in line
    if row.check is not None:
        assert row.check(ctx)
