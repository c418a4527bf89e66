"""How each frame of a sequence gets its normalization statistics.

* ``per-frame`` (the paper): each frame's own thumbnail statistics.
* ``shot``: one :class:`NormStats` per shot, collected from a mosaic of ``shot_frames``
  frames spread over the shot (first and last included): their thumbnails, each at the
  thumbnail size, side by side in a grid of ``ceil(sqrt(k))`` columns.  Every frame of a
  shot gets exactly the same statistics, so they cannot flicker.
* ``ema``: an exponential moving average over time, reset at each cut.  The averaged
  quantities are the *moments* of each normalization point, never the derived matrices:

  - ``mean`` (mu) - averaged as it is;
  - ``std`` (IN/AdaIN points, ``sqrt(var + eps)``) - through ``q = std**2 + mu**2``, the
    second moment (plus the constant eps);
  - ``whiten`` (WCT points, ``W = (cov + I)^(-1/2)``) - through
    ``S = W^(-2) + mu mu^T = cov + I + mu mu^T``, the second-moment matrix;
  - any other field (e.g. LinearWCT's learned ``cmatrix``) - averaged as it is.

  With ``m_t`` the moments of frame ``t``'s own statistics and ``d`` = ``ema_decay``:
  ``M_t = m_t`` at the first frame of a shot, ``M_t = d M_{t-1} + (1 - d) m_t`` after it.
  The frame's statistics are re-derived from ``M_t``: ``mu = M.mean``,
  ``std = sqrt(q - mu**2)``, ``W = (S - mu mu^T)^(-1/2)`` (symmetric eigendecomposition,
  eigenvalues below 1e-5 dropped as in :func:`urst_dask.kernels.whitening_matrix`).  So
  the averaged covariance is the covariance of the exponentially weighted mixture of the
  frames' features, and the whitening is recomputed from it.

Pure numpy; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..errors import ParameterError, ParameterTypeError, bad_value
from ..settings import FrameFormat, _Choice
from ..stats import NormStats
from .cuts import DEFAULT_THRESHOLD

EIG_EPS = 1e-5
Moments = dict[str, dict[str, np.ndarray]]


class StatsPolicy(_Choice):
    PER_FRAME = "per-frame"
    SHOT = "shot"
    EMA = "ema"


@dataclass(frozen=True)
class VideoOptions:
    """The video-specific settings: statistics policy, cuts, scheduling, output encoding."""

    stats_policy: StatsPolicy = StatsPolicy.SHOT
    ema_decay: float = 0.9
    cut_threshold: float = DEFAULT_THRESHOLD
    shot_frames: int = 4  # frames in a shot's mosaic
    in_flight: int = 3  # frames in flight at once
    format: FrameFormat | None = None  # output frame format (folder outputs); default: the input's, else png
    codec: str = "libx264"
    crf: int = 16
    pix_fmt: str = "yuv420p"
    fps: float | None = None  # frame rate of a video made from frames (default 24)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stats_policy", StatsPolicy.parse(self.stats_policy, "stats_policy"))
        if self.format is not None:
            object.__setattr__(self, "format", FrameFormat.parse(self.format, "format"))
        for name in ("codec", "pix_fmt"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ParameterTypeError(f"{name}={getattr(self, name)!r}: must be an FFmpeg name (a string)")
        for name, lo, hi in (("ema_decay", 0.0, 0.9999), ("cut_threshold", 0.0, 1.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
                raise bad_value(name, v, f"must be a number in [{lo}, {hi}]")
            object.__setattr__(self, name, float(v))
        for name, lo, hi in (("shot_frames", 1, 64), ("in_flight", 1, 256), ("crf", 0, 51)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise bad_value(name, v, f"must be an integer in [{lo}, {hi}]")
        if self.fps is not None and (isinstance(self.fps, bool) or not isinstance(self.fps, (int, float))
                                     or not 0 < self.fps <= 1000):
            raise bad_value("fps", self.fps, "must be a number of frames per second in (0, 1000]")


def _sym_power(m: np.ndarray, power: float, eps: float = 0.0) -> np.ndarray:
    m = 0.5 * (m + m.T)
    evals, evecs = np.linalg.eigh(m)
    keep = evals >= max(eps, 1e-300)
    vals = np.where(keep, np.where(keep, evals, 1.0) ** power, 0.0)
    return (evecs * vals[None, :]) @ evecs.T


def moments(stats: NormStats) -> Moments:
    """The averaged quantities of each point (see the module docstring), float64."""
    out: Moments = {}
    for point in stats.points():
        fields = {k: np.asarray(v, np.float64) for k, v in stats[point].items()}
        mu = fields.get("mean")
        m: dict[str, np.ndarray] = {}
        for name, v in fields.items():
            if name == "std" and mu is not None:
                m["std"] = v**2 + mu**2
            elif name == "whiten" and mu is not None:
                m["whiten"] = _sym_power(v, -2.0) + np.outer(mu, mu)
            else:
                m[name] = v
        out[point] = m
    return out


def blend(state: Moments, new: Moments, decay: float) -> Moments:
    """``decay * state + (1 - decay) * new``, point by point and field by field."""
    if set(state) != set(new):
        raise ParameterError(f"ema: statistics points differ between frames: {sorted(state)} vs {sorted(new)}")
    return {p: {f: decay * state[p][f] + (1.0 - decay) * new[p][f] for f in new[p]} for p in new}


def from_moments(state: Moments, like: NormStats) -> NormStats:
    """The statistics re-derived from averaged moments (dtypes and shapes as in ``like``)."""
    entries: dict[str, dict[str, np.ndarray]] = {}
    for point in like.points():
        ref = like[point]
        m = state[point]
        mu = m.get("mean")
        fields: dict[str, np.ndarray] = {}
        for name, v in m.items():
            if name == "std" and mu is not None:
                v = np.sqrt(np.maximum(v - mu**2, 0.0))
            elif name == "whiten" and mu is not None:
                v = _sym_power(v - np.outer(mu, mu), -0.5, EIG_EPS)
            fields[name] = v.astype(ref[name].dtype).reshape(ref[name].shape)
        entries[point] = fields
    return NormStats.build(like.method, entries)


def ema_sequence(raw: list[NormStats], starts: set[int], decay: float, state: Moments | None = None
                 ) -> tuple[list[NormStats], list[Moments]]:
    """The ema statistics of consecutive frames with own statistics ``raw``; a frame whose
    index is in ``starts`` begins a shot (its state is its own moments); ``state`` is the
    moments before ``raw[0]`` (``None``: frame 0 starts a shot).  Returns the statistics and
    the state after each frame."""
    out, states = [], []
    for i, stats in enumerate(raw):
        m = moments(stats)
        start = state is None or i in starts
        state = m if (start or state is None) else blend(state, m, decay)
        states.append(state)
        out.append(stats if start else from_moments(state, stats))  # a shot's first frame: its own, exactly
    return out, states


def flatten(state: Moments) -> dict[str, np.ndarray]:
    return {f"{p}/{f}": v for p, fields in state.items() for f, v in fields.items()}


def unflatten(flat: Mapping[str, np.ndarray]) -> Moments:
    out: Moments = {}
    for key, v in flat.items():
        p, _, f = key.partition("/")
        out.setdefault(p, {})[f] = np.asarray(v, np.float64)
    return out
