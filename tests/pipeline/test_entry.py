"""The ``urst-dask`` program's exit: after success, everything Python's own exit does except the
teardown of its modules; after a failure, Python's own exit."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from urst_dask.testing import REPO

PROGRAM = """
import atexit, sys, threading, time

class Teardown:
    def __del__(self):
        print("module teardown ran", flush=True)

keep = Teardown()  # a module global: only the interpreter's teardown deletes it
atexit.register(lambda: print("atexit ran", flush=True))
threading.Thread(target=lambda: (time.sleep(0.3), print("thread finished", flush=True))).start()
import concurrent.futures
pool = concurrent.futures.ThreadPoolExecutor(1)  # its idle worker thread is not a daemon, and is never shut down here
pool.submit(print, "pool task ran", flush=True).result()
sys.stdout.write("unflushed ")  # no newline: still in the buffer at exit
from urst_dask.cli import entry
sys.argv[1:] = {argv!r}
entry()
"""


@pytest.mark.parametrize("argv, code, teardown", [
    (["methods"], 0, False),
    (["stylize", "missing.png", "missing-style.png", "-o", "x.zarr"], 2, True),
])
def test_exit_runs_atexit_joins_threads_flushes_and_skips_teardown_only_on_success(tmp_path, argv, code, teardown):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", PROGRAM.format(argv=argv)], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60)  # a thread pool left open must not hang the exit
    assert proc.returncode == code, proc.stderr
    assert "atexit ran" in proc.stdout and "thread finished" in proc.stdout and "unflushed " in proc.stdout, proc.stdout
    assert ("module teardown ran" in proc.stdout) is teardown, proc.stdout
    if code == 0:
        assert "wct16x" in proc.stdout  # the command's own output came through
    else:
        assert "urst-dask: error: " in proc.stderr
