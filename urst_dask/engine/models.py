"""One model per process: tasks carry a small :class:`ModelSpec`; :func:`get_model` loads the
network the first time a process needs it and reuses it afterwards (thread-safe), so weights
are never pickled into tasks.  The cache follows the weight files (their size and modification
time): a checkpoint rewritten at the same path, retrained say, is loaded afresh on a worker that
stayed up.  ``LOADS`` counts real loads in this process (tests use it)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..io.weights import files_stamp
from ..models import load_model, method_entry
from ..models.base import StyleModel, weights_sha256
from ..settings import DeviceKind
from .device import resolve_device
from .process import use_task_threads

_lock = threading.Lock()
_models: dict[tuple["ModelSpec", str], StyleModel] = {}  # (spec, files stamp) -> network
LOADS: dict[str, int] = {}


@dataclass(frozen=True)
class ModelSpec:
    """Which network to run where: a few strings, cheap to send with every task.

    ``files_digest``: the sha256 of the weight files the caller read
    (:func:`urst_dask.io.weights.network_digest`).  Graph keys are tokens of the spec, so with it
    the results of a checkpoint since rewritten at the same path (a persisted ``stylize_array``
    before a retrain) are never taken for the new one's.  The cache here follows the files
    themselves, whatever the digest says."""

    method: str
    weights_dir: str
    variant: str | None = None
    device: DeviceKind = DeviceKind.AUTO
    files_digest: str = ""

    def network(self) -> "ModelSpec":
        """The spec without its digest: which network, whatever the files' contents."""
        return replace(self, files_digest="")


def _check_user_files(spec: ModelSpec) -> None:
    """Refuse, on this worker, user weight files (no catalogue sha256 to verify them by) whose
    contents are not those the run read (``spec.files_digest``): a worker on another machine,
    or in another folder, can see another file at the same path."""
    from ..errors import WeightsError
    from ..io.weights import files_record, network_digest

    files = method_entry(spec.method).weights(spec.variant)
    if not spec.files_digest or all(wf.sha256 for wf in files):
        return
    try:
        here = network_digest(files_record(Path(spec.weights_dir), files))
    except OSError:  # missing or unreadable: the load names the file
        return
    if here != spec.files_digest:
        shown = ", ".join(repr(str(Path(spec.weights_dir) / wf.relpath)) for wf in files if not wf.sha256)
        raise WeightsError(f"weights file {shown} on this worker is not the one the run checked (weight files "
                           f"sha256 {here[:12]}, not {spec.files_digest[:12]}): give every worker the same file")


def _load(spec: ModelSpec) -> StyleModel:
    """:func:`load_model`, with torch's multi-line strict-loading error (a checkpoint with the
    wrong keys or shapes) turned into one :class:`~urst_dask.errors.WeightsError` line."""
    _check_user_files(spec)
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


def _files(spec: ModelSpec) -> str:
    """The :func:`~urst_dask.io.weights.files_stamp` of ``spec``'s weight files now (a few
    ``stat`` calls); ``""`` where they cannot be listed, for :func:`_load` to report."""
    try:
        return files_stamp(Path(spec.weights_dir), method_entry(spec.method).weights(spec.variant))
    except Exception:  # noqa: BLE001 - an unknown method or variant: the load says which
        return ""


def get_model(spec: ModelSpec) -> StyleModel:
    """The process's model for ``spec``, loaded on first use and again when its weight files
    changed on disk (the network loaded from the old files is dropped).  Every network task
    comes here first: the calling thread takes the worker's planned torch threads."""
    use_task_threads()
    key = (spec, _files(spec))
    model = _models.get(key)
    if model is not None:
        return model
    with _lock:
        model = _models.get(key)
        if model is None:
            for old in [k for k in _models if k[0].network() == spec.network()]:
                del _models[old]
                _tokens.pop(old, None)
            model = _load(spec)
            # channels_last: oneDNN's fast path for these thin convolutions (5.5x on a 2-core Xeon)
            model = model.to(device=resolve_device(spec.device), memory_format=torch.channels_last)  # type: ignore[call-overload]
            _models[key] = model
            LOADS[spec.method] = LOADS.get(spec.method, 0) + 1
    return model


def load_count(method: str | None = None) -> int:
    """Number of model loads this process made (for one method, or in total)."""
    return LOADS.get(method, 0) if method else sum(LOADS.values())


_tokens: dict[tuple["ModelSpec", str], str] = {}


def weights_token(spec: ModelSpec) -> str:
    """A sha256 of the network ``spec`` names as loaded in this process (method, variant, every
    parameter and buffer), computed once per process; keys caches of what the weights produce
    (:mod:`urst_dask.io.stylecache`)."""
    key = (spec, _files(spec))
    token = _tokens.get(key)
    if token is None:
        token = _tokens[key] = weights_sha256(f"{spec.method}|{spec.variant}", get_model(spec))
    return token
