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
