"""benchmarks/gpu_check.sh: its dry run on the CPU completes and records numbers; without CUDA it skips with one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
SKIP_LINE = "gpu_check: skipped - no CUDA device visible to torch on this machine (nothing measured)"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHON=sys.executable, URST_BENCH_RESULTS=str(tmp_path / "results"),
               URST_BENCH_SCRATCH=str(tmp_path / "scratch"), TMPDIR=str(tmp_path),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    env.update(extra)
    return env


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def test_dry_run_on_the_cpu_records_windows_and_pipeline(tmp_path, weights):
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, cwd=REPO,
                          env=_env(tmp_path, GPU_CHECK_DRY_RUN="1", URST_DASK_WEIGHTS=str(weights)))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "dry run on CPU: figures are not GPU figures" in proc.stdout
    assert "skipped" not in proc.stdout
    path = tmp_path / "results" / "gpu-check-dry-run-cpu.json"
    assert f"recorded {path}" in proc.stdout
    assert not (tmp_path / "results" / "gpu-check.json").exists()  # never taken for a GPU figure
    doc = json.loads(path.read_text())
    assert doc["device"] == "cpu" and doc["gpu"] is None and "not GPU figures" in doc["note"]
    assert set(doc["windows"]) == {f"eager-{p}-b{b}" for p in ("float32", "bfloat16") for b in (1, 2)}
    for row in doc["windows"].values():
        assert _number(row["s_per_window"]) and row["s_per_window"] > 0
        assert _number(row["first_call_s"])
        assert row["max_memory_allocated_mb"] is None  # CUDA figures only on CUDA
        assert row["fell_back"] is False
    assert doc["windows"]["eager-float32-b1"]["psnr_vs_eager_float32_db"] is None  # the reference itself
    assert _number(doc["windows"]["eager-bfloat16-b1"]["psnr_vs_eager_float32_db"])
    assert list(doc["pipeline"]) == ["256"]
    run = doc["pipeline"]["256"]
    assert _number(run["wall_s"]) and run["wall_s"] > 0 and _number(run["mp_per_s"]) and run["mp_per_s"] > 0
    assert len(run["worker_max_memory_allocated_mb"]) == 1
    assert list(run["worker_max_memory_allocated_mb"].values()) == [None]
    assert all(_number(v) and v > 0 for v in run["worker_peak_rss_mb"].values())
    assert _number(doc["total_s"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible: the check would run, not skip")
def test_without_cuda_the_wrapper_prints_its_skip_line_and_exits_0(tmp_path):
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, cwd=tmp_path,
                          env=_env(tmp_path, GPU_CHECK_DRY_RUN="0"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == SKIP_LINE + "\n"
    assert not (tmp_path / "results").exists()
