"""The run configuration, the one progress bar, and the lazy ``stylize_array`` against the
store ``stylize`` writes."""

from __future__ import annotations

import io
import re

import dask.array as da
import numpy as np
import pytest

import urst_dask
from urst_dask.engine import timing
from urst_dask.errors import ParameterError, ParameterTypeError, UrstError
from urst_dask.io import store
from urst_dask.pipeline.config import RunConfig
from urst_dask.pipeline.progress import WindowBar, task_seconds
from urst_dask.settings import Intensity, StyleOptions
from urst_dask.testing import random_image
from urst_dask.tiling import Blend, TilePlan

# ------------------------------------------------------------------------ configuration


def test_flat_settings_are_routed_once_into_their_groups():
    cfg = RunConfig.from_kwargs(alpha=0.5, stride=500, blend="linear", batch=2, workers=3, overwrite=True,
                                method="johnson", intensity="percentile:0.5,99.5")
    assert (cfg.style.alpha, cfg.tiles.stride, cfg.tiles.blend, cfg.compute.batch) == (0.5, 500, Blend.LINEAR, 2)
    assert (cfg.cluster.workers, cfg.flags.overwrite, cfg.method) == (3, True, "johnson")
    assert cfg.style.intensity == Intensity("percentile", (0.5, 99.5))  # parsed once, when built
    assert str(cfg.style.intensity) == "percentile:0.5,99.5"  # the string form, for the provenance
    assert cfg.replace(alpha=0.25).style.alpha == 0.25 and cfg.replace(alpha=0.25).tiles.stride == 500
    assert RunConfig.from_kwargs(tiles=TilePlan.paper()).tiles == TilePlan.paper()


def test_an_unknown_setting_lists_the_valid_names():
    with pytest.raises(ParameterTypeError, match="unknown setting 'strides'; valid: .*alpha.*stride.*workers"):
        RunConfig.from_kwargs(strides=3)
    assert issubclass(ParameterTypeError, UrstError)


def test_the_configuration_is_frozen_and_validated():
    cfg = RunConfig()
    with pytest.raises(AttributeError):
        cfg.method = "adain"  # type: ignore[misc]
    with pytest.raises(ParameterError, match="intensity='percentile:9,1'"):
        RunConfig.from_kwargs(intensity="percentile:9,1")
    with pytest.raises(ParameterTypeError, match="style: expected StyleOptions"):
        RunConfig(style=TilePlan())  # type: ignore[arg-type]
    assert StyleOptions(intensity="dtype").intensity.percentiles is None


def test_cli_defaults_come_from_the_configuration():
    """Every generated option's default is the dataclass's (tiling options stay unset: --paper
    refuses them)."""
    import argparse

    from urst_dask.cli.options import add_run_options, run_config

    p = argparse.ArgumentParser()
    add_run_options(p)
    a = p.parse_args(["-o", "x.zarr"])
    cfg = run_config(a)
    default = RunConfig()
    assert (cfg.style, cfg.tiles, cfg.compute) == (default.style, default.tiles, default.compute)
    assert cfg.cluster.workers == default.cluster.workers and cfg.flags.progress is True
    a = p.parse_args(["-o", "x.zarr", "--patch-size", "64", "--padding", "8", "--scheduler-timeout", "3"])
    cfg = run_config(a)
    assert (cfg.tiles.stride, cfg.tiles.margin, cfg.cluster.connect_timeout) == (64, 8, 3.0)


# ------------------------------------------------------------------------------ progress


class _Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_one_bar_counts_windows_with_an_eta_and_ends_at_total():
    stream, clock = io.StringIO(), _Clock()
    bar = WindowBar(12, present=2, stream=stream, clock=clock)
    bar.draw()
    for _ in range(5):
        clock.t += 30.0
        bar.advance(2)
    bar.step("pyramid level 1/2")
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "2/12 windows (2 already present)" in lines[0]
    assert any("ETA" in line and "windows/min" in line for line in lines[1:-2]), lines
    assert "12/12 windows" in lines[-1] and "pyramid level 1/2" in lines[-1]
    assert "4 windows/min" in lines[-1]  # 10 windows in 150 s


def test_a_disabled_bar_writes_nothing():
    stream = io.StringIO()
    bar = WindowBar(3, stream=stream, enabled=False)
    bar.draw()
    bar.advance(3)
    bar.close()
    assert stream.getvalue() == ""


def test_a_run_draws_one_bar_over_every_strip(tmp_path, client, style_image, capsys):
    """The tile stage's progress line counts windows across strips, then the pyramid's levels."""
    image = random_image(300, 320, seed=4)
    urst_dask.stylize(image, style_image, tmp_path / "p.zarr", method="identity", weights=tmp_path, client=client,
                      stride=32, margin=4, progress=True)
    err = capsys.readouterr().err
    totals = re.findall(r"(\d+)/(\d+) windows", err)
    assert totals and totals[-1][0] == totals[-1][1] == "100", err  # 10 x 10 windows, in several strips
    assert "ETA" in err and "pyramid level" in err, err


