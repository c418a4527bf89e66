"""Frozen, validated settings for a run.

Option strings are enums; constructing a setting with a bad value raises
:class:`~urst_dask.errors.ParameterError` naming the argument and the value, and listing
the valid choices for enums.
"""

from __future__ import annotations

import enum
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

from .errors import ParameterError, ParameterTypeError, as_int, as_number, bad_value, require_bool


class _Choice(str, enum.Enum):
    """A string enum whose ``parse`` gives a helpful error listing valid values."""

    @classmethod
    def parse(cls, value: "str | _Choice", arg: str) -> "_Choice":
        if isinstance(value, cls):
            return value
        member = cls._lookup(value)
        if member is None:
            raise ParameterError(f"{arg}={value!r}: must be one of {', '.join(m.value for m in cls)}")
        return member

    @classmethod
    def _lookup(cls, value: object) -> "_Choice | None":
        """The member whose value is ``value`` in any case (``None``: no such member)."""
        if isinstance(value, str):
            for member in cls:
                if member.value == value.lower():
                    return member
        return None

    @classmethod
    def _missing_(cls, value: object) -> "_Choice":
        """``Blend("Linear")`` is ``Blend.LINEAR``; an unknown value lists the valid ones (the
        enum's own ValueError did not)."""
        member = cls._lookup(value)
        if member is not None:
            return member
        raise ParameterError(f"{cls.__name__}({value!r}): must be one of {', '.join(m.value for m in cls)}")

    def __str__(self) -> str:  # pragma: no cover - cosmetic
        return self.value


class NormMode(_Choice):
    """Where normalization statistics come from."""

    TIN = "tin"  # thumbnail statistics, frozen for every window (URST)
    IN = "in"  # each window's own statistics: the paper's inconsistent baseline


class MemoryMode(_Choice):
    """How worker processes return freed memory to the OS (glibc's malloc)."""

    FAST = "fast"  # glibc's default: freed few-MB arrays stay in the heap for reuse (fastest)
    COMPACT = "compact"  # arrays >= 1 MiB are mapped and unmapped: flat memory, slower windows


class DeviceKind(_Choice):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class Precision(_Choice):
    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"  # autocast; statistics stay float32/float64
    FLOAT16 = "float16"  # autocast on CUDA only
    AUTO = "auto"  # bfloat16 where the device computes it natively (AMX/AVX512-BF16, bf16 GPUs), else float32


class Backend(_Choice):
    """How each worker executes the per-window network (see :mod:`urst_dask.engine.backends`)."""

    AUTO = "auto"  # the fastest measured backend available for the device and network
    EAGER = "eager"  # PyTorch eager: the reference and the fallback
    INDUCTOR = "inductor"  # torch.compile (inductor), compiled once per worker and key
    OPENVINO = "openvino"  # OpenVINO (CPU), the optional extra urst-dask[openvino]


def _positive_float(arg: str, value: object, *, lo: float, hi: float) -> float:
    v = as_number(arg, value)
    if not math.isfinite(v) or not lo <= v <= hi:
        raise bad_value(arg, value, f"must be in [{lo}, {hi}]")
    return v


# The built-in networks' names (urst_dask.models.REGISTRY's own), so that a RunConfig checks
# its method without importing the networks (torch); other names ask the registry.
BUILTIN_METHODS = ("wct16x", "johnson", "microast", "wct", "adain", "linearwct", "msgnet", "passthrough")
# ...the variants of those that have any (wct: the cascade's top level), and those whose style
# is baked in (the style argument names the network); the others take no variant
BUILTIN_VARIANTS = {"wct": ("1", "2", "3", "4", "5")}
BAKED_STYLE_METHODS = ("johnson",)
MAX_BATCH = 64
MAX_STYLE_SIZE = 8192  # the paper's style is 1024 px; a style this large is 0.8 GB of float pixels
MAX_LOCAL = 1024  # local cluster workers, and threads per worker


SCHEDULER_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")  # distributed's address schemes


