"""Explicit, frozen, serializable statistics passed into every forward pass.

:class:`NormStats` holds the normalization statistics collected from the thumbnail, one
entry per normalization point (``"level5"``, ``"in1"``...), each a few named float arrays
(``mean``, ``std``, ``whiten``...).  :class:`StyleCode` holds a prepared style the same way.
Both are immutable (read-only numpy arrays in tuples), picklable, hash to a stable token,
and flatten to ``{"point/field": array}`` for storage next to the output.

A forward pass asks a *source* for the statistics at each normalization point:
:class:`FrozenSource` returns the thumbnail's, :class:`InstanceSource` computes the
window's own (plain IN), and :class:`RecordingSource` computes and records them (the
thumbnail pass).  Sources live for one call, so nothing is mutated on layers.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Protocol, Self

import numpy as np
import torch
from torch import Tensor

from .errors import ParameterError, ParameterTypeError

Fields = Mapping[str, np.ndarray]


def _freeze(where: str, a: object) -> np.ndarray:
    """A read-only copy of ``a`` that owns its data (nothing else can change it)."""
    if isinstance(a, np.ndarray) and not a.flags.writeable and a.base is None:
        return a  # frozen already (by build, before dataclasses.replace)
    try:
        arr = np.array(a, copy=True)
    except (TypeError, ValueError) as exc:  # ragged lists, objects numpy cannot hold
        raise ParameterTypeError(f"{where}: statistics must be numeric arrays ({exc})") from None
    if arr.dtype.kind not in "fiu":
        raise ParameterTypeError(f"{where}: statistics must be numeric arrays, got dtype {arr.dtype}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class _Table:
    method: str
    entries: tuple[tuple[str, tuple[tuple[str, np.ndarray], ...]], ...]

    def __post_init__(self) -> None:
        """Made directly, as by :meth:`build`: the method a string, the entries
        ``((point, ((field, array), ...)), ...)`` and every array a read-only copy."""
        name = type(self).__name__
        if not isinstance(self.method, str):
            raise ParameterTypeError(f"{name}: method={self.method!r}: must be a method name (str)")
        try:
            entries = tuple((str(point), tuple((str(f), _freeze(f"{name} {point}/{f}", v)) for f, v in fields))
                            for point, fields in self.entries)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ParameterTypeError):
                raise
            raise ParameterTypeError(f"{name}: entries must be ((point, ((field, array), ...)), ...); "
                                     f"got {type(self.entries).__name__} ({exc})") from None
        object.__setattr__(self, "entries", entries)

    @classmethod
    def build(cls, method: str, mapping: Mapping[str, Fields]) -> Self:
        """Make a table from ``{point: {field: array}}`` (arrays are copied and frozen)."""
        name = cls.__name__
        if not isinstance(mapping, Mapping) or not all(isinstance(f, Mapping) for f in mapping.values()):
            shown = type(mapping).__name__ if not isinstance(mapping, Mapping) else "a mapping of non-mappings"
            raise ParameterTypeError(f"{name}: expected {{point: {{field: array}}}}, got {shown}")
        entries = tuple(
            (str(point), tuple((str(f), _freeze(f"{name} {point}/{f}", v)) for f, v in sorted(fields.items())))
            for point, fields in mapping.items()
        )
        return cls(method=method, entries=entries)

    def __getitem__(self, point: str) -> dict[str, np.ndarray]:
        for name, fields in self.entries:
            if name == point:
                return dict(fields)
        raise KeyError(f"{type(self).__name__} for {self.method!r} has no point {point!r}; has {self.points()}")

    def __contains__(self, point: object) -> bool:
        return any(name == point for name, _ in self.entries)

    def points(self) -> list[str]:
        """The normalization points' names, in the network's order."""
        return [name for name, _ in self.entries]

    def __iter__(self) -> Iterator[str]:
        return iter(self.points())

    def tensors(self, point: str, device: torch.device | str = "cpu") -> dict[str, Tensor]:
        """The fields of one point as tensors on ``device`` (dtype kept)."""
        return {k: torch.from_numpy(np.array(v)).to(device) for k, v in self[point].items()}

    def to_flat(self) -> dict[str, np.ndarray]:
        """``{"point/field": array}``, for storage in Zarr arrays."""
        return {f"{p}/{f}": v for p, fields in self.entries for f, v in fields}

    @classmethod
    def from_flat(cls, method: str, flat: Mapping[str, np.ndarray]) -> Self:
        """The table of :meth:`to_flat`'s ``{"point/field": array}`` (arrays copied and frozen)."""
        if not isinstance(flat, Mapping):
            raise ParameterTypeError(f"{cls.__name__}: expected {{'point/field': array}}, got {type(flat).__name__}")
        grouped: dict[str, dict[str, np.ndarray]] = {}
        for key, value in flat.items():
            point, _, field = key.partition("/")
            if not field:
                raise ParameterError(f"{cls.__name__}: key {key!r} is not of the form 'point/field'")
            grouped.setdefault(point, {})[field] = np.asarray(value)
        return cls.build(method, grouped)

    def token(self) -> str:
        """A stable sha256 of the contents (method, names, dtypes, shapes, bytes)."""
        h = hashlib.sha256(self.method.encode())
        for point, fields in self.entries:
            h.update(point.encode())
            for f, v in fields:
                h.update(f"{f}{v.dtype.str}{v.shape}".encode())
                h.update(np.ascontiguousarray(v).tobytes())
        return h.hexdigest()

    def __dask_tokenize__(self) -> str:
        return f"{type(self).__name__}-{self.token()}"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.token() == self.token()

    def __hash__(self) -> int:
        return hash(self.token())

    def nbytes(self) -> int:
        """The arrays' bytes (what a worker holds of these statistics)."""
        return sum(v.nbytes for _, fields in self.entries for _, v in fields)


