"""A stop (SIGTERM, Ctrl-C) is never lost: raised where Python swallows exceptions (a garbage
collector callback, a ``__del__``: "Exception ignored in ..."), the run carried on and exited 0;
now the signal comes again and the run stops with its exit status."""

from __future__ import annotations

import gc
import os
import signal
import time
from typing import Any

import pytest

from urst_dask import cli


@pytest.mark.parametrize("signum, code, line", [
    (signal.SIGTERM, 143, "urst-dask: terminated (SIGTERM)"),
    (signal.SIGINT, 130, "urst-dask: interrupted"),
])
def test_a_stop_raised_inside_a_gc_callback_still_stops_the_run(monkeypatch, capsys, signum, code, line):
    ran: dict[str, Any] = {"callback": 0, "finished": False}

    def callback(phase: str, info: dict) -> None:
        if phase == "start" and not ran["callback"]:
            ran["callback"] += 1
            signal.raise_signal(signum)  # its handler raises here, inside the callback: swallowed
            time.sleep(0.01)

    def command(args: Any) -> None:
        gc.callbacks.append(callback)
        try:
            gc.collect()
        finally:
            gc.callbacks.remove(callback)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the rest of a run
            time.sleep(0.02)
        ran["finished"] = True

    monkeypatch.setattr(cli, "run_command", command)
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        rc = cli.main(["methods"])
    finally:
        signal.signal(signal.SIGINT, previous)
    err = capsys.readouterr().err
    assert ran["callback"] == 1 and not ran["finished"], err
    assert rc == code and line in err and "Exception ignored" not in err, err
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, previous) or os.name != "posix"


@pytest.mark.parametrize("argv, line", [
    (["export", "a.zarr", "b.png"], "urst-dask: interrupted; the export was not written"),  # it spoke of a store
    (["stylize", "a.png", "s.png", "-o", "o.zarr"], "urst-dask: interrupted; any output store is left marked incomplete"),
    (["methods"], "urst-dask: interrupted"),
])
def test_the_last_line_of_a_stopped_command_says_what_it_leaves(monkeypatch, capsys, argv, line):
    def command(args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run_command", command)
    assert cli.main(argv) == 130
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), lines
    assert argv[0] != "methods" or lines == [line]


def test_ctrl_c_while_the_workers_start_stops_the_run(tmp_path):
    """A terminal's Ctrl-C (SIGINT to the process group) in the first seconds of ``urst-dask
    stylize``, while its worker processes start beside the imports and the decoding: it was
    ignored there, and lost (the run went on and exited 0). The console script's workers now
    ignore SIGINT themselves from their first import, and the command line stops with 130."""
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image

    from urst_dask.testing import random_image

    script = Path(sys.executable).parent / "urst-dask"
    if not script.is_file():
        pytest.skip("the urst-dask console script is not installed beside this Python")
    Image.fromarray(random_image(1500, 1500, seed=1)).save(tmp_path / "c.png")
    Image.fromarray(random_image(64, 64, seed=2)).save(tmp_path / "s.png")
    proc = subprocess.Popen([str(script), "stylize", "c.png", "s.png", "-o", "out.zarr", "--method", "passthrough",
                             "--weights", str(tmp_path), "--stride", "200"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_sigint_as_in_a_terminal)
    time.sleep(1.5)  # the command line imports torch; its worker starts on the other core
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "urst-dask: interrupted" in err, err
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the workers end with the command line
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        pytest.fail("processes of the stopped command are still running")


def test_importing_the_command_line_leaves_sigint_alone():
    """Only a worker spawned from the console script ignores SIGINT: a process that imports
    urst_dask.cli after multiprocessing (which names its main module __mp_main__ too) keeps it."""
    import subprocess
    import sys

    code = ("import multiprocessing, signal, urst_dask.cli\n"
            "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          preexec_fn=_sigint_as_in_a_terminal).stdout.strip() == "True"


def _sigint_as_in_a_terminal() -> None:
    """A child's SIGINT as a terminal's foreground program has it: a test run started in the
    background (nohup, a CI runner) ignores SIGINT, and its children inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