def check_scheduler_address(address: object) -> None:
    """Refuse a scheduler address that is not a string, has an unknown scheme, or lacks a
    ``host:port`` (``tcp://host:8786``; ``inproc://...`` has none); whether it answers is the
    cluster's concern, when the run connects."""
    if not isinstance(address, str) or not address.strip():
        raise ParameterTypeError(f"scheduler={address!r}: must be an address like tcp://host:8786")
    scheme, sep, location = address.partition("://")
    scheme, location = (scheme, location) if sep else ("tcp", address)
    if scheme not in SCHEDULER_SCHEMES:
        raise ParameterError(f"scheduler={address!r}: unknown address scheme {scheme!r}; expected one of "
                             f"{', '.join(SCHEDULER_SCHEMES)} (tcp://host:8786)")
    if scheme == "inproc":
        return
    host, colon, port = location.rpartition(":")
    if not colon or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
        raise ParameterError(f"scheduler={address!r}: expected {scheme}://host:port, such as {scheme}://host:8786")


def _opt(help_text: str, **cli: Any) -> dict[str, Any]:
    """Field metadata read by the command line (:func:`urst_dask.cli.options.add_run_options`):
    ``help`` and, where the flag differs from the field, ``flag``, ``aliases``, ``type``..."""
    return {"help": help_text, **cli}


class FrameFormat(_Choice):
    """A frame folder's file format (``tiff`` and ``jpeg`` are read as ``tif`` and ``jpg``)."""

    PNG = "png"
    TIF = "tif"
    EXR = "exr"
    JPG = "jpg"

    @classmethod
    def _lookup(cls, value: object) -> "_Choice | None":
        if isinstance(value, str):
            value = {"tiff": "tif", "jpeg": "jpg"}.get(value.lower().lstrip("."), value.lower().lstrip("."))
        return super()._lookup(value)


class IntensityMode(_Choice):
    """How pixel values map into the network's [0, 1]."""

    DTYPE = "dtype"  # the dtype's full range (float: [0, 1] as given)
    PERCENTILE = "percentile"  # the thumbnail's (lo, hi) percentiles


@dataclass(frozen=True)
class Intensity:
    """How pixel values map into the network's [0, 1]: ``mode`` ``"dtype"`` (the dtype's range)
    or ``"percentile"`` with the thumbnail's percentiles ``(lo, hi)``, 0 <= lo < hi <= 100.

    Parsed once from the user's string (:meth:`parse`); ``text`` keeps that string for the
    provenance, so a run's fingerprint is the one it always had.  Built directly (or through
    ``dataclasses.replace``) it is validated the same way, and ``text`` is set to the values'
    own spelling unless it already says the same."""

    mode: IntensityMode = IntensityMode.DTYPE
    percentiles: tuple[float, float] | None = None
    text: str = field(default="dtype", compare=False)

    def __post_init__(self) -> None:
        if IntensityMode._lookup(self.mode) is None:
            raise bad_value("intensity", self.mode, "mode must be one of dtype, percentile")
        object.__setattr__(self, "mode", IntensityMode.parse(self.mode, "intensity"))
        if self.mode == "dtype":
            if self.percentiles is not None:
                raise bad_value("intensity", self.percentiles, "percentiles are for mode 'percentile' only")
        else:
            pair = self.percentiles
            numbers_pair = (isinstance(pair, (tuple, list)) and len(pair) == 2
                            and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in pair))
            lo, hi = (float(pair[0]), float(pair[1])) if numbers_pair else (math.nan, math.nan)  # type: ignore[index]
            if not (0.0 <= lo < hi <= 100.0):
                raise bad_value("intensity", self.percentiles, "percentiles must be (LO, HI) with 0 <= LO < HI <= 100")
            object.__setattr__(self, "percentiles", (lo, hi))
        if _spelled(self.text) != (self.mode, self.percentiles):
            spelling = "dtype" if self.mode == "dtype" else "percentile:{:g},{:g}".format(*self.percentiles)  # type: ignore[misc]
            object.__setattr__(self, "text", spelling)

    @classmethod
    def parse(cls, spec: "str | Intensity") -> "Intensity":
        """``"dtype"`` or ``"percentile:LO,HI"`` with 0 <= LO < HI <= 100."""
        if isinstance(spec, Intensity):
            return spec
        got = _spelled(spec) if isinstance(spec, str) else None
        if got is None:
            raise ParameterError(f"intensity={spec!r}: must be 'dtype' or 'percentile:LO,HI' with 0 <= LO < HI <= 100")
        return cls(IntensityMode(got[0]), got[1], spec)

    def __str__(self) -> str:
        return self.text


