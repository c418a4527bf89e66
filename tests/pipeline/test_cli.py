"""The command line: bad input gives one clear line and exit status 2; a real run works."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from PIL import Image

from urst_dask.cli import main
from urst_dask.errors import OutputError
from urst_dask.io import store
from urst_dask.testing import random_image


@pytest.fixture
def files(tmp_path):
    img = random_image(60, 80, seed=1)
    Image.fromarray(img).save(tmp_path / "c.png")
    Image.fromarray(random_image(64, 64, seed=2)).save(tmp_path / "s.png")
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "plain_dir").mkdir()
    for name, shape in {"empty": (0, 10, 3), "two": (20, 30, 2), "amb": (3, 4, 3), "five": (20, 30, 5),
                        "fived": (2, 3, 1, 20, 30)}.items():
        zarr.create_array(str(tmp_path / f"{name}.zarr"), shape=shape, dtype="uint8", chunks=shape or (1,))
    zarr.create_array(str(tmp_path / "i64.zarr"), shape=(10, 10, 3), dtype="int64", chunks=(10, 10, 3))
    (tmp_path / "noweights").mkdir()
    (tmp_path / "exists.zarr").mkdir()
    (tmp_path / "exists.zarr" / "zarr.json").write_text("{}")
    return tmp_path


BAD = [
    # (argv after 'stylize', expected fragment of the one-line error)
    (["missing.png", "s.png"], "content='{d}/missing.png': no such file"),
    (["c.png", "missing_style.jpg"], "style='{d}/missing_style.jpg': no such file"),
    (["notes.png", "s.png"], "content='{d}/notes.png': not a readable image"),
    (["plain_dir", "s.png"], "is a directory but not a Zarr store"),
    (["empty.zarr", "s.png"], "empty image, shape (0, 10, 3)"),
    (["two.zarr", "s.png"], "2 channels, shape (20, 30, 2), axes YXC; supported: 1 (gray), 3 (RGB), 4 (RGBA)"),
    (["amb.zarr", "s.png"], "cannot tell the axes of shape (3, 4, 3); pass --axes"),
    (["five.zarr", "s.png", "--axes", "YXC"], "5 channels, shape (20, 30, 5), axes YXC"),
    (["fived.zarr", "s.png", "--axes", "TCZYX"], "dimension T has size 2"),
    (["c.png", "s.png", "--axes", "YXQ"], "axes='YXQ'"),
    (["i64.zarr", "s.png"], "dtype int64; supported: uint8, uint16, float32"),
    (["c.png", "s.png", "--margin", "500"], "margin=500: must be < stride/2 = 500"),
    (["c.png", "s.png", "--stride", "8"], "stride=8: must be >= 16"),
    (["c.png", "s.png", "--batch", "0"], "batch=0: must be in [1, 64]"),
    (["c.png", "s.png", "--alpha", "-0.5"], "alpha=-0.5: must be in [0.0, 1.0]"),
    (["c.png", "s.png", "--thumb-size", "4"], "thumb_size=4: must be >= 16"),
    (["c.png", "s.png", "--method", "nope"], "method='nope': must be one of"),
    (["c.png", "s.png", "--workers", "0"], "workers=0: must be an integer in [1, 1024]"),
    (["c.png", "s.png", "--in-process", "--scheduler", "tcp://127.0.0.1:1"],
     "processes=False (--in-process) with scheduler='tcp://127.0.0.1:1': in-process workers belong to the local"),
    (["c.png", "s.png", "--weights", "{d}/noweights"], "weights file missing: {d}/noweights/wct16x/e1.pth"),
    (["c.png", "s.png", "--weights", "{d}/nowhere"], "weights='{d}/nowhere': not a directory"),
    (["c.png", "s.png", "--paper", "--margin", "64"], "paper: --paper fixes the geometry (stride 1000, margin 32, crop); drop --margin"),
    (["c.png", "s.png", "--paper", "--blend", "linear", "--no-align"], "drop --blend, --no-align"),
    (["c.png", "s.png", "--stride", "16", "--margin", "7"], "stride=16: too small for margin=7 with a network whose size multiple is 16"),
]


@pytest.mark.usefixtures("no_early_start")
@pytest.mark.parametrize("argv, fragment", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input(files, weights, capsys, argv, fragment):
    out = files / "out.zarr"
    argv = [a.format(d=files) for a in argv]
    argv = [str(files / a) if i < 2 and not a.startswith("/") else a for i, a in enumerate(argv)]
    if "--weights" not in argv:
        argv += ["--weights", str(weights)]
    rc = main(["stylize", *argv, "-o", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and err.startswith("urst-dask: error: ")
    assert fragment.format(d=files) in err
    assert not out.exists()


@pytest.mark.parametrize("target, fragment", [("exists.zarr", "already exists and is not a urst-dask store"),
                                              # a PNG input: named -o, not the scratch folder beside it
                                              ("nodir/out.zarr", "error: output='{d}/nodir/out.zarr': folder "
                                                                 "'{d}/nodir' does not exist")])
@pytest.mark.usefixtures("no_early_start")
def test_bad_output(files, weights, capsys, target, fragment):
    rc = main(["stylize", str(files / "c.png"), str(files / "s.png"), "-o", str(files / target),
               "--weights", str(weights), "--no-progress"])
    assert rc == 2 and fragment.format(d=files) in capsys.readouterr().err


@pytest.mark.parametrize("option, value, fragment", [("--norm", "batch", "invalid choice: 'batch'"),
                                                     ("--blend", "feather", "invalid choice: 'feather'"),
                                                     ("--margin", "wide", "margin='wide': expected a number of pixels or 'auto'")])
def test_bad_choice_is_argparse_exit_2(files, capsys, option, value, fragment):
    with pytest.raises(SystemExit) as exc:
        main(["stylize", "c.png", "s.png", "-o", "x.zarr", option, value])
    assert exc.value.code == 2
    assert fragment in capsys.readouterr().err


@pytest.mark.parametrize("argv, grid", [
    ([], {"stride": 1000, "margin": 32, "multiple": 1, "blend": "crop", "align": True}),  # auto: passthrough (not measured): 32
    (["--paper"], {"stride": 1000, "margin": 32, "multiple": 1, "blend": "crop", "align": True}),
    (["--stride", "40", "--margin", "auto", "--blend", "gaussian"],
     {"stride": 40, "margin": 19, "multiple": 1, "blend": "gaussian", "align": True}),  # auto stays < stride/2
    (["--stride", "40", "--margin", "8", "--no-align"], {"stride": 40, "margin": 8, "multiple": 1, "blend": "crop",
                                                         "align": False}),
])
def test_tiling_options_reach_the_store(files, capsys, argv, grid):
    """The CLI's tiling options, as resolved against the network, are recorded in the store."""
    out = files / "grid.zarr"
    rc = main(["stylize", str(files / "c.png"), str(files / "s.png"), "-o", str(out), "--method", "passthrough",
               "--weights", str(files), "--no-progress", "--in-process", *argv])
    assert rc == 0, capsys.readouterr().err
    assert store.read_attrs(out)["tile_grid"] == grid


