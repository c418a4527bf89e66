"""The embedded cluster's worker processes start on a helper thread while the run decodes its
input (:class:`urst_dask.pipeline.earlystart.EarlyCluster`): the run waits only for what is left of
the start, Ctrl-C stays off the workers during it, and nothing is left running on any way out."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from distributed.core import Status
from PIL import Image

import urst_dask
from urst_dask.engine import timing
from urst_dask.errors import UrstError
from urst_dask.io import store
from urst_dask.pipeline import cluster
from urst_dask.pipeline import earlystart as cl
from urst_dask.settings import ClusterOptions
from urst_dask.testing import random_image

OPTIONS = ClusterOptions(workers=1, threads_per_worker=1)


def _handler(signum: int, frame: Any) -> None:  # a recognisable SIGINT handler to be put back
    raise KeyboardInterrupt


def _child_pids() -> set[int]:
    return {p.pid for p in multiprocessing.active_children() if p.pid is not None}  # also reaps the exited ones


def _gone(pids: set[int], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pids & _child_pids():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def own_sigint():
    previous = signal.signal(signal.SIGINT, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("options, client", [
    (ClusterOptions(processes=False), None),
    (ClusterOptions(scheduler="tcp://127.0.0.1:8786"), None),
    (OPTIONS, object()),
], ids=["threads", "scheduler", "client given"])
def test_no_early_start_without_local_worker_processes(options: ClusterOptions, client: Any) -> None:
    assert cl.start_early(options, client) is None  # type: ignore[arg-type]


def test_taken_cluster_runs_tasks_then_closes(own_sigint: None) -> None:
    before = _child_pids()
    early = cl.start_early(OPTIONS)
    assert early is not None
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # the worker processes inherit it
    with cluster.connect(OPTIONS, None, early) as c:
        assert signal.getsignal(signal.SIGINT) is _handler
        assert c.submit(sum, [40, 2]).result() == 42
        workers = set(c.run(os.getpid).values())
        assert workers and not workers & {os.getpid()}  # separate processes
        assert _child_pids() - before
    assert _gone(_child_pids() - before)
    assert early.background_seconds > 0


def test_untaken_cluster_is_closed(own_sigint: None) -> None:
    before = _child_pids()
    with cl.start_early(OPTIONS) as early:  # type: ignore[union-attr]
        pass
    assert signal.getsignal(signal.SIGINT) is _handler
    assert early._result["cluster"].status == Status.closed
    assert early._result["client"].status == "closed"
    assert _gone(_child_pids() - before)


class _Spy(cl.EarlyCluster):
    made: list[cl.EarlyCluster] = []

    def __init__(self, options: ClusterOptions, *, ignore_sigint: bool = True) -> None:
        super().__init__(options, ignore_sigint=ignore_sigint)
        _Spy.made.append(self)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[cl.EarlyCluster]:
    _Spy.made = []
    monkeypatch.setattr(cl, "EarlyCluster", _Spy)
    return _Spy.made


def test_a_bad_input_closes_the_early_cluster(tmp_path: Path, spy: list, own_sigint: None) -> None:
    """The decoding fails (a file that is not a JPEG) after the workers started: the error names
    the file, and the cluster is closed, its processes gone, SIGINT handled again."""
    bad = tmp_path / "c.jpg"
    bad.write_bytes(b"not a jpeg" * 100)
    Image.fromarray(random_image(64, 64, seed=3)).save(tmp_path / "s.png")
    before = _child_pids()
    with pytest.raises(UrstError, match="c.jpg"):
        urst_dask.stylize(str(bad), str(tmp_path / "s.png"), tmp_path / "out.zarr", method="passthrough",
                          weights=tmp_path, progress=False)
    assert len(spy) == 1  # it did start early
    assert spy[0]._result["cluster"].status == Status.closed
    assert _gone(_child_pids() - before)
    assert signal.getsignal(signal.SIGINT) is _handler
    assert not (tmp_path / "out.zarr").exists()


def test_a_new_output_starts_early_and_completes(tmp_path: Path, spy: list) -> None:
    Image.fromarray(random_image(96, 80, seed=4)).save(tmp_path / "c.png")
    Image.fromarray(random_image(64, 64, seed=5)).save(tmp_path / "s.png")
    out = urst_dask.stylize(str(tmp_path / "c.png"), str(tmp_path / "s.png"), tmp_path / "out.zarr",
                            method="passthrough", weights=tmp_path, progress=False)
    assert len(spy) == 1
    stages = dict(timing.stages())
    assert "cluster start" in stages and stages["  started in the background, beside decoding"] > 0
    assert store.read_attrs(out)["status"] == "complete"
    # the same output again is complete: nothing to do, and no cluster is started for it
    urst_dask.stylize(str(tmp_path / "c.png"), str(tmp_path / "s.png"), tmp_path / "out.zarr",
                      method="passthrough", weights=tmp_path, progress=False)
    assert len(spy) == 1


class _Fake:
    """Stands in for EarlyCluster in the hand-over tests: no processes."""

    def __init__(self, options: ClusterOptions, *, ignore_sigint: bool = True) -> None:
        self.options = options
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cl, "EarlyCluster", _Fake)
    monkeypatch.setattr(cl, "_PENDING", [])


def test_the_run_takes_the_cluster_prestart_began(fake: None) -> None:
    started = cl.prestart(OPTIONS)
    assert cl.start_early(OPTIONS, new=False) is started  # taken, even where the run would not start one
    assert cl.start_early(OPTIONS, new=False) is None  # only once
    assert not started.closed  # type: ignore[union-attr]


def test_a_cluster_prestarted_for_other_options_is_closed(fake: None) -> None:
    started = cl.prestart(OPTIONS)
    other = ClusterOptions(workers=2, threads_per_worker=1)
    mine = cl.start_early(other)
    assert mine is not started and mine.options == other  # type: ignore[union-attr]
    assert started.closed  # type: ignore[union-attr]


def torch_modules_at_prestart(argv: list[str], cwd: Path) -> str:
    """The torch modules a fresh ``urst-dask ARGV`` process has imported when it reaches
    :func:`~urst_dask.pipeline.earlystart.prestart` (printed there; the process then exits)."""
    import subprocess
    import sys

    code = ("import sys\n"
            "import urst_dask.pipeline.earlystart as es\n"
            "def spy(options):\n"
            "    print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
            "    raise SystemExit(0)\n"
            "es.prestart = spy\n"
            "from urst_dask.cli import main\n"
            f"main({argv!r})\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=cwd)
    return proc.stdout.strip() or proc.stderr


def test_the_command_line_starts_the_cluster_before_importing_torch(tmp_path: Path) -> None:
    """What the command line runs up to :func:`~urst_dask.pipeline.earlystart.prestart` (building
    its parser, parsing, the run configuration, the cluster modules) does not import torch
    (seconds).  (The A/B benchmark of 083463f found the parser's ``bench`` subcommand importing it.)"""
    argv = ["stylize", __file__, "s.jpg", "-o", "never-written.zarr", "--backend", "openvino"]
    assert torch_modules_at_prestart(argv, tmp_path) == "[]"


def test_the_export_check_before_the_cluster_imports_no_torch(tmp_path: Path) -> None:
    """``stylize --export`` checks its target, from the content's header, before the cluster
    starts (:mod:`urst_dask.io.targets`): that must not import torch either."""
    Image.fromarray(random_image(40, 50, seed=3)).save(tmp_path / "c.png")
    argv = ["stylize", "c.png", "s.jpg", "-o", "never-written.zarr", "--export", "x.jpg"]
    assert torch_modules_at_prestart(argv, tmp_path) == "[]"


def test_cli_stylize_hands_its_early_cluster_to_the_run(tmp_path: Path, spy: list) -> None:
    from urst_dask.cli import main

    Image.fromarray(random_image(96, 80, seed=6)).save(tmp_path / "c.png")
    Image.fromarray(random_image(64, 64, seed=7)).save(tmp_path / "s.png")
    out = tmp_path / "out.zarr"
    assert main(["stylize", str(tmp_path / "c.png"), str(tmp_path / "s.png"), "-o", str(out), "--method",
                 "passthrough", "--weights", str(tmp_path), "--no-progress"]) == 0
    assert len(spy) == 1  # one cluster: the command line's, taken by the run
    assert spy[0]._taken and spy[0]._result["cluster"].status == Status.closed
    assert not cl._PENDING
    assert store.read_attrs(out)["status"] == "complete"


def test_a_closed_prestarted_cluster_is_not_handed_on(monkeypatch: pytest.MonkeyPatch, own_sigint: None) -> None:
    """The command line closes what its run did not take (the run failed before it): a later run
    in the same process must not be given that closed cluster (test_cli's error table ran into it)."""
    monkeypatch.setattr(cl, "_PENDING", [])
    first = cl.prestart(OPTIONS)
    assert first is not None and cl._PENDING == [first]
    first.close()
    assert cl.start_early(OPTIONS, new=False) is None


def _record_pid(path: str) -> None:
    Path(path).write_text(str(os.getpid()))


def _fails(path: str) -> None:
    raise RuntimeError(f"preload failed for {path}")


def _wait_for(path: Path, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} never written")


@pytest.mark.parametrize("when", ["while-starting", "after-the-start"])
def test_a_preload_runs_on_the_worker_beside_this_process(tmp_path: Path, own_sigint: None, when: str) -> None:
    """Asked for before or after the workers are up, the preload runs once on each worker
    process; a failing one is silent and leaves the cluster usable."""
    with cl.start_early(ClusterOptions(workers=2, threads_per_worker=1)) as early:  # type: ignore[union-attr]
        if when == "after-the-start":
            early._thread.join()
        early.preload(_fails, str(tmp_path))
        for i in range(2):
            early.preload(_record_pid, str(tmp_path / f"pid-{i}"))
        pids = {_wait_for(tmp_path / f"pid-{i}") for i in range(2)}
        with cluster.connect(early.options, None, early) as c:
            workers = {str(p) for p in c.run(os.getpid).values()}
            assert c.submit(sum, [40, 2]).result() == 42
    assert len(workers) == 2 and pids <= workers and str(os.getpid()) not in pids


def test_a_run_preloads_its_network_on_the_early_cluster(tmp_path: Path, spy: list,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The run asks its early cluster to load the very network (same ModelSpec, so the workers'
    model cache hits) its tasks use; a network with a baked style waits for the style input."""
    from urst_dask.engine.models import ModelSpec
    from urst_dask.pipeline.conditioning import preload_network
    from urst_dask.settings import DeviceKind

    asked: list[tuple[Any, tuple[Any, ...]]] = []
    original = cl.EarlyCluster.preload
    monkeypatch.setattr(cl.EarlyCluster, "preload", lambda self, fn, *args: (asked.append((fn, args)),
                                                                             original(self, fn, *args)))
    used: list[ModelSpec] = []
    from urst_dask.pipeline import conditioning

    real = conditioning.model_info
    monkeypatch.setattr("urst_dask.api.model_info", lambda spec, res=None: (used.append(spec), real(spec, res))[1])
    Image.fromarray(random_image(96, 80, seed=8)).save(tmp_path / "c.png")
    Image.fromarray(random_image(64, 64, seed=9)).save(tmp_path / "s.png")
    urst_dask.stylize(str(tmp_path / "c.png"), str(tmp_path / "s.png"), tmp_path / "out.zarr",
                      method="passthrough", weights=tmp_path, progress=False)
    assert len(spy) == 1
    assert [(fn, tuple(spec.network() for spec in args)) for fn, args in asked] == \
        [(preload_network, (ModelSpec("passthrough", str(tmp_path), None, DeviceKind.AUTO),))]
    assert used == [asked[0][1][0]]  # the digest of the weight files too


def test_a_preload_on_a_closed_cluster_is_ignored(tmp_path: Path, own_sigint: None) -> None:
    """A preload is best effort: asked for after the cluster closed, it neither raises nor runs."""
    early = cl.start_early(OPTIONS)
    assert early is not None
    early.close()
    early.preload(_record_pid, str(tmp_path / "pid"))
    assert not early._preloads and not (tmp_path / "pid").exists()


def test_cli_video_starts_its_cluster_before_torch_and_hands_it_to_the_run(tmp_path: Path, spy: list) -> None:
    """``urst-dask video`` starts the worker processes before it imports torch (as stylize does), and
    the run takes that cluster: one cluster, nothing left pending."""
    from urst_dask.cli import main

    folder = tmp_path / "frames"
    folder.mkdir()
    for t in range(2):
        Image.fromarray(random_image(40, 56, seed=20 + t)).save(folder / f"f{t:03d}.png")
    Image.fromarray(random_image(64, 64, seed=9)).save(tmp_path / "s.png")
    assert torch_modules_at_prestart(["video", str(folder), "s.png", "-o", "never-written.zarr"], tmp_path) == "[]"
    out = tmp_path / "out.zarr"
    assert main(["video", str(folder), str(tmp_path / "s.png"), "-o", str(out), "--method", "passthrough",
                 "--weights", str(tmp_path), "--stride", "32", "--no-progress"]) == 0
    assert len(spy) == 1 and spy[0]._taken and spy[0]._result["cluster"].status == Status.closed
    assert not cl._PENDING
    assert out.exists()
