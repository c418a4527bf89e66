"""Running one probe process under a memory watchdog.

The probe (:mod:`urst_dask.bench.probe`) runs in its own session, so that it and the local
cluster it starts can be stopped together.  While it runs, the resident memory of its whole
process tree is sampled (the sampled peak is recorded beside the processes' own high-water
marks), and if the machine's available memory falls below ``floor_mb`` the tree is killed
before the kernel's OOM killer would pick a victim: the run is recorded as out of memory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import psutil

MIB = 2**20
TAG = "URST-PROBE "


@dataclass(frozen=True)
class ProbeResult:
    """What the probe printed (``data``), the sampled tree peak, and why it stopped early if it did."""

    data: dict[str, Any]
    sampled_peak_mb: float
    killed: str | None = None


def available_mb() -> float:
    return psutil.virtual_memory().available / MIB


def default_floor_mb() -> float:
    """Available memory below which a run is killed: 10 % of the machine, at most 2 GiB."""
    return min(2048.0, 0.1 * psutil.virtual_memory().total / MIB)


def _tree_rss_mb(proc: psutil.Process) -> float:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / MIB


def _kill_tree(popen: subprocess.Popen) -> None:
    """SIGKILL the probe's session (it and the cluster it started), then reap the probe."""
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    popen.wait()


def _parse(stdout: str, stderr_tail: str, rc: int) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        if line.startswith(TAG):
            return json.loads(line[len(TAG):])
    last = stderr_tail.strip().splitlines()[-1] if stderr_tail.strip() else f"exit status {rc}"
    return {"ok": False, "error": f"probe process ended without a result (exit {rc}): {last[:300]}"}


def run_probe(spec: dict[str, Any], floor_mb: float, timeout_s: float | None = None,
              interval_s: float = 0.2) -> ProbeResult:
    """Run one probe process for ``spec``; kill it if available memory drops below ``floor_mb``
    or it runs past ``timeout_s``."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        popen = subprocess.Popen([sys.executable, "-m", "urst_dask.bench.probe", json.dumps(spec)],
                                 stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
        proc = psutil.Process(popen.pid)
        peak, killed, t0 = 0.0, None, time.monotonic()
        try:
            while popen.poll() is None:
                rss = _tree_rss_mb(proc)
                peak = max(peak, rss)
                avail = available_mb()
                if avail < floor_mb:
                    killed = (f"out of memory (killed at {rss * MIB / 1e9:.1f} GB: available memory fell to "
                              f"{avail * MIB / 1e9:.1f} GB)")
                elif timeout_s is not None and time.monotonic() - t0 > timeout_s:
                    killed = f"failed: timeout after {timeout_s:.0f} s"
                if killed:
                    _kill_tree(popen)
                    break
                time.sleep(interval_s)
        except BaseException:  # Ctrl-C / SIGTERM of the sweep: never leave the cluster behind
            _kill_tree(popen)
            raise
        out.seek(0)
        err.seek(0)
        stderr_tail = err.read()[-4000:]
        data = {"ok": False, "error": killed} if killed else _parse(out.read(), stderr_tail, popen.returncode)
    return ProbeResult(data, round(peak, 1), killed)