@dataclass(frozen=True, eq=False)
class NormStats(_Table):
    """Normalization statistics of every normalization point, from the thumbnail.

    ``network``: the sha256 of the weight files that collected them
    (:func:`urst_dask.io.weights.network_digest`), where known: :func:`urst_dask.io.store.read_stats`
    takes it from the store's record, and a run given these statistics refuses them when its own
    weights differ (two johnson styles record the same points and shapes, and the other style's
    statistics made a black picture).  ``conditions``: likewise the :func:`style_conditions` of
    that run (another style's statistics gave a 6 dB picture).  ``None`` (built by hand): not
    checked.  Neither is part of :meth:`token` or equality, which are the statistics' values.
    """

    network: str | None = None
    conditions: str | None = None  # :func:`style_conditions` of the run that collected them, where known

    def with_network(self, network: str | None) -> "NormStats":
        """The same statistics, marked as collected by the weight files of digest ``network``."""
        return dataclasses.replace(self, network=network)


def style_conditions(style: Mapping[str, object] | None, options: Mapping[str, object] | None) -> str | None:
    """A digest of what, besides the content and the weights, shapes the statistics past a
    network's first normalization point (a cascade's later levels see the stylized output of
    the earlier ones): the style (its pixels' recorded ``pixels_sha256``, else its ``sha256``,
    of the file for a path and of the pixels for an array, or a baked style's ``name``) and
    the run's ``alpha`` and ``style_size`` (``preserve_color`` acts after the network).
    ``None`` when a record lacks them."""
    if not style or not options:
        return None
    picked = {"style": style.get("pixels_sha256") or style.get("sha256") or style.get("name"), **{k: options.get(k) for k in ("alpha", "style_size")}}
    if any(v is None for v in picked.values()):
        return None
    return hashlib.sha256(repr(sorted(picked.items())).encode()).hexdigest()


class StyleCode(_Table):
    """A prepared style (features' statistics of the style image), shared by all windows."""


Compute = Callable[[Tensor], dict[str, Tensor]]


class StatsSource(Protocol):
    def get(self, point: str, feat: Tensor, compute: Compute) -> dict[str, Tensor]:
        """Statistics for normalization point ``point`` whose input feature map is ``feat``."""
        ...


class FrozenSource:
    """Statistics fixed in advance (TIN): the window's own features are ignored."""

    def __init__(self, stats: NormStats) -> None:
        self.stats = stats

    def get(self, point: str, feat: Tensor, compute: Compute) -> dict[str, Tensor]:
        if point not in self.stats:  # statistics of another network or variant: one line, not a KeyError
            raise ParameterError(f"stats: no statistics for normalization point {point!r} (they have "
                                 f"{self.stats.points()}): collected by another network or variant")
        return self.stats.tensors(point, feat.device)


class InstanceSource:
    """Each window's own statistics (plain instance normalization)."""

    def get(self, point: str, feat: Tensor, compute: Compute) -> dict[str, Tensor]:
        return compute(feat)


class RecordingSource:
    """Computes the statistics of the input (the thumbnail) and records them, in order."""

    def __init__(self) -> None:
        self._seen: dict[str, dict[str, np.ndarray]] = {}

    def get(self, point: str, feat: Tensor, compute: Compute) -> dict[str, Tensor]:
        if point in self._seen:
            raise RuntimeError(f"normalization point {point!r} visited twice in one pass")
        out = compute(feat)
        self._seen[point] = {k: v.detach().cpu().numpy() for k, v in out.items()}
        return out

    def result(self, method: str) -> NormStats:
        return NormStats.build(method, self._seen)
