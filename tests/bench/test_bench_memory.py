"""`urst-dask bench memory`: the out-of-memory guard, the tables and plot, a tiny real sweep, bad arguments."""

from __future__ import annotations

import csv
import io
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from urst_dask.bench import SweepConfig, fit, guard, memory_sweep, report
from urst_dask.cli import main
from urst_dask.errors import OutputError, ParameterError

GB_MIB = 1e9 / 2**20  # MiB in one GB (10^9 bytes)


# ------------------------------------------------------------------------- the predictor


def test_fit_recovers_a_line_in_pixels():
    line = [(p, 300.0 + 2e-5 * p) for p in (1e6, 4e6, 9e6, 16e6)]
    f = fit(line)
    assert f.points == 4
    assert f.intercept_mb == pytest.approx(300.0)
    assert f.slope_mb_per_px == pytest.approx(2e-5)
    assert f(100e6) == pytest.approx(300.0 + 2e-5 * 100e6)


def test_fit_from_one_point_is_proportional_and_over_estimates():
    f = fit([(1e6, 800.0)])
    assert (f.intercept_mb, f.slope_mb_per_px) == (0.0, 800.0 / 1e6)
    true = fit([(1e6, 800.0), (4e6, 800.0 + 3 * 500.0)])  # intercept 300 MiB, 500 MiB per MP
    assert f(9e6) > true(9e6)  # the one-point guess errs towards skipping


def test_fit_never_shrinks_with_size():
    f = fit([(1e6, 900.0), (4e6, 850.0)])  # noise: the larger run measured less
    assert f.slope_mb_per_px > 0
    assert f(16e6) >= 850.0


def test_fit_without_points_and_bad_points():
    assert fit([]) is None
    with pytest.raises(ParameterError, match="points="):
        fit([(0, 100.0)])


@settings(max_examples=50, deadline=None)
@given(a=st.floats(0, 5000), b=st.floats(1e-7, 1e-3),
       sides=st.lists(st.integers(100, 20000), min_size=2, max_size=6, unique=True))
def test_fit_is_exact_on_collinear_measurements(a, b, sides):
    f = fit([(s * s, a + b * s * s) for s in sides])
    for side in (500, 30000):
        assert f(side * side) == pytest.approx(a + b * side * side, rel=1e-6, abs=1e-6)


def test_guard_skips_what_would_not_fit_and_says_so():
    pts = [(1000**2, 1000.0), (2000**2, 2500.0)]  # 500 MiB + 500 MiB per MP
    ok = guard(pts, 3000**2, available_mb=10000.0, safety=0.8)  # predicted 5000 <= 8000
    assert ok.run and ok.status == "ok" and ok.predicted_mb == pytest.approx(5000.0)
    no = guard(pts, 4000**2, available_mb=10000.0, safety=0.8)  # predicted 8500 > 8000
    assert not no.run
    assert no.predicted_mb == pytest.approx(8500.0) and no.usable_mb == pytest.approx(8000.0)
    assert no.status == f"out of memory (predicted {8500 / GB_MIB:.1f} GB > available {8000 / GB_MIB:.1f} GB)"
    assert guard(pts, 4000**2, available_mb=10000.0, safety=1.0).run  # 8500 <= 10000
    first = guard([], 10000**2, available_mb=100.0)
    assert first.run and first.predicted_mb is None  # nothing to predict from: the watchdog guards it
    with pytest.raises(ParameterError, match="safety="):
        guard(pts, 1, 1000.0, safety=0)


# ------------------------------------------------------------------------- the sweep's skip decision


def _journal_row(method, mode, side, mib, wall=1.0):
    return {"method": method, "weights": "none", "mode": mode, "side": side, "megapixels": side * side / 1e6,
            "device": "cpu", "status": "ok", "peak_rss_mib": mib, "rss_start_mib": 280.0, "sampled_tree_peak_mib": mib,
            "cuda_allocated_mib": None, "cuda_reserved_mib": None, "wall_s": wall, "mp_per_s": side * side / 1e6 / wall}


