"""One model per process: tasks carry a small :class:`ModelSpec`; :func:`get_model` loads the
network the first time a process needs it and reuses it afterwards (thread-safe), so weights
are never pickled into tasks.  ``LOADS`` counts real loads in this process (tests use it)."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from ..models import load_model
from ..models.base import StyleModel, weights_sha256
from ..settings import DeviceKind
from .device import resolve_device

_lock = threading.Lock()
_models: dict["ModelSpec", StyleModel] = {}
LOADS: dict[str, int] = {}


@dataclass(frozen=True)
class ModelSpec:
    """Which network to run where: a few strings, cheap to send with every task.  ``files``:
    the weight files' :func:`~urst_dask.io.weights.files_stamp` as the client saw them, so that a
    checkpoint rewritten at the same path is a new key of this process's model cache."""

    method: str
    weights_dir: str
    variant: str | None = None
    device: DeviceKind = DeviceKind.AUTO
    files: str = ""


def _load(spec: ModelSpec) -> StyleModel:
    """:func:`load_model`, with torch's multi-line strict-loading error (a checkpoint with the
    wrong keys or shapes) turned into one :class:`~urst_dask.errors.WeightsError` line."""
    try:
        return load_model(spec.method, Path(spec.weights_dir), spec.variant)
    except RuntimeError as exc:
        from ..io.weights import state_dict_mismatch
        from ..models import method_entry

        entry = method_entry(spec.method)
        paths = [Path(spec.weights_dir) / wf.relpath for wf in entry.weights(spec.variant)]
        arg = None if entry.takes_style_image else f"style={spec.variant!r}"
        error = state_dict_mismatch(exc, paths, spec.method, arg)
        if error is None:
            raise
        raise error from None


def get_model(spec: ModelSpec) -> StyleModel:
    """The process's model for ``spec``, loaded on first use."""
    model = _models.get(spec)
    if model is not None:
        return model
    with _lock:
        model = _models.get(spec)
        if model is None:
            # a checkpoint rewritten in place: the network loaded from its old files goes
            for old in [s for s in _models if dataclasses.replace(s, files=spec.files) == spec]:
                del _models[old]
                _tokens.pop(old, None)
            model = _load(spec)
            # channels_last: oneDNN's fast path for these thin convolutions (5.5x on a 2-core Xeon)
            model = model.to(device=resolve_device(spec.device), memory_format=torch.channels_last)  # type: ignore[call-overload]
            _models[spec] = model
            LOADS[spec.method] = LOADS.get(spec.method, 0) + 1
    return model


def load_count(method: str | None = None) -> int:
    """Number of model loads this process made (for one method, or in total)."""
    return LOADS.get(method, 0) if method else sum(LOADS.values())


_tokens: dict["ModelSpec", str] = {}


def weights_token(spec: ModelSpec) -> str:
    """A sha256 of the network ``spec`` names as loaded in this process (method, variant, every
    parameter and buffer), computed once per process; keys caches of what the weights produce
    (:mod:`urst_dask.io.stylecache`)."""
    token = _tokens.get(spec)
    if token is None:
        token = _tokens[spec] = weights_sha256(f"{spec.method}|{spec.variant}", get_model(spec))
    return token