def test_style_may_be_given_as_an_option(files, capsys):
    """``--style X`` (as ``train`` takes it) is the style, where argparse read it as an
    abbreviation of ``--style-size`` and said "invalid int value"."""
    out = files / "opt.zarr"
    rc = main(["stylize", str(files / "c.png"), "--style", str(files / "s.png"), "-o", str(out), "--method",
               "passthrough", "--weights", str(files), "--no-progress", "--in-process"])
    assert rc == 0, capsys.readouterr().err
    assert store.read_attrs(out)["status"] == "complete"


@pytest.mark.parametrize("order", ["after -o", "after --method"])
def test_a_style_typed_after_an_option_is_the_style(files, capsys, order):
    """``stylize c.png -o out.zarr s.png`` worked before the style could also be ``--style``; the
    optional positional left it over ("unrecognized arguments")."""
    out = files / "late.zarr"
    opts = ["--weights", str(files), "--no-progress", "--in-process"]
    argv = (["stylize", str(files / "c.png"), "-o", str(out), str(files / "s.png"), "--method", "passthrough", *opts]
            if order == "after -o" else
            ["stylize", str(files / "c.png"), "--method", "passthrough", str(files / "s.png"), "-o", str(out), *opts])
    assert main(argv) == 0, capsys.readouterr().err
    assert store.read_attrs(out)["style"]["path"] == str(files / "s.png")


