"""The out-of-memory guard of the memory sweep.

Before each whole-image run, its peak memory is predicted from the same method's whole-image
runs already measured at smaller sizes, with a line in pixels (memory = a + b x pixels, least
squares) above the process's own memory before the image (``baseline``, which each probe
measures: the interpreter, torch, the network).  From one measurement only, the prediction is
that baseline plus a proportional part (b = (memory - baseline) / pixels), which over-estimates
a line with a larger intercept: the guard errs on the side of skipping.  (Charging the ~0.3 GB
baseline to the pixels of a 100^2 run predicted 33 GB for a 1000^2 run that used 0.4 GB.)
The run is skipped when the prediction exceeds the usable memory, ``safety`` x the memory
available now (``psutil.virtual_memory().available`` on CPUs; the GPU's free memory
on GPUs), and recorded as ``out of memory (predicted N GB > available M GB)``, M being the
usable part.  The paper's Table 1 marks such cells "-".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..errors import bad_value

GB = 1e9
MB = 2**20  # the measurements are in MiB
DEFAULT_SAFETY = 0.8


@dataclass(frozen=True)
class LinearFit:
    """memory_mb = intercept_mb + slope_mb_per_px x pixels."""

    intercept_mb: float
    slope_mb_per_px: float
    points: int

    def __call__(self, pixels: float) -> float:
        return self.intercept_mb + self.slope_mb_per_px * pixels


@dataclass(frozen=True)
class Verdict:
    """The guard's decision for one run (``predicted_mb`` is None without measurements)."""

    run: bool
    predicted_mb: float | None
    usable_mb: float

    @property
    def status(self) -> str:
        if self.run:
            return "ok"
        return (f"out of memory (predicted {(self.predicted_mb or 0.0) * MB / GB:.1f} GB > "
                f"available {self.usable_mb * MB / GB:.1f} GB)")


def fit(points: Sequence[tuple[float, float]]) -> LinearFit | None:
    """Least-squares line through ``(pixels, memory_mb)`` points; proportional from one point;
    None without points.  A negative slope (noise at equal sizes) is raised to the proportional
    slope of the largest point, so a prediction never shrinks with size."""
    pts = sorted((float(p), float(m)) for p, m in points)
    if not pts:
        return None
    if any(p <= 0 or m < 0 for p, m in pts):
        raise bad_value("points", pts, "pixels must be > 0 and memory >= 0")
    if len(pts) == 1 or len({p for p, _ in pts}) == 1:
        p, m = pts[-1]
        return LinearFit(0.0, max(m for _, m in pts) / p, len(pts))
    n = len(pts)
    mp = sum(p for p, _ in pts) / n
    mm = sum(m for _, m in pts) / n
    slope = sum((p - mp) * (m - mm) for p, m in pts) / sum((p - mp) ** 2 for p, _ in pts)
    if slope <= 0:
        p, m = pts[-1]
        return LinearFit(0.0, m / p, n)
    return LinearFit(mm - slope * mp, slope, n)


def guard(points: Sequence[tuple[float, float]], pixels: float, available_mb: float,
          safety: float = DEFAULT_SAFETY, baseline_mb: float = 0.0) -> Verdict:
    """Whether a run of ``pixels`` fits in ``safety x available_mb`` by the fit of ``points``
    (``(pixels, peak_mb)``) above ``baseline_mb``, the process's memory before the image."""
    if not 0 < safety <= 1:
        raise bad_value("safety", safety, "must be in (0, 1]")
    base = min([baseline_mb, *(m for _, m in points)]) if points else baseline_mb
    line = fit([(p, m - base) for p, m in points])
    usable = safety * available_mb
    if line is None:
        return Verdict(True, None, usable)
    predicted = base + line(pixels)
    return Verdict(predicted <= usable, predicted, usable)
