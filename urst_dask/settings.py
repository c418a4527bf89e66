"""Frozen, validated settings for a run.

Option strings are enums; constructing a setting with a bad value raises
:class:`~urst_dask.errors.ParameterError` naming the argument and the value, and listing
the valid choices for enums.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from .errors import ParameterError, ParameterTypeError, bad_value


class _Choice(str, enum.Enum):
    """A string enum whose ``parse`` gives a helpful error listing valid values."""

    @classmethod
    def parse(cls, value: "str | _Choice", arg: str) -> "_Choice":
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            for member in cls:
                if member.value == value.lower():
                    return member
        valid = ", ".join(m.value for m in cls)
        raise ParameterError(f"{arg}={value!r}: must be one of {valid}")

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


def _int(arg: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int,)) and not (
        isinstance(value, float) and value.is_integer()
    ):
        raise ParameterTypeError(f"{arg}={value!r}: must be an integer")
    return int(value)


def _positive_float(arg: str, value: object, *, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterTypeError(f"{arg}={value!r}: must be a number")
    v = float(value)
    if not math.isfinite(v) or not lo <= v <= hi:
        raise bad_value(arg, value, f"must be in [{lo}, {hi}]")
    return v


MAX_BATCH = 64


def parse_intensity(spec: str) -> tuple[float, float] | None:
    """``"dtype"`` -> ``None``; ``"percentile:LO,HI"`` -> ``(LO, HI)`` with 0 <= LO < HI <= 100."""
    if spec == "dtype":
        return None
    head, _, tail = str(spec).partition(":")
    try:
        lo, hi = (float(v) for v in tail.split(","))
    except ValueError:
        lo = hi = float("nan")
    if head != "percentile" or not (0.0 <= lo < hi <= 100.0):
        raise ParameterError(f"intensity={spec!r}: must be 'dtype' or 'percentile:LO,HI' with 0 <= LO < HI <= 100")
    return lo, hi


@dataclass(frozen=True)
class StyleOptions:
    """How the style image becomes a style code, and how strongly it is applied."""

    alpha: float = 1.0
    style_size: int = 1024
    thumb_size: int = 1024
    norm: NormMode = NormMode.TIN
    preserve_color: bool = False
    intensity: str = "dtype"  # "dtype" (the dtype's range) or "percentile:LO,HI" of the thumbnail

    def __post_init__(self) -> None:
        parse_intensity(self.intensity)
        object.__setattr__(self, "alpha", _positive_float("alpha", self.alpha, lo=0.0, hi=1.0))
        for name in ("style_size", "thumb_size"):
            v = _int(name, getattr(self, name))
            if v < 16:
                raise bad_value(name, getattr(self, name), "must be >= 16")
            object.__setattr__(self, name, v)
        object.__setattr__(self, "norm", NormMode.parse(self.norm, "norm"))
        if not isinstance(self.preserve_color, bool):
            raise ParameterTypeError(f"preserve_color={self.preserve_color!r}: must be a bool")


@dataclass(frozen=True)
class ComputeOptions:
    """Where and how each worker runs the network."""

    device: DeviceKind = DeviceKind.AUTO
    precision: Precision = Precision.FLOAT32
    # eager by default: a compiled backend converts once per window shape (minutes on a loaded
    # 2-core machine, cached on disk for OpenVINO) and differs from eager at the image's
    # bottom/right border; ``auto`` picks the fastest measured one (see urst_dask.engine.backends)
    backend: Backend = Backend.EAGER
    whole: bool = False  # no tiling: the whole image is one window
    batch: int = 1  # windows per network call (neighbours along a row); halves itself on out-of-memory

    def __post_init__(self) -> None:
        batch = _int("batch", self.batch)
        if not 1 <= batch <= MAX_BATCH:
            raise bad_value("batch", self.batch, f"must be in [1, {MAX_BATCH}]")
        object.__setattr__(self, "batch", batch)
        object.__setattr__(self, "device", DeviceKind.parse(self.device, "device"))
        object.__setattr__(self, "precision", Precision.parse(self.precision, "precision"))
        object.__setattr__(self, "backend", Backend.parse(self.backend, "backend"))
        if not isinstance(self.whole, bool):
            raise ParameterTypeError(f"whole={self.whole!r}: must be a bool")
