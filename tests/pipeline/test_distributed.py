"""A real Dask cluster of separate processes on 127.0.0.1: ``dask scheduler`` + ``dask worker``.

What these tests show, with no GPU:

* the API (``scheduler=``, with ``memory="compact"``) and the CLI (``--scheduler``) on a
  scheduler and two worker processes write the same bytes as the embedded local cluster of
  the same layout (real ``wct16x`` where the weights are found);
* the network is loaded once per worker process and never travels inside tasks (the
  process-level load counter of every worker);
* the thumbnail statistics are one task, computed once per run, and one key of the tile graph;
* ``kill -9`` of a worker in the middle of a run: the run completes, the output is
  byte-identical to a clean run, every chunk is there exactly once, the store is complete;
* with one worker advertising ``GPU=1`` and one without, every network task (the windows,
  the style and the statistics) runs on the former and the other never loads the network.

Every process is started in a session of its own and its whole process group is killed
when its fixture ends, whatever happened (and at interpreter exit as a last resort); every
wait is bounded.  Worker processes load the toy networks with ``--preload urst_dask.testing.preload``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import numpy as np
import pytest
from distributed import Client, get_task_stream
from distributed.utils import key_split

import urst_dask
from urst_dask.engine import load_count
from urst_dask.io import store
from urst_dask.pipeline.cluster import gpu_resources
from urst_dask.testing import random_image
from urst_dask.testing import slow as toy_slow

toy_slow.register()

BIN = Path(sys.executable).parent
DASK = BIN / "dask"
URST = BIN / "urst-dask"
TESTS = Path(__file__).resolve().parent
START_S = 90  # bound on starting a scheduler or the workers
RUN_S = 120  # bound on one stylize run

pytestmark = pytest.mark.skipif(not DASK.exists(), reason=f"no `dask` command next to {sys.executable}")

# ------------------------------------------------------------------------ processes

_LIVE: set[subprocess.Popen] = set()


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group of ``proc`` (a ``dask worker``'s nanny and its worker)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    _LIVE.discard(proc)


@atexit.register
def _kill_leftovers() -> None:  # the test process dying between a start and its fixture's end
    for proc in list(_LIVE):
        _kill_group(proc)


def _wait(what: str, cond: Callable[[], Any], timeout: float, procs: dict[str, subprocess.Popen] | None = None,
          logs: Callable[[], str] = lambda: "") -> Any:
    """Poll ``cond`` until it returns something truthy; fail fast if a process exits."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        for name, proc in (procs or {}).items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} while waiting for {what}\n{logs()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s\n{logs()}")
        time.sleep(0.1)


class ProcCluster:
    """``dask scheduler`` and ``dask worker`` commands, each in its own process group."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.procs: dict[str, subprocess.Popen] = {}
        self.address = ""

    def _spawn(self, name: str, args: list[str]) -> None:
        with open(self.root / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    env=self.env, cwd=self.root, start_new_session=True)
        _LIVE.add(proc)
        self.procs[name] = proc

    def logs(self) -> str:
        parts = []
        for name in self.procs:
            text = (self.root / f"{name}.log").read_text(errors="replace")
            parts.append(f"--- {name}.log (tail)\n{text[-2500:]}")
        return "\n".join(parts)

    def start_scheduler(self) -> None:
        sfile = self.root / "scheduler.json"
        self._spawn("scheduler", [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                  "--scheduler-file", str(sfile), "--idle-timeout", "600s"])

        def address() -> str | None:
            try:
                return json.loads(sfile.read_text())["address"]
            except (OSError, ValueError, KeyError):
                return None

        self.address = _wait("the scheduler file", address, START_S, self.procs, self.logs)

    def start_worker(self, name: str, *extra: str) -> None:
        self._spawn(name, [str(DASK), "worker", self.address, "--name", name, "--host", "127.0.0.1",
                           "--nthreads", "1", "--no-dashboard", "--local-directory", str(self.root / name),
                           "--death-timeout", "120s", "--preload", "urst_dask.testing.preload", *extra])

    def wait_for_workers(self, n: int) -> None:
        with Client(self.address, timeout="20s") as c:
            _wait(f"{n} workers", lambda: len(c.scheduler_info()["workers"]) >= n, START_S, self.procs, self.logs)

    def kill(self, name: str) -> None:
        _kill_group(self.procs.pop(name))

    def close(self) -> None:
        for name in reversed(list(self.procs)):
            _kill_group(self.procs.pop(name))


@contextlib.contextmanager
def proc_cluster(root: Path, workers: dict[str, list[str]], *, delay: float = 0.25) -> Iterator[ProcCluster]:
    """A scheduler and one single-threaded worker (with a nanny) per entry of ``workers``
    (its extra command-line arguments); everything killed on exit."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), env.get("PYTHONPATH")) if p)
    env["URST_TOY_DELAY"] = str(delay)
    root.mkdir(parents=True, exist_ok=True)
    cluster = ProcCluster(root, env)
    try:
        cluster.start_scheduler()
        for name, extra in workers.items():
            cluster.start_worker(name, *extra)
        cluster.wait_for_workers(len(workers))
        yield cluster
    finally:
        cluster.close()


