"""Kill -9 a command line in the middle of its work (resume tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Callable


def kill_when(cmd: list[str], ready: Callable[[], bool], *, env: dict[str, str], timeout: float = 240.0) -> None:
    """Start ``cmd`` in its own process group, wait until ``ready()`` (or ``timeout`` seconds),
    then SIGKILL the whole group (the CLI and its worker processes).  Fails if the command
    finished before it could be killed: the test would then prove nothing."""
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if ready():
                break
            time.sleep(0.02)
        if proc.poll() is not None:
            raise AssertionError("the run finished before it could be killed; make it longer")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
