"""torch's CPU tensors take transparent huge pages in the processes urst-dask starts.

The embedded cluster's worker processes and the command line's own process get
``THP_MEM_ALLOC_ENABLE=1`` before torch starts, unless the user's environment sets it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from urst_dask.engine.process import HUGE_PAGES, huge_pages_environ
from urst_dask.pipeline import cluster
from urst_dask.settings import ClusterOptions
from urst_dask.testing import REPO

THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def _thp_mode() -> str:
    """The kernel's THP mode, the bracketed word of ``always [madvise] never``; "" without one."""
    text = THP_MODE.read_text() if THP_MODE.exists() else ""
    return next((w.strip("[]") for w in text.split() if w.startswith("[")), "")


@pytest.mark.parametrize("environ, expected", [
    ({}, {HUGE_PAGES: "1"}),
    ({HUGE_PAGES: "0"}, {}),  # the user turned it off: left alone
    ({HUGE_PAGES: "1"}, {}),
    ({"OTHER": "x"}, {HUGE_PAGES: "1"}),
])
def test_huge_pages_environ_respects_the_users_setting(environ, expected):
    assert huge_pages_environ(environ) == expected


def test_worker_environ_keeps_an_explicit_setting(monkeypatch):
    monkeypatch.delenv(HUGE_PAGES, raising=False)
    assert cluster._worker_environ()[HUGE_PAGES] == "1"
    monkeypatch.setenv(HUGE_PAGES, "0")
    assert HUGE_PAGES not in cluster._worker_environ()  # so the worker inherits the user's "0"


def _anon_huge_kb_after_a_64_mb_tensor() -> tuple[str | None, int]:
    """In a worker: its setting, and the huge pages this process holds with a 64-MB tensor alive."""
    import torch

    t = torch.ones(16 << 20)  # 64 MB, written in full
    with open("/proc/self/smaps_rollup") as f:
        huge = next((int(line.split()[1]) for line in f if line.startswith("AnonHugePages")), 0)
    del t
    return os.environ.get(HUGE_PAGES), huge


def test_embedded_worker_processes_take_huge_pages(monkeypatch):
    """The worker gets the variable, and (where the kernel allows THP) its tensors live in huge
    pages.  Checked: with ``THP_MEM_ALLOC_ENABLE=0`` here the worker's 64-MB tensor holds none
    (kernel mode ``madvise``), and this test fails."""
    monkeypatch.delenv(HUGE_PAGES, raising=False)
    options = ClusterOptions(workers=1, threads_per_worker=1)
    with cluster.local_cluster(options) as lc, cluster.local_client(lc, options) as client:
        (setting, huge_kb), = client.run(_anon_huge_kb_after_a_64_mb_tensor).values()
    assert setting == "1"
    if _thp_mode() not in ("madvise", "always"):
        pytest.skip(f"the kernel's THP mode is {_thp_mode() or 'absent'!r}: no huge pages to see")
    assert huge_kb >= 32 * 1024, huge_kb


def test_the_program_sets_it_before_torch_starts():
    """The ``urst-dask`` program sets it for its own process before anything imports torch, and
    leaves a user's ``0`` alone; ``main()``, the function, leaves the environment alone."""
    code = ("import atexit, os, sys; "
            f"atexit.register(lambda: print('setting', os.environ.get({HUGE_PAGES!r}), file=sys.stderr)); "
            "sys.argv[1:] = ['methods']; from urst_dask.cli import entry; entry()")
    for env_value, expected in ((None, "1"), ("0", "0")):
        env = {k: v for k, v in os.environ.items() if k != HUGE_PAGES}
        env["PYTHONPATH"] = str(REPO)
        if env_value is not None:
            env[HUGE_PAGES] = env_value
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert f"setting {expected}" in proc.stderr, proc.stderr
    env = {k: v for k, v in os.environ.items() if k != HUGE_PAGES}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([sys.executable, "-c", "import os; from urst_dask.cli import main; main(['methods']); "
                           f"print('main left', os.environ.get({HUGE_PAGES!r}))"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0 and "main left None" in proc.stdout, proc.stderr