def _spelled(text: Any) -> tuple[str, tuple[float, float] | None] | None:
    """(mode, percentiles) that an intensity string says, or None when it is not one."""
    if text == "dtype":
        return ("dtype", None)
    head, _, tail = str(text).partition(":")
    try:
        lo, hi = (float(v) for v in tail.split(","))
    except ValueError:
        return None
    return ("percentile", (lo, hi)) if head == "percentile" and 0.0 <= lo < hi <= 100.0 else None


@dataclass(frozen=True)
class StyleOptions:
    """How the style image becomes a style code, and how strongly it is applied."""

    alpha: float = field(default=1.0, metadata=_opt("content/style blend in [0, 1]"))
    style_size: int = field(default=1024, metadata=_opt("style image side after resize+crop"))
    thumb_size: int = field(default=1024, metadata=_opt("thumbnail shorter side"))
    norm: NormMode = field(default=NormMode.TIN, metadata=_opt(
        "tin: thumbnail statistics (URST); in: per-window statistics (baseline)"))
    preserve_color: bool = field(default=False, metadata=_opt("keep the content's colours (luminance transfer)"))
    # "dtype" (the dtype's range) or "percentile:LO,HI" of the thumbnail; a string is parsed here, once
    intensity: Intensity = field(default=Intensity(), metadata=_opt(
        "intensity mapping into the network's range: 'dtype' (the dtype's full range) or 'percentile:LO,HI' (the "
        "thumbnail's percentiles, e.g. percentile:0.5,99.5; mapped back on output)", type=str))

    def __post_init__(self) -> None:
        object.__setattr__(self, "intensity", Intensity.parse(self.intensity))
        object.__setattr__(self, "alpha", _positive_float("alpha", self.alpha, lo=0.0, hi=1.0))
        for name in ("style_size", "thumb_size"):
            v = as_int(name, getattr(self, name))
            if v < 16:
                raise bad_value(name, getattr(self, name), "must be >= 16")
            object.__setattr__(self, name, v)
        if self.style_size > MAX_STYLE_SIZE:  # a 100000-px style asked torch for 216 GB, with a traceback
            raise bad_value("style_size", self.style_size, f"must be <= {MAX_STYLE_SIZE}")
        object.__setattr__(self, "norm", NormMode.parse(self.norm, "norm"))
        require_bool("preserve_color", self.preserve_color)


@dataclass(frozen=True)
class ComputeOptions:
    """Where and how each worker runs the network."""

    device: DeviceKind = field(default=DeviceKind.AUTO, metadata=_opt("where the network runs"))
    precision: Precision = field(default=Precision.FLOAT32, metadata=_opt(
        "network arithmetic: float32, bfloat16, float16 (CUDA), or auto (bfloat16 where the hardware computes it "
        "natively: AMX/AVX512-BF16 CPUs, bf16 GPUs, and the network keeps its picture in it: wct and johnson "
        "always, wct16x when a bf16 probe of the thumbnail clears 39 dB against float32; float32 elsewhere)"))
    # eager by default: a compiled backend converts once per window shape (up to four per image;
    # minutes on a loaded 2-core machine, cached on disk for OpenVINO); ``auto`` picks the
    # fastest measured one (see urst_dask.engine.backends)
    backend: Backend = field(default=Backend.EAGER, metadata=_opt(
        "how workers run the window network: eager (PyTorch), auto (the fastest measured for the device: OpenVINO "
        "on CPUs where installed, inductor on GPUs), inductor (torch.compile) or openvino (CPU; pip install "
        "'urst-dask[openvino]'); a compiler that fails falls back to eager with a warning"))
    whole: bool = field(default=False, metadata=_opt("no tiling: the whole image as one window"))
    batch: int = field(default=1, metadata=_opt(
        "windows per network call (neighbours along a row; for GPUs); halves itself when the device runs out of "
        "memory"))

    def __post_init__(self) -> None:
        batch = as_int("batch", self.batch)
        if not 1 <= batch <= MAX_BATCH:
            raise bad_value("batch", self.batch, f"must be in [1, {MAX_BATCH}]")
        object.__setattr__(self, "batch", batch)
        object.__setattr__(self, "device", DeviceKind.parse(self.device, "device"))
        object.__setattr__(self, "precision", Precision.parse(self.precision, "precision"))
        object.__setattr__(self, "backend", Backend.parse(self.backend, "backend"))
        require_bool("whole", self.whole)


