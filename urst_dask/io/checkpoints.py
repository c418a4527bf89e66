"""Writing trained checkpoints, and the record that lets a trained file pass verification.

A network fine-tuned by ``urst-dask train`` is saved in its method's own file layout (the
same names the loader expects, e.g. ``microast/decoder_iter_160000.pth.tar``), so its sha256
no longer matches the upstream file's.  Beside each file the trainer writes
``<file>.trained.json`` with the file's own sha256 and where it came from; the weights
verification (:func:`urst_dask.io.weights.verify_file`) accepts a file whose digest matches
that record.  The check still catches a corrupt or swapped file: the record names the
exact bytes that were written.

Every file is written to a temporary name in the same folder and renamed into place, so a
crash never leaves a half-written checkpoint under the real name.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .digest import sha256_file
from .filemode import as_umask_allows

RECORD_SUFFIX = ".trained.json"


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        as_umask_allows(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_tensors(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` of a state dict (or any weights_only-loadable structure), atomically."""
    p = Path(path)
    _atomic(p, lambda f: torch.save(obj, f))
    return p


def load_tensors(path: str | os.PathLike[str]) -> Any:
    """``torch.load(weights_only=True)`` on the CPU."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)


def save_trained(state_dict: dict[str, torch.Tensor], path: str | os.PathLike[str], record: dict[str, Any]) -> Path:
    """Save a trained state dict at ``path`` and its ``.trained.json`` record (digest + ``record``)."""
    p = save_tensors(state_dict, path)
    doc = {**record, "file": p.name, "sha256": sha256_file(p)}
    _atomic(p.with_name(p.name + RECORD_SUFFIX), lambda f: f.write((json.dumps(doc, indent=1) + "\n").encode()))
    return p


def trained_digest(path: str | os.PathLike[str]) -> str | None:
    """The sha256 recorded for a trained file, or ``None`` without a (readable) record."""
    rec = Path(path).with_name(Path(path).name + RECORD_SUFFIX)
    try:
        doc = json.loads(rec.read_text())
    except (OSError, ValueError):
        return None
    digest = doc.get("sha256") if isinstance(doc, dict) else None
    return digest if isinstance(digest, str) else None


def append_jsonl(path: str | os.PathLike[str], entry: dict[str, Any]) -> None:
    """Append one JSON line (the training log)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def trim_jsonl(path: str | os.PathLike[str], step: int) -> None:
    """Keep the training log's lines up to ``step`` (the resumed state's): the steps after it
    are trained again and logged again, not twice."""
    path = Path(path)
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [ln for ln in lines if ln.strip() and _step_of(ln) <= step]
    if len(kept) != len(lines):
        path.write_text("".join(kept), encoding="utf-8")


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):
        return 0