def test_sweep_skips_a_whole_run_predicted_out_of_memory_without_starting_it(tmp_path, monkeypatch):
    import psutil

    from urst_dask.bench import memory

    # measured (in the journal): 1 GiB + 1 GiB per 64^2 image; the machine has 10 GiB free
    rows = [_journal_row("passthrough", "whole", 64, 2048.0), _journal_row("passthrough", "whole", 128, 5120.0)]
    (tmp_path / "memory-runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setattr(memory, "available_mb", lambda: 10240.0)
    monkeypatch.setattr(memory, "run_probe", lambda *a, **k: pytest.fail("a skipped run was started"))
    out = memory_sweep(out=tmp_path, methods=["passthrough"], sizes=[64, 128, 256, 512], modes=["whole"], log=None)
    by_side = {r["side"]: r for r in out}
    assert [by_side[s]["status"] for s in (64, 128)] == ["ok", "ok"]
    pred = 2048.0 + 3072.0 * (256 * 256 - 64 * 64) / (128 * 128 - 64 * 64)  # the line through the two points
    assert by_side[256]["predicted_mib"] == pytest.approx(pred)
    assert by_side[256]["status"] == f"out of memory (predicted {pred / GB_MIB:.1f} GB > available {0.8 * 10240 / GB_MIB:.1f} GB)"
    assert by_side[512]["status"].startswith("out of memory (as at 256^2")
    table = (tmp_path / "memory.md").read_text()
    assert "| 256^2 | - |" in table and "| 512^2 | - |" in table
    assert psutil.virtual_memory().available > 0


def test_time_budget_leaves_runs_not_run(tmp_path, monkeypatch):
    from urst_dask.bench import memory

    (tmp_path / "memory-runs.jsonl").write_text(json.dumps(_journal_row("passthrough", "tiled", 64, 400.0, wall=600.0)) + "\n")
    monkeypatch.setattr(memory, "run_probe", lambda *a, **k: pytest.fail("a run past the budget was started"))
    out = memory_sweep(out=tmp_path, methods=["passthrough"], sizes=[64, 128], modes=["tiled"], budget_s=60.0, log=None)
    assert out[1]["status"].startswith("not run (time budget: predicted 40.0 min > ")
    assert "| 128^2 | n/r |" in (tmp_path / "memory.md").read_text()


# ------------------------------------------------------------------------- tables and plot


def _rows():
    rows = []
    for side, whole, tiled in ((1000, 1500.0, 900.0), (2000, 4000.0, 910.0)):
        rows += [_journal_row("wct16x", "whole", side, whole), _journal_row("wct16x", "tiled", side, tiled)]
    rows.append({**_journal_row("wct16x", "whole", 3000, 0.0), "status": "out of memory (predicted 9.9 GB > available 8.0 GB)",
                 "predicted_mib": 9440.0, "usable_mib": 7630.0})
    rows.append(_journal_row("wct16x", "tiled", 3000, 915.0))
    return rows


def test_csv_markdown_and_ratio():
    rows = report.ordered(_rows())
    parsed = list(csv.DictReader(io.StringIO(report.to_csv(rows))))
    assert [(r["mode"], r["side"]) for r in parsed] == [("whole", "1000"), ("tiled", "1000"), ("whole", "2000"),
                                                         ("tiled", "2000"), ("whole", "3000"), ("tiled", "3000")]
    assert float(parsed[0]["memory_gb"]) == pytest.approx(1500.0 / GB_MIB, abs=1e-3)
    assert parsed[4]["memory_gb"] == "" and parsed[4]["status"].startswith("out of memory")
    md = report.to_markdown(rows, {"cpu": "x", "cores": 2, "memory_gb": 25})
    assert "| resolution | wct16x whole | wct16x tiled |" in md
    assert f"| 3000^2 | - | {915 / GB_MIB:.2f} |" in md
    pred = (1500.0 + 2500.0 * (9e6 - 1e6) / 3e6) / GB_MIB  # the line through the 1000^2 and 2000^2 whole runs
    assert f"- wct16x (fit of 2 whole-image runs): 3000^2: {pred:.2f} (over the usable memory: skipped)" in md
    r = report.ratios(rows)["wct16x"]
    assert r["side"] == 2000 and r["ratio"] == pytest.approx(4000.0 / 910.0, abs=0.01)


def test_png_decodes_with_the_asked_size(tmp_path):
    from urst_dask.bench.plot import plot_memory

    path = plot_memory(_rows(), tmp_path / "m.png", size=(6.0, 4.0))
    with Image.open(path) as im:
        assert im.size == (660, 440)  # 6 x 4 inches at 110 dpi
        assert np.asarray(im.convert("L")).std() > 5  # not blank


def test_plot_without_matplotlib_names_the_extra(tmp_path, monkeypatch):
    from urst_dask.bench.plot import PlotUnavailable, plot_memory

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(PlotUnavailable, match=r"urst-dask\[plot\]"):
        plot_memory(_rows(), tmp_path / "m.png")


# ------------------------------------------------------------------------- random weights


def test_random_weights_load_through_the_registry(tmp_path):
    import torch

    from urst_dask.bench.random_weights import write_random

    write_random("msgnet", tmp_path)
    sd = torch.load(tmp_path / "msgnet" / "21styles.model", weights_only=True)
    assert "model1.1.running_mean" in sd and "model1.1.weight" not in sd  # the 21styles.model layout
    with pytest.raises(Exception, match="no random stand-in"):
        write_random("johnson", tmp_path)


# ------------------------------------------------------------------------- a tiny real sweep


def _check_outputs(out: Path, name: str, expect: set[tuple[str, str, int]]) -> list[dict]:
    with open(out / f"{name}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["method"], r["mode"], int(r["side"])) for r in rows} == expect
    for r in rows:
        assert r["status"] == "ok", r
        assert 100 < float(r["peak_rss_mib"]) < 8000 and float(r["wall_s"]) > 0 and float(r["mp_per_s"]) > 0
        assert float(r["peak_rss_mib"]) >= float(r["rss_start_mib"])
    md = (out / f"{name}.md").read_text()
    starts = [line.split(" | ")[0] for line in md.splitlines()]
    assert starts.count("| 64^2") == 2 and starts.count("| 128^2") == 2  # rows of the memory and throughput tables
    with Image.open(out / f"{name}.png") as im:
        assert im.size == (990, 660)  # the default 9 x 6 inches at 110 dpi
        im.load()
    doc = json.loads((out / f"{name}.json").read_text())
    assert doc["machine"]["cores"] >= 1 and len(doc["rows"]) == len(expect)
    return rows


@pytest.mark.slow  # two probe processes: ~15 s on a quiet machine, over a minute on a loaded one
def test_tiny_sweep_passthrough_writes_csv_markdown_png(tmp_path, capsys):
    rc = main(["bench", "memory", "--methods", "passthrough", "--sizes", "64", "128", "--modes", "tiled",
               "--out", str(tmp_path / "o"), "--scratch", str(tmp_path / "s")])
    assert rc == 0
    cap = capsys.readouterr()
    assert "[1/2] passthrough tiled 64x64:" in cap.err and "[2/2] passthrough tiled 128x128:" in cap.err
    assert cap.out.startswith("wrote ") and "memory.csv" in cap.out and "memory.png" in cap.out
    _check_outputs(tmp_path / "o", "memory", {("passthrough", "tiled", 64), ("passthrough", "tiled", 128)})


@pytest.mark.slow
def test_tiny_sweep_with_a_real_network(tmp_path, weights):
    rows = memory_sweep(out=tmp_path / "o", methods=["passthrough", "microast"], sizes=[64, 128],
                        modes=["tiled", "whole"], scratch=tmp_path / "s", weights=weights, log=None)
    assert len(rows) == 8
    csv_rows = _check_outputs(tmp_path / "o", "memory", {(m, mode, s) for m in ("passthrough", "microast")
                                                          for mode in ("tiled", "whole") for s in (64, 128)})
    net = {float(r["peak_rss_mib"]) for r in csv_rows if r["method"] == "microast"}
    io_only = {float(r["peak_rss_mib"]) for r in csv_rows if r["method"] == "passthrough"}
    assert min(net) > max(io_only)  # the network's weights and activations show


# ------------------------------------------------------------------------- bad arguments


def _file(tmp_path: Path) -> Path:
    f = tmp_path / "a-file"
    f.write_text("x")
    return f


@pytest.mark.parametrize("argv, fragment", [
    (["--methods", "nosuch"], "methods=['nosuch']: unknown method 'nosuch'; valid: wct16x, johnson"),
    (["--sizes", "0"], "sizes=[0]: each size must be an integer number of pixels >= 1"),
    (["--sizes", "1000", "-5"], "sizes=[1000, -5]: each size"),
    (["--out", "{file}/sub"], "out='{file}/sub': cannot write there"),
    (["--image", "{tmp}/missing.png"], "image='{tmp}/missing.png': no such file"),
    (["--device", "tpu"], "device='tpu': must be one of auto, cpu, cuda"),
    (["--safety", "1.5"], "safety=1.5: must be in (0, 1]"),
    (["--budget", "-1"], "budget=-1.0: must be a number of minutes > 0"),
    (["--timeout", "nan"], "timeout=nan: must be a number of seconds > 0"),  # the option's name, not the API's
    (["--timeout", "0"], "timeout=0.0: must be a number of seconds > 0"),
])
def test_bad_arguments_are_one_line(tmp_path, capsys, argv, fragment):
    f = _file(tmp_path)
    argv = [a.format(file=f, tmp=tmp_path) for a in argv]
    # the options given last win over these defaults
    rc = main(["bench", "memory", "--methods", "passthrough", "--sizes", "64", "-o", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("urst-dask: error: ")
    assert fragment.format(file=f, tmp=tmp_path) in err


def test_bad_arguments_in_the_api(tmp_path):
    with pytest.raises(ParameterError, match=r"unknown method 'x'; valid: .*passthrough"):
        SweepConfig(out=tmp_path, methods=["x"])
    with pytest.raises(ParameterError, match="modes='sideways': must be one of tiled, whole"):
        SweepConfig(out=tmp_path, modes=["sideways"])
    with pytest.raises(OutputError, match="cannot write there"):
        SweepConfig(out=_file(tmp_path) / "o")
    with pytest.raises(ParameterError, match="timeout_s=0: must be a number of seconds > 0"):
        SweepConfig(out=tmp_path, timeout_s=0)
    cfg = SweepConfig(out=tmp_path, sizes=[2000, 1000, 2000])
    assert cfg.sizes == (1000, 2000) and "passthrough" not in cfg.methods
    assert {"wct16x", "johnson", "microast", "wct", "adain", "linearwct", "msgnet"} <= set(cfg.methods)


def test_a_sweep_with_failed_runs_exits_with_an_error(tmp_path, capsys, monkeypatch):
    """Tables are written for what was measured, but a run that failed (not an out-of-memory or
    time-budget verdict) makes the command fail: a script driving the sweep must see it."""
    from urst_dask.bench import memory

    monkeypatch.setattr(memory, "run_probe", lambda *a, **k: types.SimpleNamespace(
        killed=False, data={"ok": False, "error": "RuntimeError: boom"}, sampled_peak_mb=None))
    rc = main(["bench", "memory", "--methods", "passthrough", "--sizes", "64", "--modes", "tiled",
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "bench memory: 1 of 1 runs failed (first: failed: RuntimeError: boom)" in err, err
    assert (tmp_path / "o" / "memory.md").exists()


# ------------------------------------------------------------------------- seam score against margin


def test_seam_curves_from_a_seam_sweep(tmp_path):
    from urst_dask.bench.seams import plot_seams, seam_series

    rows = [{"config": "whole", "seam": 0.98},
            {"config": "unaligned m32 crop", "margin": 32, "blend": "crop", "align": False, "seam": 1.7}]
    rows += [{"config": f"m{m} {b}", "margin": m, "blend": b, "align": True, "seam": s}
             for m, b, s in ((64, "crop", 1.01), (32, "crop", 1.33), (32, "linear", 0.86), (64, "linear", 1.0))]
    doc = {"benchmark": "seams-x", "image": "x.jpg", "stride": 1000, "methods": {"wct16x": {"rows": rows}}}
    (tmp_path / "seams-x.json").write_text(json.dumps(doc))
    series = seam_series(doc)["wct16x"]
    assert series["whole"] == 0.98
    assert series["curves"] == {"crop": [(32, 1.33), (64, 1.01)], "linear": [(32, 0.86), (64, 1.0)]}  # sorted, unaligned left out
    with Image.open(plot_seams(tmp_path / "seams-x.json", tmp_path / "s.png", size=(5.0, 4.0))) as im:
        assert im.size == (550, 440)
    with pytest.raises(Exception, match="no aligned"):
        (tmp_path / "empty.json").write_text(json.dumps({"methods": {"a": {"rows": rows[:2]}}}))
        plot_seams(tmp_path / "empty.json", tmp_path / "e.png")


def test_report_only_rebuilds_the_tables_from_the_journal(tmp_path, capsys):
    rows = _rows()
    (tmp_path / "m-runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["bench", "memory", "--report-only", "--out", str(tmp_path), "--name", "m"]) == 0
    assert capsys.readouterr().out.startswith("wrote ")
    with open(tmp_path / "m.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == len(rows)
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["summary"]["wct16x"]["side"] == 2000 and doc["config"]["rebuilt_from"].endswith("m-runs.jsonl")
    assert main(["bench", "memory", "--report-only", "--out", str(tmp_path), "--name", "nothing"]) == 2
    assert "no journal nothing-runs.jsonl" in capsys.readouterr().err


def test_a_rerun_with_other_settings_measures_again_and_no_resume_keeps_other_methods(tmp_path, monkeypatch):
    """Rows were matched on method, mode and size only: a rerun with --image or --device took the
    old figures as its own; and --no-resume of one method deleted every other method's rows."""
    from urst_dask.bench import memory

    other = {**_journal_row("johnson", "tiled", 64, 500.0), "settings": {"image": None, "style": "demo",
                                                                      "device": "auto"}}
    mine = {**_journal_row("passthrough", "tiled", 64, 300.0), "settings": {"image": None, "style": "demo",
                                                                         "device": "auto"}}
    journal = tmp_path / "memory-runs.jsonl"
    journal.write_text(json.dumps(other) + "\n" + json.dumps(mine) + "\n" + '{"method": "passth')  # a torn last line
    started: list[str] = []

    def probe(spec, *a, **k):
        started.append(spec["method"])
        raise RuntimeError("measured")  # enough to see that a run was started

    monkeypatch.setattr(memory, "run_probe", probe)
    logged: list[str] = []
    memory_sweep(out=tmp_path, methods=["passthrough"], sizes=[64], modes=["tiled"], log=logged.append)
    assert started == [] and any("line 3 is not a whole run record; skipped" in s for s in logged)
    with pytest.raises(RuntimeError, match="measured"):  # another device: not the journal's figures
        memory_sweep(out=tmp_path, methods=["passthrough"], sizes=[64], modes=["tiled"], device="cpu", log=None)
    with pytest.raises(RuntimeError, match="measured"):
        memory_sweep(out=tmp_path, methods=["passthrough"], sizes=[64], modes=["tiled"], resume=False, log=None)
    kept = [json.loads(line)["method"] for line in journal.read_text().splitlines() if line.strip()]
    assert kept == ["johnson"]  # the other sweep's row stays


def test_one_point_guess_charges_the_process_baseline_once():
    """A 100^2 run at 300 MiB, 280 of them the process itself: a 1000^2 run is predicted at
    280 + 100 x 20 MiB, not 100 x 300 MiB (33 GB for a run that used 0.4 GB)."""
    v = guard([(100 * 100, 300.0)], 1000 * 1000, available_mb=20000.0, baseline_mb=280.0)
    assert v.run and v.predicted_mb == pytest.approx(280.0 + 100 * 20.0)
    assert guard([(100 * 100, 300.0)], 1000 * 1000, available_mb=20000.0).predicted_mb == pytest.approx(30000.0)


def test_report_only_records_when_and_by_what_the_rows_were_measured(tmp_path):
    """It recorded the rebuilding machine's date and code as if the runs were measured then."""
    from urst_dask.bench import memory

    measured = {"date": "2026-01-01 10:00 UTC", "code": "git abc1234 (/src)", "cpu": "Some Xeon"}
    rows = [{**r, "measured": measured} for r in _rows()]
    (tmp_path / "m-runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    memory.memory_report(tmp_path, "m", log=None)
    doc = json.loads((tmp_path / "m.json").read_text())
    assert (doc["machine"]["date"], doc["machine"]["code"], doc["machine"]["cpu"]) == (
        "2026-01-01 10:00 UTC", "git abc1234 (/src)", "Some Xeon")
    assert "Some Xeon" in (tmp_path / "m.md").read_text() and "2026-01-01 10:00 UTC" in (tmp_path / "m.md").read_text()
    assert "rebuilt" in doc["config"]


def test_report_only_of_a_missing_folder_makes_nothing_and_a_failed_sweep_plots_quietly(tmp_path):
    import warnings

    from urst_dask.bench import memory
    from urst_dask.bench.plot import plot_memory
    from urst_dask.errors import OutputError

    with pytest.raises(OutputError, match="no journal memory-runs.jsonl there"):
        memory.memory_report(tmp_path / "absent", log=None)
    assert not (tmp_path / "absent").exists()  # it was created by the refusal
    failed = [{**_journal_row("passthrough", "whole", 64, 0.0), "status": "failed: boom"}]
    pytest.importorskip("matplotlib")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "No artists with labels found to put in legend"
        plot_memory(failed, tmp_path / "p.png", title="t")
    assert (tmp_path / "p.png").exists()