@dataclass(frozen=True)
class ClusterOptions:
    """Which cluster runs the graph.

    ``scheduler``: address of an existing scheduler (``tcp://host:8786``); ``None`` starts a
    local cluster in-process with ``workers`` worker processes (``processes=False``: threads
    of this process) of ``threads_per_worker`` threads each.  ``connect_timeout``: seconds
    the scheduler has to answer each connection step (connect, handshake, identity, client
    registration) before the run is refused.  ``verbose``: let the embedded cluster's workers log
    errors (a failed task's ``Compute Failed`` traceback); by default they log only critical
    events, and a failure reaches the caller once, as its exception.
    """

    scheduler: str | None = field(default=None, metadata=_opt(
        "use an existing Dask scheduler (tcp://host:8786) instead of a local cluster"))
    workers: int = field(default=1, metadata=_opt("local cluster worker processes"))
    threads_per_worker: int = field(default=1, metadata=_opt("tasks at once per worker"))
    processes: bool = field(default=True, metadata=_opt(
        "run the local cluster's workers as threads of this process: no worker processes to start and stop "
        "(they start beside the decoding, so this saves little), but the run shares this process's memory and a "
        "worker crash ends it",
        flag="--in-process"))
    # per task; default: the worker's share of the CPUs
    torch_threads: int | None = field(default=None, metadata=_opt("", cli=False))
    memory: MemoryMode = field(default=MemoryMode.FAST, metadata=_opt(
        "worker allocator: fast or compact (freed arrays go back to the OS at once: worker memory +12%% from 16 MP "
        "to 1 GP, against up to +26%%; windows 12-20%% slower)"))
    connect_timeout: float = field(default=20.0, metadata=_opt(
        "seconds the scheduler has to answer each connection step", flag="--scheduler-timeout"))
    # worker logs at ERROR (tracebacks of failed tasks) instead of CRITICAL; the CLI's -v
    verbose: bool = field(default=False, metadata=_opt("", cli=False))

    def __post_init__(self) -> None:
        object.__setattr__(self, "memory", MemoryMode.parse(self.memory, "memory"))
        for name in ("workers", "threads_per_worker"):
            v = getattr(self, name)
            if not 1 <= as_int(name, v) <= MAX_LOCAL:  # 10**19 workers: the start never ended
                raise ParameterError(f"{name}={v!r}: must be an integer in [1, {MAX_LOCAL}]")
            object.__setattr__(self, name, as_int(name, v))
        require_bool("processes", self.processes)
        require_bool("verbose", self.verbose)
        if self.scheduler is not None:
            check_scheduler_address(self.scheduler)
        if self.scheduler and not self.processes:
            raise ParameterError(f"processes=False (--in-process) with scheduler={self.scheduler!r}: in-process "
                                 "workers belong to the local cluster; drop one of them")
        local = [f"{n}={getattr(self, n)}" for n in ("workers", "threads_per_worker") if getattr(self, n) != 1]
        if self.scheduler and local:  # they were ignored: the scheduler's cluster has the workers it has
            raise ParameterError(f"{', '.join(local)} with scheduler={self.scheduler!r}: these size the local "
                                 "cluster; an existing scheduler's workers are started with it (`dask worker "
                                 "--nworkers N --nthreads T`); drop them")
        if self.torch_threads is not None:
            if as_int("torch_threads", self.torch_threads) < 1:
                raise ParameterError(f"torch_threads={self.torch_threads!r}: must be an integer >= 1")
            object.__setattr__(self, "torch_threads", as_int("torch_threads", self.torch_threads))
        t = self.connect_timeout
        if isinstance(t, bool) or not isinstance(t, numbers.Real) or not 0 < t <= 3600:
            raise ParameterError(f"connect_timeout={t!r} (--scheduler-timeout): must be a number of seconds in (0, 3600]")
        object.__setattr__(self, "connect_timeout", float(t))