def test_task_seconds_sums_compute_time_per_named_function():
    records = [
        {"key": "_prepare_style-0123abcd", "startstops": ({"action": "compute", "start": 10.0, "stop": 12.5},)},
        {"key": ("_block_partial-4567ef01", 0, 1), "startstops": ({"action": "transfer", "start": 0.0, "stop": 9.0},
                                                                  {"action": "compute", "start": 1.0, "stop": 1.5})},
        {"key": ("_block_partial-4567ef01", 0, 2), "startstops": ({"action": "compute", "start": 2.0, "stop": 2.25},)},
        {"key": "finalize-89ab", "startstops": ({"action": "compute", "start": 0.0, "stop": 100.0},)},
    ]
    got = task_seconds(records, {"prepare_style": "style", "block_partial": "reduction"})
    assert got == {"style": 2.5, "reduction": 0.75}  # transfers and unnamed functions left out


@pytest.mark.parametrize("local", [True, False])
def test_a_verbose_summary_splits_the_thumbnail_stage(tmp_path, client, style_image, monkeypatch, local):
    """The -v summary names the style encoding and the thumbnail statistics inside the
    conditioning stage, measured on the workers; both fit inside the stage's wall time.  The
    thumbnail of a small image is reduced in this process, before the cluster is used (its own
    line); a large one's on the cluster (task time inside the stage)."""
    from urst_dask.pipeline import conditioning

    if not local:
        monkeypatch.setattr(conditioning, "LOCAL_THUMB_BYTES", 0)
    timing.reset()
    urst_dask.stylize(random_image(120, 130, seed=6), style_image, tmp_path / "t.zarr", method="identity",
                      weights=tmp_path, client=client, stride=64, margin=8)
    stages = dict(timing.stages())
    style, stats = stages["  of which style encoding"], stages["  of which thumbnail statistics"]
    here, tasks = "thumbnail reduction (this process)", "  of which thumbnail reduction (task time)"
    assert (here in stages, tasks in stages) == (local, not local)
    assert stages[here if local else tasks] > 0
    assert 0 < style + stats <= stages["thumbnail and style encoding"]  # sequential: stats need the style
    assert "  of which style encoding" in timing.summary()


def test_the_thumbnail_reduced_here_gives_the_clusters_picture(tmp_path, client, weights, monkeypatch):
    """wct16x: the store of a run whose thumbnail was reduced in this process equals, byte for
    byte, one whose thumbnail the cluster reduced (statistics, style code and pixels)."""
    from urst_dask.pipeline import conditioning
    from urst_dask.synthetic import demo_style

    image, style = random_image(90, 110, seed=23), demo_style(96, seed=6)
    kw = dict(method="wct16x", weights=str(weights), style_size=64, thumb_size=48, stride=48, margin=8,
              client=client)
    here = urst_dask.stylize(image, style, tmp_path / "here.zarr", **kw)
    monkeypatch.setattr(conditioning, "LOCAL_THUMB_BYTES", 0)
    there = urst_dask.stylize(image, style, tmp_path / "there.zarr", **kw)
    pixels = store.open_output(here).compute()
    assert pixels.std() > 1.0
    np.testing.assert_array_equal(pixels, store.open_output(there).compute())
    a, b = store.read_stats(here), store.read_stats(there)
    assert a.token() == b.token()


# ------------------------------------------------------------------------ stylize_array


def test_stylize_array_is_lazy_and_equals_the_stored_array_identity(tmp_path, client, style_image):
    image = random_image(150, 170, seed=21)
    lazy = urst_dask.stylize_array(da.from_array(image, chunks=(64, 64, 3)), style_image, method="identity",
                                   weights=tmp_path, stride=64, margin=8)
    assert isinstance(lazy, da.Array) and lazy.shape == image.shape and lazy.dtype == image.dtype
    names = {str(k[0] if isinstance(k, tuple) else k).rsplit("-", 1)[0] for k in dict(lazy.__dask_graph__())}
    assert {"_prepare_style", "_collect_stats"} <= names  # the conditioning is in the graph, not computed at the call
    out = urst_dask.stylize(image, style_image, tmp_path / "o.zarr", method="identity", weights=tmp_path,
                            client=client, stride=64, margin=8)
    got = lazy.compute()
    np.testing.assert_array_equal(got, store.open_output(out).compute())


def test_stylize_array_equals_the_stored_array_wct16x(tmp_path, client, weights):
    from urst_dask.synthetic import demo_style

    image = random_image(60, 80, seed=22)
    style = demo_style(96, seed=5)
    config = RunConfig.from_kwargs(method="wct16x", weights=str(weights), style_size=64, stride=48, margin=8)
    lazy = urst_dask.stylize_array(image, style, config=config)
    out = urst_dask.stylize(image, style, tmp_path / "w.zarr", config=config, client=client)
    stored = store.open_output(out).compute()
    assert stored.std() > 1.0
    np.testing.assert_array_equal(lazy.compute(), stored)


def test_a_bar_of_many_rows_writes_a_line_per_percent_to_a_file():
    """An export counts rows: a log file gets a line when the percent or the note changes (a
    gigapixel's 25000 rows in bands of 256 made a line per band), and the rate reads per
    second when it is high."""
    stream, clock = io.StringIO(), _Clock()
    bar = WindowBar(25000, stream=stream, clock=clock, unit="rows")
    bar.step("out.tif, 8 levels")
    for _ in range(1000):
        clock.t += 0.01
        bar.advance(25)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert 95 <= len(lines) <= 102, len(lines)
    assert lines[-1].startswith("[########################] 25000/25000 rows") and "out.tif, 8 levels" in lines[-1]
    assert "2,500 rows/s" in lines[-1]  # 25000 rows in 10 s
