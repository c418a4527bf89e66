"""(T, H, W, C) Zarr frame stores, and the per-frame records of a video run.

A frame store is a Zarr v3 array of shape (T, H, W, C), chunks (1, <=1024, <=1024, C), so a
frame is written by one task and never shares a chunk with another.  Its attributes
``urst_dask_video`` hold the run's metadata, with ``status`` ``running`` until the last
frame is written.

:class:`RunState` is the folder ``<out>.video-state`` beside any output: ``manifest.json``
(the run's fingerprint), ``probe/<t>.npz`` (each frame's colour histogram and, for the
per-frame and ema policies, its own statistics), ``stats/<key>.npz`` (each statistics value
used), ``done/<t>.json`` (a frame written: its statistics key).  Every record is written to
a temporary name and renamed, so a record that exists is whole; a frame's done record is
written only after the frame itself.  The folder is removed when the run completes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np

from ..errors import InputImageError, OutputError
from ..stats import NormStats
from . import removal
from .failed import write_failed
from .readers.zarrstore import refuse_unfinished

ATTR = "urst_dask_video"
STATE_SUFFIX = ".video-state"


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"output={str(path)!r}: cannot write: {exc.strerror or exc}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """``data`` as JSON at ``path``, atomically."""
    _atomic(path, lambda fh: fh.write(json.dumps(data, indent=1, default=str).encode()))


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ----------------------------------------------------------------------- Zarr frames


def _frames_array(path: str | os.PathLike[str], mode: Literal["r", "r+"] = "r") -> Any:
    import zarr

    node: Any = zarr.open(str(path), mode=mode)
    if isinstance(node, zarr.Group):
        node = node["0"] if "0" in node else None
    return node


def open_zarr_frames(path: str | os.PathLike[str]) -> tuple[tuple[int, int, int, int], str]:
    """Shape (T, H, W, C) and dtype of a Zarr frame store (an array, or a group with array ``0``)."""
    where = f"frames={str(path)!r}"
    try:
        arr = _frames_array(path)
    except Exception as exc:
        raise InputImageError(f"{where}: cannot be opened as Zarr: {exc}") from exc
    if arr is None or arr.ndim != 4 or arr.shape[3] not in (1, 3, 4):
        raise InputImageError(f"{where}: expected a (T, H, W, C) array with C 1, 3 or 4, got "
                              f"{None if arr is None else tuple(arr.shape)}")
    if arr.shape[0] == 0:
        raise InputImageError(f"{where}: has no frames (T = 0)")
    refuse_unfinished(arr, where)
    dtype = np.dtype(arr.dtype)
    if dtype not in (np.uint8, np.uint16, np.float32):
        raise InputImageError(f"{where}: dtype {dtype} not supported (uint8, uint16, float32)")
    return tuple(int(s) for s in arr.shape), str(dtype)  # type: ignore[return-value]


def read_zarr_frame(path: str | os.PathLike[str], t: int) -> np.ndarray:
    """Frame ``t`` of a Zarr frame store, (H, W, C)."""
    try:
        return np.asarray(_frames_array(path)[t])
    except Exception as exc:
        raise InputImageError(f"frames={str(path)!r}: frame {t} cannot be read: {exc}") from exc


def create_frames_zarr(path: str | os.PathLike[str], shape: tuple[int, int, int, int], dtype: str,
                       attrs: Mapping[str, Any]) -> None:
    """A new (T, H, W, C) frame store with status ``running`` (replacing one at ``path``)."""
    import zarr

    p = Path(path)
    removal.clear_leftovers(p)
    if p.exists():  # an interrupted delete must not leave a complete-looking store
        removal.remove_aside(p)
    t, h, w, c = shape
    try:
        arr = zarr.create_array(str(p), shape=shape, chunks=(1, min(h, 1024), min(w, 1024), c), dtype=dtype,
                                fill_value=0, dimension_names=("t", "y", "x", "c"))
        arr.attrs[ATTR] = {**attrs, "status": "running"}
    except OSError as exc:  # a half-made store would be refused by the rerun as someone else's
        shutil.rmtree(p, ignore_errors=True)
        raise write_failed(p, exc, "the frame store", resumes=False) from exc


def write_zarr_frame(path: str | os.PathLike[str], t: int, frame: np.ndarray) -> None:
    try:
        _frames_array(path, "r+")[t] = frame
    except OSError as exc:
        raise OutputError(f"output={str(path)!r}: cannot write frame {t}: {exc.strerror or exc}") from exc


def zarr_attrs(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        return dict(_frames_array(path).attrs.get(ATTR, {}))
    except Exception:
        return {}


def set_zarr_attrs(path: str | os.PathLike[str], attrs: Mapping[str, Any]) -> None:
    """Replace the frame store's run metadata (its status: the completion marker, written last)."""
    try:
        _frames_array(path, "r+").attrs[ATTR] = dict(attrs)
    except OSError as exc:
        raise write_failed(path, exc, "the run's metadata") from exc


