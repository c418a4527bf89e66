"""``precision="auto"`` for the networks whose bf16 picture depends on the painting.

wct16x in bf16 keeps 36-43 dB of its float32 picture with most paintings and 24-29 dB with
Starry Night (results/precision-quality.json, mixed-precision-wct16x-amx-sweep.json), so no
fixed rule fits it.  The thumbnail pass already runs the network in float32 on the whole
(thumbnail-sized) image; running the same baked network once more in bf16 on the thumbnail,
on the backend the windows use, measures what bf16 would cost this image with this painting.
``auto`` then takes bf16 only when that probe clears :data:`PROBE_BAR_DB`, well above the
35 dB the picture must keep (benchmarks/bench_bf16_probe.py: how far the probe and the
full-resolution picture, and single windows of 4x and 10x enlargements, lie apart).

Tensors in, a :class:`PrecisionChoice` out; no I/O.  The network compiled for the probe's
one-off shape is dropped again and the heap trimmed, so that nothing of it stays in the worker.
"""

from __future__ import annotations

import dataclasses
import gc
import math
from typing import Any

import torch
from torch import Tensor

from ..metrics.quality import psnr
from ..models.base import StyleModel
from ..preprocess import nchw_to_hwc
from ..settings import Backend, ComputeOptions, Precision, StyleOptions
from ..stats import NormStats, StyleCode
from . import cache
from .precision import BF16_HOLDS, BF16_PROBED, cpu_native_bf16, cuda_native_bf16
from .process import trim_heap

# The probe's bar: the 35 dB the picture must keep, plus the largest shortfall of a window
# against its thumbnail probe among the painting/photograph pairs that pass it (see the module
# text; results/bf16-probe-wct16x-*.json).
PROBE_BAR_DB = 39.0


@dataclasses.dataclass(frozen=True)
class PrecisionChoice:
    """What ``precision="auto"`` resolved to for one run, and why: the concrete precision,
    the probe's PSNR of bf16 against float32 on the thumbnail (``None``: not probed) and the
    bar it had to clear."""

    precision: Precision
    probe_db: float | None = None
    bar_db: float = PROBE_BAR_DB
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values (an infinite PSNR, bf16 equal to float32, as the string "inf")."""
        db = self.probe_db
        return {"precision": self.precision.value, "probe_db": db if db is None or math.isfinite(db) else str(db),
                "bar_db": self.bar_db, "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PrecisionChoice:
        db = d.get("probe_db")
        return cls(Precision(d["precision"]), None if db is None else float(db), float(d.get("bar_db", PROBE_BAR_DB)),
                   str(d.get("reason", "")))

    def describe(self) -> str:
        return f"precision auto: {self.precision.value} ({self.reason})"


def worst(choices: list[PrecisionChoice]) -> PrecisionChoice:
    """The choice of the lowest probe PSNR; one not probed, or NaN (bf16 gave NaN), is lowest."""
    def order(choice: PrecisionChoice) -> float:
        db = choice.probe_db
        return db if db is not None and math.isfinite(db) else (math.inf if db == math.inf else -math.inf)

    return min(choices, key=order)


def wants_probe(precision: Precision | str, device: torch.device, method: str) -> bool:
    """Whether ``auto`` has to probe: the device computes bf16 natively and ``method`` is one
    of :data:`~.precision.BF16_PROBED`."""
    if Precision.parse(precision, "precision") is not Precision.AUTO or method not in BF16_PROBED:
        return False
    return cuda_native_bf16(device) if device.type == "cuda" else cpu_native_bf16()


def settled(precision: Precision | str, device: torch.device, method: str) -> PrecisionChoice | None:
    """What ``auto`` resolves to without a probe, as a record for the store (``None`` unless
    ``precision`` is ``auto``): bf16 where ``device`` computes it natively and ``method`` keeps
    its picture in it whatever the image (:data:`~.precision.BF16_HOLDS`), else float32."""
    if Precision.parse(precision, "precision") is not Precision.AUTO:
        return None
    native = cuda_native_bf16(device) if device.type == "cuda" else cpu_native_bf16()
    if not native:
        return PrecisionChoice(Precision.FLOAT32, reason=f"no native bf16 on {device.type}")
    if method in BF16_HOLDS:
        return PrecisionChoice(Precision.BFLOAT16, reason=f"native bf16 on {device.type}, and {method} keeps its "
                                                          "picture in it")
    return PrecisionChoice(Precision.FLOAT32, reason=f"{method} stays float32 under auto")


def psnr_unit(image: Tensor, reference: Tensor) -> float:
    """PSNR in dB (:func:`urst_dask.metrics.psnr`, peak 1) of two (1, 3, H, W) images in [0, 1]
    units, each clamped to it first, as the picture is."""
    return psnr(nchw_to_hwc(image.clamp(0, 1)), nchw_to_hwc(reference.clamp(0, 1)), peak=1.0)


def probe_backend(compute: ComputeOptions, method: str, device: torch.device) -> Backend:
    """The backend the probe runs bf16 on: the windows' own, except inductor, whose compile for
    one more shape (20-60 s on a CPU) would cost more than the probe saves; eager autocast
    stands in for it."""
    from .run import resolve_backend  # run imports this module's neighbours; resolved lazily

    used = resolve_backend(compute.backend, method, device, Precision.BFLOAT16)
    return Backend.EAGER if used is Backend.INDUCTOR else used


def choose_precision(model: StyleModel, thumb: Tensor, reference: Tensor, style: StyleCode, stats: NormStats,
                     options: StyleOptions, compute: ComputeOptions) -> PrecisionChoice:
    """``auto``'s precision for a run of ``model`` whose thumbnail pass turned ``thumb``
    ((1, 3, h, w) float32 in [0, 1] on ``model.device``) into ``reference`` (the float32
    output, same shape, unclamped) with ``stats``: bf16 when the same network baked for
    (``stats``, ``style``, ``options.alpha``) gives at least :data:`PROBE_BAR_DB` against it
    in bf16, else float32."""
    from .run import forward

    backend = probe_backend(compute, model.info.name, thumb.device)
    probe = dataclasses.replace(compute, precision=Precision.BFLOAT16, backend=backend, batch=1)
    plain = dataclasses.replace(options, preserve_color=False)  # the thumbnail pass's raw output
    shape = (1, *thumb.shape[1:])
    kept = cache.has_shape(shape)  # compiled for a window already: leave it
    y = forward(model, thumb.contiguous(), style, stats, plain, probe)
    if not kept and cache.forget_shape(shape):  # the probe's own compile would hold a few hundred MB
        gc.collect()  # through the whole tile stage (benchmarks/results/giga-*-auto-*.json)
        trim_heap()
    db, bar = round(psnr_unit(y, reference), 2), PROBE_BAR_DB
    if db >= bar:
        return PrecisionChoice(Precision.BFLOAT16, db, bar, f"bf16 on the thumbnail: {db} dB against float32, "
                                                            f"bar {bar} dB")
    return PrecisionChoice(Precision.FLOAT32, db, bar, f"bf16 on the thumbnail: {db} dB against float32, below the "
                                                       f"bar of {bar} dB")