class Background:
    """Run ``fn`` in a daemon thread; ``result`` waits a bounded time and re-raises its error."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._box: dict[str, Any] = {}

        def target() -> None:
            try:
                self._box["value"] = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                self._box["error"] = exc

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self, timeout: float) -> Any:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the run did not finish within {timeout} s")
        if "error" in self._box:
            raise self._box["error"]
        return self._box["value"]


def bounded(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return Background(fn, *args, **kwargs).result(RUN_S)


# ---------------------------------------------------------------------------- helpers


def _image(path: Path) -> np.ndarray:
    return np.asarray(store.open_output(path).compute())


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _chunk_files(path: Path) -> list[tuple[int, ...]]:
    """Grid indices of the chunk files of the image array on disk (zarr v3 ``c/i/j/k`` keys)."""
    base = path / store.IMAGE / "c"
    if not base.is_dir():
        return []
    return sorted(tuple(map(int, p.relative_to(base).parts)) for p in base.rglob("*") if p.is_file())


def _chunk_grid(path: Path) -> list[tuple[int, ...]]:
    """Every grid index of the image array, from its metadata (whatever its axis order)."""
    import itertools

    import zarr

    arr = zarr.open_array(str(path), path=store.IMAGE, mode="r")
    assert arr.metadata.chunk_key_encoding.separator == "/"
    return sorted(itertools.product(*(range(n) for n in arr.cdata_shape)))


def _kinds(records: list[dict[str, Any]]) -> Counter:
    """Task-stream records by task name (``key_split``: ``collect_stats``, ``prepare_style``...)."""
    return Counter(key_split(r["key"]) for r in records)


def _ran(records: list[dict[str, Any]], *kinds: str) -> set[str]:
    """Workers that ran a task of one of ``kinds``."""
    return {r["worker"] for r in records if key_split(r["key"]) in kinds}


def _names(c: Client) -> dict[str, str]:
    """``{worker name: address}``."""
    return {info["name"]: addr for addr, info in c.scheduler_info()["workers"].items()}


def _windows(c: Client) -> dict[str, int]:
    """``{address: windows finished}`` of ``identity-slow`` in each worker process.  The window
    tasks are counted where they run: the optimizer fuses them with the overlap, trim and
    write steps under names of its own choosing."""
    return c.run(toy_slow.windows_done)


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {addr: n - before.get(addr, 0) for addr, n in after.items()}


@pytest.fixture(scope="module")
def toy_weights(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("toy-weights")  # the toys have no files; any folder does


# ------------------------------------------ scheduler + 2 workers vs the embedded cluster

WCT = dict(method="wct16x", stride=48, margin=8, style_size=64)  # 96 x 128: 2 x 3 windows
WCT_WINDOWS = 6


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Iterator[ProcCluster]:
    with proc_cluster(tmp_path_factory.mktemp("pair"), {"w1": [], "w2": []}, delay=0.1) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def wct_runs(pair, weights, style_image, tmp_path_factory) -> SimpleNamespace:
    """The same wct16x run three times: on the embedded local cluster that ``stylize`` starts
    itself, then with the API and with the CLI on the external 2-process cluster.

    The embedded cluster has the same layout (2 workers x 1 thread), hence the same torch
    threads per task (the CPUs // 2): on the CPU, float64 matmuls, ``eigh`` and some
    convolutions round differently with another intra-op thread count, so only runs with the
    same threads per task can be compared byte for byte.
    """
    from PIL import Image

    d = tmp_path_factory.mktemp("wct")
    content, style = d / "content.png", d / "style.png"
    Image.fromarray(random_image(96, 128, seed=31)).save(content)
    Image.fromarray(style_image).save(style)
    ref = bounded(urst_dask.stylize, content, style, d / "embedded.zarr", weights=weights, workers=2,
                  threads_per_worker=1, **WCT)
    cli = [str(URST), "stylize", str(content), str(style), "-o", str(d / "cli.zarr"), "--weights", str(weights),
           "--method", WCT["method"], "--stride", str(WCT["stride"]), "--margin", str(WCT["margin"]),
           "--style-size", str(WCT["style_size"]), "--scheduler", pair.address, "--no-progress"]
    with Client(pair.address, timeout="20s") as c:
        with get_task_stream(client=c) as api_stream:
            api = bounded(urst_dask.stylize, content, style, d / "api.zarr", weights=weights,
                          scheduler=pair.address, memory="compact", **WCT)
        with get_task_stream(client=c) as cli_stream:
            proc = subprocess.run(cli, capture_output=True, text=True, timeout=RUN_S, cwd=d) if URST.exists() else None
        return SimpleNamespace(ref=ref, api=api, cli=d / "cli.zarr", cli_proc=proc,
                               streams=[api_stream.data, cli_stream.data], loads=c.run(load_count, "wct16x"),
                               malloc=c.run(_malloc_settings))


def _malloc_settings() -> dict:
    from urst_dask.engine import process

    return {**process.MALLOC, "applied": list(process.MMAP_THRESHOLDS)}


@pytest.fixture(scope="module")
def toy_run(pair, style_image, toy_weights, tmp_path_factory) -> SimpleNamespace:
    """16 counted windows of ``identity-slow`` on the 2-process cluster."""
    image = random_image(128, 128, seed=21)
    out = tmp_path_factory.mktemp("toy") / "out.zarr"
    with Client(pair.address, timeout="20s") as c:
        before = _windows(c)
        with get_task_stream(client=c) as stream:
            bounded(urst_dask.stylize, image, style_image, out, method=toy_slow.NAME, weights=toy_weights,
                    scheduler=pair.address, stride=32, margin=4)
        return SimpleNamespace(image=image, out=out, stream=stream.data, windows=_delta(_windows(c), before),
                               loads=c.run(load_count, toy_slow.NAME), resources=gpu_resources(c))


def test_api_on_process_cluster_is_byte_identical(wct_runs):
    ref, got = _image(wct_runs.ref), _image(wct_runs.api)
    assert _same_bytes(got, ref)
    assert store.read_attrs(wct_runs.api)["status"] == "complete"
    assert store.read_stats(wct_runs.api).token() == store.read_stats(wct_runs.ref).token()
    grid = _chunk_grid(wct_runs.api)
    assert len(grid) == WCT_WINDOWS and _chunk_files(wct_runs.api) == grid


def test_compact_memory_reaches_every_worker_for_that_run_only(wct_runs):
    """``memory="compact"`` on an external scheduler: every worker fixed its mmap threshold
    (the plugin), and the bytes are the same (test above: that run used it).  The cluster
    outlives the run: when it ended the plugin was removed and the workers went back to
    heap-served arrays, so the next run there (the CLI's, default memory) is not slowed."""
    assert len(wct_runs.malloc) == 2
    released = {"mmap_threshold": 32 << 20, "applied": [1 << 20, 32 << 20]}
    assert all(m == released for m in wct_runs.malloc.values()), wct_runs.malloc


def test_compact_memory_of_two_runs_on_one_cluster_lasts_until_the_last_ends(pair, wct_runs):
    """Each run registers its own plugin: the first run to end no longer releases the other's."""
    from urst_dask.pipeline.cluster import connect
    from urst_dask.settings import ClusterOptions

    def threshold() -> int | None:
        from urst_dask.engine import process

        return process.MALLOC.get("mmap_threshold")

    compact = ClusterOptions(memory="compact")
    with Client(pair.address, timeout="20s") as c:
        with connect(compact, client=c):  # run A
            with connect(compact, client=c):  # run B
                assert set(c.run(threshold).values()) == {1 << 20}
            assert set(c.run(threshold).values()) == {1 << 20}  # B ended, A still runs
        assert set(c.run(threshold).values()) == {32 << 20}


def test_cli_scheduler_is_byte_identical(wct_runs):
    proc = wct_runs.cli_proc
    if proc is None:
        pytest.skip(f"no `urst-dask` command next to {sys.executable}")
    assert proc.returncode == 0, proc.stderr
    assert _same_bytes(_image(wct_runs.cli), _image(wct_runs.ref))
    assert store.read_attrs(wct_runs.cli)["status"] == "complete"


def test_network_loaded_once_per_worker(toy_run):
    """16 windows on two workers: each worker that ran windows loaded the network exactly
    once, the others never (the process-level cache; the tasks carry only a small spec)."""
    assert toy_run.resources is None  # no GPU advertised: the windows run on the CPU workers
    assert sum(toy_run.windows.values()) == 16
    assert all(n > 0 for n in toy_run.windows.values()), f"one worker ran no window: {toy_run.windows}"
    assert toy_run.loads == {addr: 1 if n else 0 for addr, n in toy_run.windows.items()}
    assert _same_bytes(_image(toy_run.out), toy_run.image)


def test_wct16x_loaded_at_most_once_per_worker(wct_runs):
    """Two wct16x runs (API then CLI, 12 windows): never a second load in any worker."""
    network = _ran([r for s in wct_runs.streams for r in s], "prepare_style", "collect_stats")
    assert set(wct_runs.loads.values()) <= {0, 1} and sum(wct_runs.loads.values()) >= 1
    assert all(wct_runs.loads[addr] == 1 for addr in network)


def test_statistics_computed_once_per_run(toy_run):
    kinds = _kinds(toy_run.stream)
    assert kinds["collect_stats"] == 1 and kinds["prepare_style"] == 1


def test_wct16x_statistics_computed_once_per_run(wct_runs):
    for stream in wct_runs.streams:
        kinds = _kinds(stream)
        assert kinds["collect_stats"] == 1 and kinds["prepare_style"] == 1


def test_statistics_are_one_key_of_the_tile_graph():
    """Every window task depends on the same single key that holds the statistics."""
    import dask.array as da

    from urst_dask.engine import ModelSpec
    from urst_dask.pipeline.tiles import tile_graph
    from urst_dask.settings import ComputeOptions, Precision, StyleOptions
    from urst_dask.stats import NormStats, StyleCode
    from urst_dask.tiling import TilePlan, WindowJob

    stats = NormStats.build("identity", {"in1": {"mean": np.full(3, 0.5), "std": np.full(3, 0.25)}})
    style = StyleCode.build("identity", {})
    job = WindowJob(StyleOptions(preserve_color=False), ComputeOptions(precision=Precision.FLOAT32), "uint8")
    image = da.zeros((96, 96, 3), dtype=np.uint8, chunks=(32, 32, 3))
    out = tile_graph(image, ModelSpec("identity", "."), style, stats, TilePlan(stride=32, margin=4), job)
    g = dict(out.__dask_graph__())
    holders = [k for k, v in g.items() if getattr(v, "value", v) is stats]
    assert len(holders) == 1
    tiles = [k for k in g if key_split(k) == "window_task"]
    assert len(tiles) == 9
    assert all(holders[0] in g[k].dependencies for k in tiles)


# ------------------------------------------------------------------- kill -9 mid-run


def test_worker_killed_mid_run(tmp_path, client, style_image, toy_weights):
    """36 slow windows on two workers; once both have finished windows, kill -9 one worker
    (its nanny too: a lost node).  The run still completes, byte-identical to a clean run,
    with every chunk written, once."""
    image = random_image(192, 192, seed=51)
    kw = dict(weights=toy_weights, stride=32, margin=4)
    clean = bounded(urst_dask.stylize, image, style_image, tmp_path / "clean.zarr", method="identity",
                    client=client, **kw)
    out = tmp_path / "out.zarr"
    with proc_cluster(tmp_path / "cluster", {"a": [], "b": []}, delay=0.3) as cluster, \
            Client(cluster.address, timeout="20s") as c:
        addr = _names(c)
        run = Background(urst_dask.stylize, image, style_image, out, method=toy_slow.NAME,
                         scheduler=cluster.address, **kw)

        def under_way() -> bool:
            if run.done():
                return True  # finished (or failed) before the kill: reported below
            done = _windows(c)
            return all(done[a] > 0 for a in addr.values()) and bool(c.processing(workers=[addr["b"]])[addr["b"]])

        _wait("windows finished on both workers", under_way, RUN_S, cluster.procs, cluster.logs)
        assert not run.done(), "the run finished before the kill; make the windows slower"
        windows_before = _windows(c)
        cluster.kill("b")
        run.result(RUN_S)
        assert set(_names(c)) == {"a"}
        survivor = _windows(c)[addr["a"]]
    assert windows_before[addr["b"]] > 0 and sum(windows_before.values()) < 36
    assert survivor > windows_before[addr["a"]]
    grid = _chunk_grid(out)
    assert len(grid) == 36 and _chunk_files(out) == grid  # every chunk, once
    assert store.read_attrs(out)["status"] == "complete"
    result = _image(out)
    assert _same_bytes(result, _image(clean)) and _same_bytes(result, image)


def test_a_video_run_survives_a_worker_killed_mid_run(tmp_path, client, style_image, toy_weights):
    """The style code and each frame's statistics were scattered, held by one worker: killing
    it failed the run ("already forgotten").  They are tasks' results now, computed again."""
    from PIL import Image

    from urst_dask.video import stylize_video

    frames = [random_image(96, 96, seed=60 + t) for t in range(4)]
    (tmp_path / "in").mkdir()
    for t, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / "in" / f"f{t}.png")
    kw = dict(weights=toy_weights, stride=32, margin=4, stats_policy="per-frame", in_flight=2)
    out = tmp_path / "out"
    with proc_cluster(tmp_path / "cluster", {"a": [], "b": []}, delay=0.3) as cluster, \
            Client(cluster.address, timeout="20s") as c:
        addr = _names(c)
        run = Background(stylize_video, tmp_path / "in", style_image, out, method=toy_slow.NAME,
                         scheduler=cluster.address, **kw)

        def under_way() -> bool:
            if run.done():
                return True
            done = _windows(c)
            return all(done[a] > 0 for a in addr.values())

        _wait("windows finished on both workers", under_way, RUN_S, cluster.procs, cluster.logs)
        assert not run.done(), "the run finished before the kill; make the windows slower"
        cluster.kill("b")
        run.result(RUN_S)
    for t, f in enumerate(frames):
        assert _same_bytes(np.asarray(Image.open(out / f"f{t}.png")), f)


# ------------------------------------------------------------------- GPU resource


@pytest.fixture(scope="module")
def gpu_and_cpu(tmp_path_factory) -> Iterator[ProcCluster]:
    with proc_cluster(tmp_path_factory.mktemp("gpu-cpu"), {"gpu": ["--resources", "GPU=1"], "cpu": []},
                      delay=0.1) as cluster:
        yield cluster


def test_gpu_worker_gets_every_network_task(gpu_and_cpu, tmp_path, style_image, toy_weights):
    """16 windows (slow enough that an idle worker would steal some): all of them, the style
    and the statistics run on the worker advertising GPU=1 (its device stays the CPU here, and
    its log warns about that); the other worker never loads the network."""
    image = random_image(128, 128, seed=41)
    with Client(gpu_and_cpu.address, timeout="20s") as c:
        addr = _names(c)
        assert gpu_resources(c) == {"GPU": 1}
        before = _windows(c)
        with get_task_stream(client=c) as stream:
            out = bounded(urst_dask.stylize, image, style_image, tmp_path / "out.zarr", method=toy_slow.NAME,
                          weights=toy_weights, scheduler=gpu_and_cpu.address, stride=32, margin=4)
        windows = _delta(_windows(c), before)
        loads = c.run(load_count)
    assert windows == {addr["gpu"]: 16, addr["cpu"]: 0}
    kinds = _kinds(stream.data)
    assert kinds["collect_stats"] == 1 and kinds["prepare_style"] == 1
    assert _ran(stream.data, "collect_stats", "prepare_style") == {addr["gpu"]}
    assert loads == {addr["gpu"]: 1, addr["cpu"]: 0}
    assert _same_bytes(_image(out), image)
    # this CPU-only torch cannot use the GPU the worker advertises: its log says so, once
    warning = "advertises GPU=1 but torch sees no CUDA device"
    assert (gpu_and_cpu.root / "gpu.log").read_text(errors="replace").count(warning) == 1
    assert warning not in (gpu_and_cpu.root / "cpu.log").read_text(errors="replace")