# ------------------------------------------------------------------------ run records


class RunState:
    """The records of one video run, in ``<out>.video-state`` (see the module docstring)."""

    def __init__(self, out: str | os.PathLike[str]) -> None:
        p = Path(out).resolve()
        self.root = p.with_name(p.name + STATE_SUFFIX)

    def start(self, fingerprint: str) -> bool:
        """Open the records for ``fingerprint``; ``True`` if an earlier run's records are resumed
        (records of another fingerprint are dropped)."""
        manifest = read_json(self.root / "manifest.json")
        if manifest is not None and manifest.get("fingerprint") == fingerprint:
            return True
        self.remove()
        for sub in ("probe", "stats", "done"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        write_json(self.root / "manifest.json", {"fingerprint": fingerprint})
        return False

    def remove(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)

    def _npz(self, kind: str, name: str) -> Path:
        return self.root / kind / f"{name}.npz"

    def save_arrays(self, kind: str, name: str, arrays: Mapping[str, np.ndarray]) -> None:
        _atomic(self._npz(kind, name), lambda fh: np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()}))  # type: ignore[arg-type]

    def load_arrays(self, kind: str, name: str) -> dict[str, np.ndarray] | None:
        try:
            with np.load(self._npz(kind, name), allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError):
            return None

    def save_stats(self, key: str, stats: NormStats) -> None:
        self.save_arrays("stats", key, {"__method__": np.array(stats.method), **stats.to_flat()})

    def load_stats(self, key: str) -> NormStats | None:
        return _stats_of(self.load_arrays("stats", key))

    def probe_stats(self, t: int) -> NormStats | None:
        """Frame ``t``'s own statistics as its probe saved them (``None``: none saved)."""
        arrays = self.load_arrays("probe", f"{t:06d}")
        if arrays is not None:
            arrays.pop("__hist__", None)
        return _stats_of(arrays)

    def save_record(self, name: str, record: Mapping[str, Any]) -> None:
        """A small JSON record of the run (such as ``precision="auto"``'s choice)."""
        write_json(self.root / f"{name}.json", record)

    def load_record(self, name: str) -> dict[str, Any] | None:
        return read_json(self.root / f"{name}.json")

    def mark_done(self, t: int, record: Mapping[str, Any]) -> None:
        write_json(self.root / "done" / f"{t:06d}.json", record)

    def done(self) -> dict[int, dict[str, Any]]:
        out = {}
        folder = self.root / "done"
        for f in folder.glob("[0-9]*.json") if folder.is_dir() else ():
            rec = read_json(f)
            if rec is not None:
                out[int(f.stem)] = rec
        return out

    def work_path(self, name: str) -> Path:
        return self.root / name


def _stats_of(arrays: dict[str, np.ndarray] | None) -> NormStats | None:
    """The statistics saved by :meth:`RunState.save_stats` (a probe record's too: its histogram removed)."""
    if arrays is None or "__method__" not in arrays:
        return None
    method = str(arrays.pop("__method__"))
    return NormStats.from_flat(method, arrays)


class SavedStats:
    """The first ``n`` frames' statistics, read from the run's records when asked (``stats[t]``):
    their own, as the probes saved them, or (``ema=True``) the moving average saved by
    :meth:`RunState.save_stats` under ``ema-<t>``.  A per-frame or ema run kept every frame's
    in memory to its end (wct16x: 0.64 MB per frame, 6 GB for a 10 000-frame clip)."""

    def __init__(self, state: RunState, n: int, ema: bool = False) -> None:
        self.state, self.n, self.ema = state, n, ema

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, t: int) -> NormStats:
        if not 0 <= t < self.n:
            raise IndexError(t)
        stats = self.state.load_stats(f"ema-{t:06d}") if self.ema else self.state.probe_stats(t)
        if stats is None:  # every probed frame saved its statistics (and every ema frame its average)
            raise OutputError(f"run state {str(self.state.root)!r}: frame {t}'s statistics are missing; rerun with "
                              "--overwrite")
        return stats


StatsList = list[NormStats] | SavedStats  # a run's frames' statistics (per-frame, ema: read back when asked)
