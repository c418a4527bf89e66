"""Execution backends for the per-window network, and which one ``auto`` picks.

Each backend turns a baked network (:func:`urst_dask.engine.baked.bake`: NCHW float32 in,
NCHW float32 out) and an example input into a runner ``runner(x) -> y``:

* ``eager`` - PyTorch as it is: the reference, and the fallback of every other backend;
* ``inductor`` - ``torch.compile`` (CPU: C++/OpenMP kernels, weights frozen; CUDA: Triton);
* ``openvino`` - OpenVINO's CPU plugin (the optional extra ``urst-dask[openvino]``); float32
  or bfloat16 through its inference-precision hint.

``auto`` picks, for a built-in network whose backends were checked against eager (tests/
test_engine.py), the fastest backend measured for the device (benchmarks/bench_window.py,
recorded in benchmarks/results/); a network registered from outside runs eager unless a
backend is named.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import shutil
import sys
import threading
from pathlib import Path
from typing import Callable, cast

import torch
from torch import Tensor, nn

from .._version import __version__
from ..errors import ParameterError, UrstError
from ..io import ovcache
from ..settings import Backend, Precision
from .baked import FoldedCascade
from .precision import resolve_precision

Runner = Callable[[Tensor], Tensor]

# networks whose compiled outputs tests/test_engine.py compares with eager
VALIDATED = frozenset({"wct16x", "wct", "johnson", "microast"})


class BackendUnavailable(UrstError, RuntimeError):
    """The backend asked for cannot run here (package missing, wrong device)."""


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def inductor_available(device: torch.device) -> bool:
    """``torch.compile`` needs a C++ compiler for CPU kernels (and Triton on CUDA)."""
    if device.type == "cuda":
        return importlib.util.find_spec("triton") is not None
    return any(shutil.which(cc) for cc in ("g++", "c++", "clang++"))


def check_backend(backend: Backend | str, device: torch.device) -> Backend:
    """Refuse a named backend that cannot run on ``device`` here, with a one-line reason."""
    backend = Backend.parse(backend, "backend")
    if backend is Backend.OPENVINO:
        if device.type != "cpu":
            raise BackendUnavailable(f"backend='openvino': runs on the CPU only, not on {device}; use inductor or eager")
        if not openvino_available():
            raise BackendUnavailable("backend='openvino': the OpenVINO package is not installed; "
                                     "pip install 'urst-dask[openvino]' (or use --backend auto/inductor/eager)")
    if backend is Backend.INDUCTOR and not inductor_available(device):
        raise BackendUnavailable(f"backend='inductor': torch.compile needs "
                                 f"{'Triton' if device.type == 'cuda' else 'a C++ compiler (g++)'} on this machine")
    return cast(Backend, backend)


def auto_backend(method: str, device: torch.device, precision: Precision) -> Backend:
    """The fastest backend measured for ``device`` and ``precision`` (see the module text)."""
    if method not in VALIDATED:
        return Backend.EAGER
    if device.type == "cuda":
        return Backend.INDUCTOR if inductor_available(device) else Backend.EAGER
    # CPU, benchmarks/results/window-*.json: OpenVINO is the fastest at both precisions and
    # compiles in about a second; inductor is next but compiles for 20-60 s per process and
    # window shape, more than the whole run of a small image, so auto never picks it here.
    if openvino_available() and precision in (Precision.FLOAT32, Precision.BFLOAT16):
        return Backend.OPENVINO
    return Backend.EAGER


def _eager(net: nn.Module, example: Tensor, precision: Precision) -> Runner:
    def run(x: Tensor) -> Tensor:
        with torch.inference_mode():
            return net(x)

    return run


_freeze_lock = threading.Lock()


def _inductor(net: nn.Module, example: Tensor, precision: Precision) -> Runner:
    import torch._inductor.config as inductor_config

    compiled = torch.compile(net, dynamic=False)
    with _freeze_lock, inductor_config.patch(freezing=True), torch.inference_mode():
        compiled(example)  # compiles now (freezing: weights folded into the kernels as constants)

    def run(x: Tensor) -> Tensor:
        with torch.inference_mode():
            return compiled(x)

    return run


def openvino_cache_dir() -> Path:
    """Converted OpenVINO networks and compiled blobs (see :func:`urst_dask.io.ovcache.folder`)."""
    return ovcache.folder()


def _convert(ov, net: nn.Module, inputs: tuple[Tensor, ...]):  # noqa: ANN001 - the openvino module
    with torch.no_grad():  # traced once without the re-run check (the check doubles the time)
        traced = torch.jit.trace(net, inputs if len(inputs) > 1 else inputs[0], check_trace=False)
        return ov.convert_model(traced, example_input=inputs if len(inputs) > 1 else inputs[0])


def code_digest(net: nn.Module) -> str:
    """A digest of the code that defines ``net``: the package version, urst-dask's network
    modules and the module of every layer class in it (a plugin's too).  A network converted by
    other code (a newer urst-dask, an edited checkout) is converted again, not read back from
    the disk cache with the old graph."""
    own = Path(__file__).resolve().parents[1]
    files = {str(p) for p in (own / "models").glob("*.py")}
    files |= {str(own / "engine" / "baked.py"), str(own / "kernels.py"), str(own / "stats.py")}
    for m in net.modules():
        module = sys.modules.get(type(m).__module__)
        if module is not None and getattr(module, "__file__", None):
            files.add(str(module.__file__))
    return ovcache.files_digest(tuple(sorted(files)), __version__)


def _converted(ov, net: nn.Module, example: Tensor):  # noqa: ANN001
    """The OpenVINO model of ``net`` for ``example``'s shape, and its extra inputs.  A network
    that can take its baked statistics as inputs (:class:`~urst_dask.engine.baked.FoldedCascade`)
    is converted once per machine, whatever the window shape, and kept on disk; each shape is a
    reshape of that one graph (0.2 s, where a conversion takes 2.5-3.8 s for a 1136-px wct16x
    window on a 2-core Xeon, and an image has up to four window shapes).  Others are converted
    per key, in memory."""
    if not isinstance(net, FoldedCascade):
        return _convert(ov, net, (example,)), []
    extra = [t.detach().cpu() for t in net.affines()]
    key = hashlib.sha256(f"{net.identity()}|reshaped per window|{ov.__version__}{torch.__version__}|"
                         f"{code_digest(net)}".encode())
    name = key.hexdigest()[:32]
    model = ovcache.read(name, ov)
    if model is None:
        model = _convert(ov, net.parametric(), (example, *extra))
        ovcache.write(name, ov, model)
    def fixed(m):  # noqa: ANN001, ANN202 - static shapes: the CPU plugin convolves only with weights of a known shape
        m.reshape({inp: ov.PartialShape(list(t.shape)) for inp, t in zip(m.inputs, (example, *extra))})
        return m

    try:
        return fixed(model), extra
    except Exception:  # noqa: BLE001 - a graph that kept its first shape: convert for this one
        return fixed(_convert(ov, net.parametric(), (example, *extra))), extra


def _openvino(net: nn.Module, example: Tensor, precision: Precision) -> Runner:
    try:
        import openvino as ov
    except ImportError as exc:  # pragma: no cover - check_backend refuses first
        raise BackendUnavailable("backend='openvino': pip install 'urst-dask[openvino]'") from exc
    if precision is Precision.FLOAT16:
        raise ParameterError("precision='float16': not with backend='openvino' (CPU); use bfloat16 or float32")
    hint = "bf16" if precision is Precision.BFLOAT16 else "f32"
    example = example.contiguous()
    threads = max(1, torch.get_num_threads())
    ident: tuple = ()
    if isinstance(net, FoldedCascade):  # the same network with other statistics: reuse the compiled one
        ident = (net.identity(), tuple(example.shape), hint, threads)
        hit = _ov_compiled.pop(ident, None)
        if hit is not None:
            _ov_compiled[ident] = hit  # the most recently used, last
            return _ov_runner(hit, [t.detach().cpu() for t in net.affines()])
    model, extra = _converted(ov, net, example)
    core = ov.Core()
    with contextlib.suppress(Exception):  # compiled blobs cached on disk too (best effort)
        core.set_property({"CACHE_DIR": str(openvino_cache_dir() / "blobs")})
    compiled = core.compile_model(model, "CPU", {
        "INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
    if ident:
        _ov_compiled[ident] = compiled
        while len(_ov_compiled) > OV_COMPILED_MAX:  # each holds its activation memory: drop the oldest
            del _ov_compiled[next(iter(_ov_compiled))]
    return _ov_runner(compiled, extra)


OV_COMPILED_MAX = 8  # as the engine's cache of runners (engine/cache.py)
_ov_compiled: dict[tuple, object] = {}  # parametric networks compiled in this process, least recently used first


def forget_compiled(shape: tuple[int, ...]) -> int:
    """Drop this process's OpenVINO networks compiled for inputs of ``shape`` (a one-off
    shape, such as the bf16 probe's thumbnail); returns how many were dropped."""
    gone = [k for k in _ov_compiled if k[1] == tuple(shape)]
    for k in gone:
        del _ov_compiled[k]
    return len(gone)


def _ov_runner(compiled, extra: list[Tensor]) -> Runner:  # noqa: ANN001 - an openvino CompiledModel
    constants = {i + 1: t.numpy() for i, t in enumerate(extra)}
    local = threading.local()  # one infer request per thread: a request is not thread-safe

    def run(x: Tensor) -> Tensor:
        req = getattr(local, "req", None)
        if req is None:
            req = local.req = compiled.create_infer_request()
        req.infer({0: x.detach().cpu().contiguous().numpy(), **constants})
        y = torch.from_numpy(req.get_output_tensor(0).data.copy())  # the request reuses its buffer
        return y.to(x.device)

    return run


BUILDERS: dict[Backend, Callable[[nn.Module, Tensor, Precision], Runner]] = {
    Backend.EAGER: _eager,
    Backend.INDUCTOR: _inductor,
    Backend.OPENVINO: _openvino,
}


def build_runner(backend: Backend, net: nn.Module, example: Tensor, precision: Precision) -> Runner:
    """Compile ``net`` for ``example``'s shape with ``backend`` (may raise anything: callers
    fall back to eager)."""
    return BUILDERS[backend](net, example, precision)


def precheck(compute, local: bool = False) -> None:  # noqa: ANN001 - settings.ComputeOptions (no import cycle)
    """Refuse, in the calling process and before any work, what no worker could run: a named
    backend whose package is missing here (the extra to install is named), OpenVINO on CUDA,
    float16 on the CPU: ``device="cpu"``, or ``"auto"`` where the workers are ``local`` (the
    embedded cluster, on this machine) and this machine has no CUDA device."""
    from ..settings import DeviceKind

    on_cpu = compute.device is DeviceKind.AUTO and local and not torch.cuda.is_available()
    if compute.device is DeviceKind.CPU or on_cpu:
        resolve_precision(compute.precision, torch.device("cpu"), "")  # float16 there: one line now, not mid-run
    if compute.backend is Backend.OPENVINO:
        check_backend(Backend.OPENVINO, torch.device("cuda" if compute.device is DeviceKind.CUDA else "cpu"))