@pytest.mark.parametrize("command", ["stylize", "video"])
@pytest.mark.parametrize("styles, fragment", [
    ([], "style: missing; give the style image (or style name) after the content, or as --style"),
    (["s.png", "--style", "t.png"], "style: given twice, 's.png' and --style 't.png'; give one"),
])
@pytest.mark.usefixtures("no_early_start")
def test_style_given_twice_or_not_at_all(files, capsys, command, styles, fragment):
    out = files / ("x.zarr" if command == "stylize" else "frames")
    rc = main([command, str(files / "c.png"), *styles, "-o", str(out), "--method", "passthrough", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err == f"urst-dask: error: {fragment}"
    assert not out.exists()


def test_stylize_and_export_with_real_weights(files, weights, capsys):
    """A real run in a fresh local cluster (worker process), then PNG and TIFF exports."""
    out = files / "real.zarr"
    rc = main(["stylize", str(files / "c.png"), str(files / "s.png"), "-o", str(out), "--weights", str(weights),
               "--style-size", "64", "--stride", "48", "--margin", "8", "--export", str(files / "real.png")])
    assert rc == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    # 60 x 80 at stride 48: the 12-px tail is narrower than the reach (margin 8 + 16 - 1), so 1 x 2 windows
    assert "thumbnail stage" in captured.err and "tile stage: 2 of 2 windows" in captured.err
    png = np.asarray(Image.open(files / "real.png"))
    assert png.shape == (60, 80, 3) and png.std() > 1.0
    np.testing.assert_array_equal(png, store.open_output(out).compute())
    assert main(["export", str(out), str(files / "real.tif")]) == 0
    assert main(["export", str(out), str(files / "real.bmp")]) == 2


def test_quiet_leaves_only_the_wrote_line(files, capsys):
    """-q: no status lines, no progress bars; the final 'wrote ...' line stays on stdout."""
    out = files / "quiet.zarr"
    rc = main(["stylize", str(files / "c.png"), str(files / "s.png"), "-o", str(out), "--method", "passthrough",
               "--weights", str(files), "--stride", "48", "--margin", "8", "--workers", "1", "-q"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "[urst-dask]" not in captured.err and "tile stage" not in captured.err, captured.err
    assert captured.out.strip() == f"wrote {out}"
    rc = main(["stylize", str(files / "c.png"), str(files / "s.png"), "-o", str(out), "--method", "passthrough",
               "--weights", str(files), "--stride", "48", "--margin", "8", "--workers", "1"])
    captured = capsys.readouterr()
    assert rc == 0 and "already complete" in captured.err, captured.err  # the control: status lines without -q


def test_in_process_runs_the_workers_as_threads_of_this_process(files, capsys):
    """--in-process: the local cluster's workers are threads here, so a memory:// output (which
    lives in this process) is accepted; without the flag the same command is refused."""
    import fsspec

    from urst_dask.io.store import open_output

    out = "memory://cli-in-process/out.zarr"
    argv = ["stylize", str(files / "c.png"), str(files / "s.png"), "-o", out, "--method", "passthrough",
            "--weights", str(files), "--stride", "48", "--margin", "8", "--no-progress"]
    try:
        assert main(argv) == 2
        assert "memory:// stores live in this process, but the workers are separate processes" in capsys.readouterr().err
        rc = main([*argv, "--in-process"])
        assert rc == 0, capsys.readouterr().err
        np.testing.assert_array_equal(open_output(out).compute(), np.asarray(Image.open(files / "c.png")))
    finally:
        fs = fsspec.filesystem("memory")
        if fs.exists("/cli-in-process"):
            fs.rm("/cli-in-process", recursive=True)


@pytest.mark.parametrize("how", ["same", "hard link"])
def test_export_over_the_content_image_is_refused_and_the_input_kept(files, capsys, how):
    """--export naming the content image, with --overwrite: the export is refused (it would
    destroy the input), and so is a later ``export`` of the store onto it."""
    from urst_dask.io.targets import check_export_target

    content = files / "c.png"
    target = content if how == "same" else files / "link.png"
    if how == "hard link":
        target.hardlink_to(content)
    before = content.read_bytes()
    out = files / "x.zarr"
    run = ["stylize", str(content), str(files / "s.png"), "-o", str(out), "--method", "passthrough",
           "--weights", str(files), "--stride", "48", "--margin", "8", "--no-progress", "--in-process"]
    rc = main([*run, "--export", str(target), "--overwrite"])
    err = capsys.readouterr().err
    assert rc == 2 and f"output='{target}': is the content image '{content}'" in err, err
    assert "choose an output path outside the input" in err
    assert content.read_bytes() == before and not out.exists()  # refused before any work
    assert main(run) == 0
    assert main(["export", str(out), str(target), "--overwrite"]) == 2
    assert "is the content image" in capsys.readouterr().err
    assert content.read_bytes() == before
    with pytest.raises(OutputError, match=f"output='{target}': is the content image"):
        check_export_target(target, overwrite=True, content=content)
    assert check_export_target(files / "other.png", overwrite=True, content=content) == files / "other.png"


def test_an_export_that_cannot_hold_the_output_is_refused_before_the_run(files, capsys, monkeypatch):
    """stylize --export x.jpg of an RGBA image: refused from the content's header before the run
    (it was refused after the run, the store complete), and before the cluster starts."""
    from urst_dask.cli import images as cli_images

    rgba = files / "rgba.png"
    Image.fromarray(np.dstack([random_image(60, 80, seed=4), np.full((60, 80), 200, np.uint8)])).save(rgba)
    started = []
    monkeypatch.setattr(cli_images, "cluster_starting", lambda *a, **k: started.append(a))
    out = files / "x.zarr"
    rc = main(["stylize", str(rgba), str(files / "s.png"), "-o", str(out), "--method", "passthrough",
               "--weights", str(files), "--export", str(files / "x.jpg"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and f"export='{files / 'x.jpg'}': JPEG has no alpha channel; export a .png or .tif" in err, err
    assert not out.exists() and not (files / "x.jpg").exists() and started == []


def test_demo_keeps_a_users_png_beside_its_output(tmp_path, capsys):
    """demo -o mine.zarr replaced the user's mine.png with its preview, without --overwrite;
    and demo --export naming the preview ran and then failed. Both are refused before the run;
    a rerun over demo's own store replaces its own preview."""
    mine = tmp_path / "mine.png"
    Image.fromarray(random_image(30, 20, seed=3)).save(mine)
    before = mine.read_bytes()
    run = ["demo", "--size", "96x64", "--method", "passthrough", "--stride", "32", "--margin", "0", "--in-process",
           "--no-progress"]
    assert main([*run, "-o", str(tmp_path / "mine.zarr")]) == 2
    assert f"output='{mine}': already exists (demo writes its preview beside -o" in capsys.readouterr().err
    assert mine.read_bytes() == before and not (tmp_path / "mine.zarr").exists()
    assert main([*run, "-o", str(tmp_path / "d.zarr"), "--export", str(tmp_path / "d.png")]) == 2
    assert "demo writes its preview there already" in capsys.readouterr().err
    assert not (tmp_path / "d.zarr").exists()
    assert main([*run, "-o", str(tmp_path / "d.zarr")]) == 0
    assert main([*run, "-o", str(tmp_path / "d.zarr")]) == 0, capsys.readouterr().err  # its own preview, again
    assert main([*run, "-o", str(tmp_path / "mine.zarr"), "--overwrite"]) == 0
    assert mine.read_bytes() != before
    assert main([*run, "-o", str(tmp_path / "e.zarr") + "/"]) == 0  # a shell's completion: its preview is e.png
    assert (tmp_path / "e.png").is_file()


def test_demo_writes_a_store_at_a_url_and_its_preview_here(tmp_path, capsys, monkeypatch):
    """demo -o s3://..., file://... or memory://... was refused before the run ("folder 's3:/results'
    does not exist": the preview's name was made from the URL as a path)."""
    import uuid

    monkeypatch.chdir(tmp_path)
    run = ["demo", "--size", "96x64", "--method", "passthrough", "--stride", "32", "--margin", "0", "--in-process",
           "--no-progress"]
    url = f"memory://demo-{uuid.uuid4().hex}/m.zarr"
    assert main([*run, "-o", url]) == 0, capsys.readouterr().err
    assert f"wrote {url} (96x64) and m.png" in capsys.readouterr().out
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "m.png")), store.open_output(url).compute())
    assert main([*run, "-o", f"memory://demo-{uuid.uuid4().hex}/m.zarr"]) == 2  # another store: m.png is not its own
    assert "output='m.png': already exists (demo writes its preview in the current folder for -o" \
        in capsys.readouterr().err
    assert main([*run, "-o", f"file://{tmp_path / 'sub' / 'f.zarr'}"]) == 2  # a local path: its folder must exist
    (tmp_path / "sub").mkdir()
    assert main([*run, "-o", f"file://{tmp_path / 'sub' / 'f.zarr'}"]) == 0, capsys.readouterr().err
    assert (tmp_path / "sub" / "f.png").is_file() and (tmp_path / "sub" / "f.zarr" / "zarr.json").is_file()


def test_demo_exports_where_asked(tmp_path, capsys):
    """demo takes the run options, --export included: the export is written (it was ignored)."""
    import tifffile

    out, tif = tmp_path / "d.zarr", tmp_path / "d.tif"
    assert main(["demo", "--size", "96x64", "--method", "passthrough", "-o", str(out), "--stride", "32",
                 "--margin", "0", "--in-process", "--no-progress", "--export", str(tif)]) == 0, capsys.readouterr().err
    assert f"wrote {tif}" in capsys.readouterr().out
    np.testing.assert_array_equal(tifffile.imread(tif), store.open_output(out).compute())


@pytest.mark.parametrize(("extra", "message"), [
    (["--export", ""], "export='': an empty path"),  # was ignored, exit 0
    (["--export", "adir"], "export='adir': is a directory"),  # was "output='adir': unknown format ''"
    (["--export", "x.bmp"], "export='x.bmp': unknown format '.bmp'"),
    (["--precision", "float16"], "precision='float16': float16 runs on CUDA devices only"),  # after the store was made
])
def test_run_options_refused_before_anything_is_written(files, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(files)
    (files / "adir").mkdir()
    out = files / "y.zarr"
    rc = main(["stylize", str(files / "c.png"), str(files / "s.png"), "-o", str(out), "--method", "passthrough",
               "--weights", str(files), "--no-progress", "--in-process", *extra])
    err = capsys.readouterr().err
    assert rc == 2 and message in err, err
    assert not out.exists()


def test_demo_refuses_a_baked_style_method_in_one_line(tmp_path, capsys):
    assert main(["demo", "--method", "johnson", "-o", str(tmp_path / "d.zarr"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "method='johnson': bakes its style into its weights, and demo makes a style image" in err
    assert len(err) < 400 and not (tmp_path / "d.zarr").exists()


def test_ctrl_c_while_parsing_is_one_line(capsys, monkeypatch):
    import urst_dask.cli as cli

    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_parse", interrupted)
    assert main(["methods"]) == 130
    assert capsys.readouterr().err == "urst-dask: interrupted\n"


def test_an_output_named_like_a_picture_is_refused(files, capsys):
    """-o out.png made a directory called out.png (a Zarr store), silently."""
    out = files / "out.png"
    rc = main(["stylize", str(files / "c.png"), str(files / "s.png"), "-o", str(out), "--method", "passthrough",
               "--weights", str(files), "--no-progress", "--in-process"])
    assert rc == 2 and f"output='{out}': named like a picture (.png), but this run writes a Zarr store" in \
        capsys.readouterr().err
    assert not out.exists()


def test_a_video_output_named_like_a_picture_is_refused(tmp_path, capsys):
    """video -o out.gif wrote a folder of frames called out.gif, silently."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in range(2):
        Image.fromarray(random_image(40, 56, seed=20 + t)).save(folder / f"f{t:03d}.png")
    Image.fromarray(random_image(64, 64, seed=9)).save(tmp_path / "s.png")
    out = tmp_path / "out.gif"
    rc = main(["video", str(folder), str(tmp_path / "s.png"), "-o", str(out), "--method", "passthrough",
               "--weights", str(tmp_path), "--stride", "32", "--no-progress"])
    assert rc == 2 and f"output='{out}': named like a picture (.gif), but this run writes a folder of frames" in \
        capsys.readouterr().err
    assert not out.exists()


def test_ctrl_c_during_stylize_export_says_the_store_is_complete(files, capsys, monkeypatch):
    """The last line said 'any output store is left marked incomplete' of a complete store."""
    import urst_dask.api as api
    from urst_dask.io import store

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "export", interrupted)
    rc = main(["stylize", str(files / "c.png"), str(files / "s.png"), "-o", str(files / "o.zarr"), "--method",
               "passthrough", "--stride", "32", "--margin", "4", "--export", str(files / "o.png"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 130
    assert err[-1] == ("urst-dask: interrupted; the output store is complete, the export was not written (no file, "
                       "or the one that was there, under its name)"), err
    assert store.read_attrs(files / "o.zarr")["status"] == "complete" and not (files / "o.png").exists()
