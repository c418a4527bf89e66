"""Settings of the memory sweep: a frozen dataclass validated on creation."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OutputError, ParameterError, bad_value
from ..settings import _Choice
from .inputs import default_scratch
from .predict import DEFAULT_SAFETY

DEFAULT_SIZES = tuple(range(1000, 10001, 1000))
PAPER_SIZES = (1000, 2000, 3000, 4000, 6000, 10000)  # the rows of the paper's Table 1


class Mode(_Choice):
    """How each image goes through the network."""

    TILED = "tiled"  # URST: windows with thumbnail statistics
    WHOLE = "whole"  # the original method: the whole image as one window


def _all_methods() -> tuple[str, ...]:
    from ..models import METHODS

    return tuple(m for m in METHODS if m != "passthrough")


def _check_out(out: Path) -> Path:
    """Create ``out`` if needed and prove it writable (a probe file: ``os.access`` says yes to root)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"out={str(out)!r}: cannot write there ({exc.strerror or type(exc).__name__})") from None
    return out


@dataclass(frozen=True)
class SweepConfig:
    """What the sweep measures and where it writes.

    ``methods``: registered method names (default: every network; ``passthrough`` on request);
    ``sizes``: image sides in pixels (square images); ``modes``: ``tiled`` and/or ``whole``;
    ``out``: folder for ``<name>.csv/.md/.png/.json`` and the run journal ``<name>-runs.jsonl``;
    ``image``: a photograph to scale to each size (default: generated content); ``style``:
    ``"demo"`` (a generated painting) or a style image path; ``device``: ``auto`` | ``cpu`` |
    ``cuda``; ``safety``: share of the available memory a whole-image run may be predicted to
    use; ``budget_s``: seconds after which runs predicted not to finish are not started
    (None: no limit); ``resume``: keep rows already in the journal.
    """

    out: Path
    methods: tuple[str, ...] = field(default_factory=_all_methods)
    sizes: tuple[int, ...] = DEFAULT_SIZES
    modes: tuple[Mode, ...] = (Mode.TILED, Mode.WHOLE)
    image: Path | None = None
    style: str = "demo"
    device: str = "auto"
    weights: Path | None = None
    scratch: Path = field(default_factory=default_scratch)
    name: str = "memory"
    safety: float = DEFAULT_SAFETY
    budget_s: float | None = None
    timeout_s: float | None = None
    resume: bool = True

    def __post_init__(self) -> None:
        from ..models import METHODS
        from ..settings import DeviceKind

        known = list(METHODS)  # names only: looking a name up may raise for unknown ones
        methods = (self.methods,) if isinstance(self.methods, str) else tuple(self.methods)
        unknown = [m for m in methods if m not in known]
        if unknown or not methods:
            raise ParameterError(f"methods={list(methods)!r}: unknown method {unknown[0]!r}; valid: {', '.join(known)}"
                                 if unknown else f"methods=[]: give at least one of {', '.join(known)}")
        sizes = (self.sizes,) if isinstance(self.sizes, int) else tuple(self.sizes)
        if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
            raise bad_value("sizes", list(sizes), "each size must be an integer number of pixels >= 1")
        modes = (self.modes,) if isinstance(self.modes, (str, Mode)) else tuple(self.modes)
        if not modes:
            raise bad_value("modes", [], "give tiled and/or whole")
        object.__setattr__(self, "methods", tuple(dict.fromkeys(methods)))
        object.__setattr__(self, "sizes", tuple(sorted(set(sizes))))
        object.__setattr__(self, "modes", tuple(dict.fromkeys(Mode.parse(m, "modes") for m in modes)))
        object.__setattr__(self, "device", DeviceKind.parse(self.device, "device").value)
        if not 0 < self.safety <= 1:
            raise bad_value("safety", self.safety, "must be in (0, 1]")
        for arg in ("budget_s", "timeout_s"):
            v = getattr(self, arg)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0):  # NaN too
                raise bad_value(arg, v, "must be a number of seconds > 0 (or None)")
        if not self.name or any(c in self.name for c in "/\\\0") or self.name.startswith("."):
            raise bad_value("name", self.name, "must be a plain file name prefix")
        if self.image is not None:
            image = Path(self.image)
            if not image.is_file():
                raise bad_value("image", str(self.image), "no such file")
            object.__setattr__(self, "image", image)
        if self.style != "demo" and not Path(self.style).is_file():
            raise bad_value("style", self.style, "no such file (or 'demo' for the generated painting)")
        object.__setattr__(self, "scratch", Path(self.scratch))
        object.__setattr__(self, "out", _check_out(Path(self.out)))
