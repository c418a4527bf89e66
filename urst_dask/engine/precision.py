"""Which arithmetic the window network runs in.

``auto`` means bfloat16 where the device computes it natively - a CPU with AMX or
AVX512-BF16, a GPU with bf16 tensor cores (compute capability >= 8.0) - and the network keeps
its picture in bf16 (:data:`BF16_HOLDS`), float32 elsewhere (emulated bf16 is slower than
float32, and loses precision for nothing).  For the networks of :data:`BF16_PROBED` the
pipeline settles ``auto`` per run, by a bf16 probe of the thumbnail
(:mod:`urst_dask.engine.probe`), before the windows run; :func:`resolve_precision` alone keeps
them in float32.  Statistics and the whitening/colouring matrices
are computed in float32/float64 whatever the precision (:mod:`urst_dask.kernels`).
"""

from __future__ import annotations

from typing import cast

import torch

from ..errors import ParameterError
from ..io import host
from ..settings import Precision

BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")

# The networks whose bf16 output stays within the 35 dB bar of their float32 output on real
# photographs, eager and OpenVINO alike (benchmarks/bench_precision_quality.py on an
# AVX512-BF16 CPU, results/precision-quality.json: worst 25.1 dB for wct16x, 29.6 for
# microast, 43.1 for wct, 43.2 for johnson).  So ``auto`` runs wct16x and microast in
# float32, as it does a network registered from outside, whose bf16 quality nobody measured.
BF16_HOLDS = frozenset({"wct", "johnson"})

# The networks whose bf16 picture depends on the painting and the image: ``auto`` runs them in
# bf16 only after a probe on the run's thumbnail clears a bar (:mod:`urst_dask.engine.probe`);
# where no probe runs (the lazy :func:`urst_dask.stylize_array`, given statistics) they
# stay float32.
BF16_PROBED = frozenset({"wct16x"})


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (:func:`urst_dask.io.host.cpu_flags`)."""
    return host.cpu_flags()


def cpu_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AMX or AVX512-BF16)."""
    if any(f in cpu_flags() for f in BF16_CPU_FLAGS):
        return True
    cap = str(torch.backends.cpu.get_cpu_capability()).upper()  # "AVX512_BF16", "AMX"... on newer builds
    return "BF16" in cap or "AMX" in cap


def cuda_native_bf16(device: torch.device) -> bool:
    return torch.cuda.is_available() and torch.cuda.get_device_capability(device)[0] >= 8


def resolve_precision(precision: Precision | str, device: torch.device, method: str) -> Precision:
    """The concrete precision (float32, bfloat16 or float16) of ``method``'s network on
    ``device``: ``auto`` is bf16 where the device computes it natively and the network keeps
    its picture in it (:data:`BF16_HOLDS`), else float32.  float16 is CUDA-only."""
    precision = cast(Precision, Precision.parse(precision, "precision"))
    if precision is Precision.AUTO:
        native = cuda_native_bf16(device) if device.type == "cuda" else cpu_native_bf16()
        return Precision.BFLOAT16 if native and method in BF16_HOLDS else Precision.FLOAT32
    if precision is Precision.FLOAT16 and device.type != "cuda":
        raise ParameterError("precision='float16': float16 runs on CUDA devices only; use bfloat16 or auto on the CPU")
    return precision


def torch_dtype(precision: Precision) -> torch.dtype | None:
    """The autocast dtype of a concrete precision (``None`` for float32)."""
    return {Precision.BFLOAT16: torch.bfloat16, Precision.FLOAT16: torch.float16}.get(precision)
