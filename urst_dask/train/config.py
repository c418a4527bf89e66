"""The frozen, validated settings of a training run (``urst-dask train`` / :func:`urst_dask.train.train`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputImageError, ParameterError, ParameterTypeError, bad_value, require_bool
from ..settings import DeviceKind, _Choice
from .data import Sampling
from .lossnet import LossNetKind, LossNetSpec

MAX_TRAIN_BATCH = 64


class TrainMethod(_Choice):
    MICROAST = "microast"  # arbitrary style: one network for a folder of paintings
    JOHNSON = "johnson"  # one network per painting (the style is baked into the weights)


# Upstream settings: MicroAST (train_microAST.py: Adam lr 1e-4, decay 5e-5, content 1, style 3,
# SSC 3); Johnson et al. (PyTorch examples: Adam lr 1e-3, constant).  Johnson's content/style
# weights are rescaled for the normalised VGG-19 used here (see README "train"): at the
# pretrained networks they give content and style terms of the same order.
DEFAULTS: dict[TrainMethod, dict[str, float]] = {
    TrainMethod.MICROAST: {"lr": 1e-4, "lr_decay": 5e-5, "content_weight": 1.0, "style_weight": 3.0, "ssc_weight": 3.0},
    TrainMethod.JOHNSON: {"lr": 1e-3, "lr_decay": 0.0, "content_weight": 1.0, "style_weight": 1e5, "ssc_weight": 0.0},
}


def _number(arg: str, value: Any, lo: float, hi: float = math.inf, *, open_lo: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterTypeError(f"{arg}={value!r}: must be a number")
    v = float(value)
    if not math.isfinite(v) or v < lo or v > hi or (open_lo and v == lo):
        raise bad_value(arg, value, f"must be {'>' if open_lo else '>='} {lo}" + (f" and <= {hi}" if hi < math.inf else ""))
    return v


def _count(arg: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterTypeError(f"{arg}={value!r}: must be an integer")
    if value < lo or (hi is not None and value > hi):
        raise bad_value(arg, value, f"must be >= {lo}" + (f" and <= {hi}" if hi is not None else ""))
    return value


@dataclass(frozen=True)
class TrainConfig:
    """One training run.  ``None`` weights/lr take the method's upstream defaults (:data:`DEFAULTS`).

    ``content``: a folder of photographs; ``style``: a painting (johnson) or a painting or
    folder of paintings (microast); ``out``: the folder that receives the checkpoints in the
    method's own layout, ``train-state.pt`` (resume point) and ``train-log.jsonl``; ``init``:
    the weights to start from (microast: a weights folder; johnson: a built-in style name, a
    ``.pth`` file, or a folder holding ``johnson/<style stem>.pth``), ``None`` = random.
    """

    method: TrainMethod | str
    content: str
    style: str
    steps: int
    out: str
    stroke_weight: float = 1.0
    batch_size: int = 8
    lr: float | None = None
    device: DeviceKind | str = DeviceKind.AUTO
    init: str | None = None
    resume: bool = False
    loss_net: LossNetSpec = field(default_factory=LossNetSpec)
    content_weight: float | None = None
    style_weight: float | None = None
    ssc_weight: float | None = None
    checkpoint_every: int = 100
    log_every: int = 10
    seed: int = 0
    weights: str | None = None  # shipped weights folder (loss network; johnson init names)
    sampling: Sampling = field(default_factory=Sampling)

    def __post_init__(self) -> None:
        method = TrainMethod.parse(self.method, "method")
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "device", DeviceKind.parse(self.device, "device"))
        _count("steps", self.steps, 1)
        _count("batch_size", self.batch_size, 1, MAX_TRAIN_BATCH)
        _count("checkpoint_every", self.checkpoint_every, 1)
        _count("log_every", self.log_every, 1)
        _count("seed", self.seed, 0)
        require_bool("resume", self.resume)  # "no" is truthy: it would resume
        object.__setattr__(self, "stroke_weight", _number("stroke_weight", self.stroke_weight, 0.0))
        for name in ("lr",):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _number(name, getattr(self, name), 0.0, 1.0, open_lo=True))
        for name in ("content_weight", "style_weight", "ssc_weight"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _number(name, getattr(self, name), 0.0))
        if not isinstance(self.loss_net, LossNetSpec):
            raise ParameterTypeError(f"loss_net={self.loss_net!r}: must be a LossNetSpec")
        if not isinstance(self.sampling, Sampling):
            raise ParameterTypeError(f"sampling={self.sampling!r}: must be a Sampling")
        for name in ("content", "style", "out"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ParameterTypeError(f"{name}={getattr(self, name)!r}: must be a path")
        if method is TrainMethod.JOHNSON and Path(self.style).is_dir():
            raise InputImageError(f"style={self.style!r}: is a folder; johnson trains one network per style: "
                                  "give one painting (microast takes a folder)")
        if method is TrainMethod.JOHNSON and self.ssc_weight:
            raise ParameterError(f"ssc_weight={self.ssc_weight!r}: the style signal contrastive loss is MicroAST's")

    def setting(self, name: str) -> float:
        """A loss weight or learning-rate setting, or the method's default when unset."""
        value = getattr(self, name, None)
        return DEFAULTS[self.method][name] if value is None else float(value)  # type: ignore[index]

    @property
    def method_name(self) -> str:
        return TrainMethod(self.method).value

    def style_name(self) -> str:
        """Johnson's checkpoint name: the style image's file stem."""
        return Path(self.style).stem

    def record(self) -> dict[str, Any]:
        """Plain values (for the training state file and the checkpoints' records)."""
        doc = asdict(self)
        doc["method"] = self.method_name
        doc["device"] = DeviceKind(self.device).value
        kind = self.loss_net.kind
        doc["loss_net"] = {**doc["loss_net"], "kind": kind.value if isinstance(kind, LossNetKind) else kind,
                           "extra": list(self.loss_net.extra)}
        return doc
