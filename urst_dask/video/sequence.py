"""What a video run reads and writes: the input sequence and the output, with its metadata.

Inputs: a folder or glob of frames, a (T, H, W, C) Zarr store, or a video file (decoded
once into ``input.zarr`` in the run's records, so frames can be read in any order and by
any worker).  Outputs, by the path given: ``*.zarr`` a (T, H, W, C) frame store (metadata
in its attributes); a video suffix (``.mp4``, ``.mov``, ``.mkv``...) a video file
(metadata in ``<out>.json``); anything else a frame folder (metadata in
``<out>/urst_video.json``), frames named as the input's with the format's suffix.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..errors import InputImageError, OutputError
from ..io import frames as frame_io
from ..io import framestore
from ..io import video as video_io
from ..io.readers import input_identity
from ..io.store import zarr_node_type
from ..io.targets import check_folder, check_not_input, check_not_picture
from .tasks import FrameRef

SIDECAR = "urst_video.json"


@dataclass(frozen=True)
class Sequence:
    """The frames of a run's input (``refs`` in order; ``shape`` (H, W, C))."""

    kind: str  # "files", "zarr" or "video"
    path: str
    refs: tuple[FrameRef, ...]
    shape: tuple[int, int, int]
    dtype: str
    rate: Fraction | None = None
    fmt: str | None = None  # the input frames' format (files)
    identity: dict[str, Any] = field(default_factory=dict)
    files: tuple[tuple[int, int], ...] = ()  # each frame file's (size, mtime_ns)

    def __len__(self) -> int:
        return len(self.refs)

    @property
    def files_sha256(self) -> str:
        """The digest of every frame file's size and mtime (empty for a Zarr or video input)."""
        return hashlib.sha256(json.dumps(self.files).encode()).hexdigest() if self.files else ""

    def out_stem(self, t: int) -> str:
        """Frame ``t``'s output name without suffix: the input frame's stem, or (Zarr, video)
        the input's stem and the zero-padded index."""
        if self.kind == "files":
            return Path(self.refs[t].name).stem
        return f"{Path(self.path).stem}_{t:06d}"


def open_sequence(content: str | os.PathLike[str], work: Path) -> Sequence:
    """Describe ``content``; a video input's frames are referenced in ``work`` (the Zarr
    :func:`decode_video` fills)."""
    text = str(content)
    p = Path(text)
    if video_io.is_video(p):
        info = video_io.probe(p)
        if info.frames < 1:
            raise InputImageError(f"video={text!r}: has no frames")
        shape3 = (info.height, info.width, 3)
        refs = tuple(FrameRef("zarr", str(work), t, f"{p.name}#{t}", shape3) for t in range(info.frames))
        st = p.stat()
        return Sequence("video", text, refs, (info.height, info.width, 3), "uint8", info.rate, None,
                        {"path": str(p.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "frames": info.frames})
    if p.is_dir() and zarr_node_type(p) is not None:
        shape, dtype = framestore.open_zarr_frames(p)
        refs = tuple(FrameRef("zarr", str(p), t, f"{p.name}[{t}]", shape[1:]) for t in range(shape[0]))
        return Sequence("zarr", text, refs, shape[1:], dtype, None, None,
                        {**input_identity(p), "shape": list(shape), "dtype": dtype})
    if not p.exists() and not glob.has_magic(text):
        raise InputImageError(f"frames={text!r}: no such file or folder")
    files = frame_io.open_frames(text)
    refs = tuple(FrameRef("file", f, t, Path(f).name, files.shape) for t, f in enumerate(files.paths))
    fmt = frame_io.SUFFIXES[Path(files.paths[0]).suffix.lower()]
    stats = [os.stat(f) for f in files.paths]
    resolved = hashlib.sha256("\0".join(str(Path(f).resolve()) for f in files.paths).encode()).hexdigest()
    return Sequence("files", text, refs, files.shape, files.dtype, None, fmt,
                    {"names": list(files.names), "paths_sha256": resolved, "shape": list(files.shape),
                     "dtype": files.dtype}, tuple((st.st_size, st.st_mtime_ns) for st in stats))


def input_folder(seq: Sequence) -> str:
    """The path an output must stay out of (the frames' folder, the store, the video file)."""
    return str(Path(seq.refs[0].path).parent) if seq.kind == "files" else seq.path


def decode_video(seq: Sequence, work: Path) -> Sequence:
    """Decode a video input into ``work`` once (kept across a resumed run); the sequence,
    cut to the frames the decoder actually produced."""
    attrs = framestore.zarr_attrs(work) if work.exists() else {}
    if attrs.get("status") != "complete":
        framestore.create_frames_zarr(work, (len(seq),) + seq.shape, "uint8", {"source": seq.path})
        n = 0
        for n, frame in enumerate(video_io.decode(seq.path), start=1):
            if n > len(seq):
                break
            framestore.write_zarr_frame(work, n - 1, frame)
        framestore.set_zarr_attrs(work, {"source": seq.path, "frames": n, "status": "complete"})
    n = int(framestore.zarr_attrs(work).get("frames", len(seq)))
    return Sequence(seq.kind, seq.path, seq.refs[:n], seq.shape, seq.dtype, seq.rate, seq.fmt, seq.identity, seq.files)


@dataclass(frozen=True)
class Output:
    """Where a run writes: ``kind`` ``"folder"``, ``"zarr"`` or ``"video"``."""

    kind: str
    path: Path
    fmt: str | None = None  # frame format of a folder output

    @property
    def sidecar(self) -> Path | None:
        if self.kind == "folder":
            return self.path / SIDECAR
        if self.kind == "video":
            return self.path.with_name(self.path.name + ".json")
        return None

    def frame_path(self, stem: str) -> Path:
        return self.path / frame_io.output_name(stem, self.fmt or "png")

    def read_meta(self) -> dict[str, Any] | None:
        if self.kind == "zarr":
            return (framestore.zarr_attrs(self.path) or None) if self.path.exists() else None
        return framestore.read_json(self.sidecar) if self.sidecar and self.sidecar.exists() else None

    def write_meta(self, meta: dict[str, Any]) -> None:
        if self.kind == "zarr":
            framestore.set_zarr_attrs(self.path, meta)
        else:
            framestore.write_json(self.sidecar, meta)  # type: ignore[arg-type]


def plan_output(out: str | os.PathLike[str], seq: Sequence, fmt: str | None) -> Output:
    """The output for ``out``, checked against the input (never inside it)."""
    p = Path(out)
    check_not_input(p, input_folder(seq))
    check_folder(p, str(out))
    if p.suffix.lower() == ".zarr":
        return Output("zarr", p)
    if video_io.is_video(p):
        return Output("video", p)
    check_not_picture(out, "a folder of frames, a .zarr or a video file (.mp4, .mov, .mkv...)")
    if p.exists() and not p.is_dir():
        raise OutputError(f"output={str(out)!r}: exists and is not a folder; give a folder, a .zarr or a video file")
    seen: dict[str, str] = {}
    for t, ref in enumerate(seq.refs):  # two inputs written to one file would lose a frame
        other = seen.setdefault(seq.out_stem(t).casefold(), ref.path)
        if other != ref.path:
            raise OutputError(f"output={str(out)!r}: frames {other!r} and {ref.path!r} would both be written as "
                              f"{seq.out_stem(t)}.*; rename one, or write a .zarr or a video file")
    chosen = fmt or (seq.fmt if seq.fmt and seq.fmt != "jpg" or seq.dtype == "uint8" else None) or \
        ("png" if seq.dtype in ("uint8", "uint16") else "tif")
    return Output("folder", p, frame_io.check_format(chosen, seq.dtype))


def check_replace(output: Output, fingerprint: str, overwrite: bool, files_sha256: str = "") -> str:
    """``"complete"`` (this run finished already, on the same frame files: ``files_sha256``),
    ``"resume"``/``"new"``; an output from another run (or anything unknown in its place) is
    refused unless ``overwrite``, which always makes a ``"new"`` run."""
    meta = output.read_meta()
    if meta and meta.get("fingerprint") == fingerprint and not overwrite:
        if meta.get("status") != "complete":
            return "resume"
        if (meta.get("input") or {}).get("files_sha256", "") == files_sha256:
            return "complete"
    if output.kind in ("zarr", "folder") and output.path.is_file():
        want = "a Zarr store" if output.kind == "zarr" else "a folder of frames"
        raise OutputError(f"output={str(output.path)!r}: already exists and is a file, not {want}; --overwrite "
                          f"replaces only what a video run writes: remove it yourself or choose another name")
    exists = output.path.exists() and (output.kind != "folder" or any(output.path.iterdir()))
    if exists and not overwrite:
        what = "from a different run (input, style, weights or settings differ)" if meta else "and is not a urst-dask video output"
        raise OutputError(f"output={str(output.path)!r}: already exists {what}; pass --overwrite to replace it")
    return "new"


def stale_records(state: framestore.RunState, seq: Sequence) -> bool:
    """Whether a resumed run's records used a frame file that has changed since (its size or
    mtime); records the files as they are now.  A frame never probed (one that could not be
    read, fixed since) may change."""
    before = state.load_record("files") or {}
    old = before.get("files") or []
    state.save_record("files", {"files": [list(f) for f in seq.files]})
    for t, now in enumerate(seq.files):
        if t < len(old) and list(now) != list(old[t]) and state.load_arrays("probe", f"{t:06d}") is not None:
            return True
    return False


def remove_previous(output: Output) -> None:
    """Before an ``overwrite``: the frame files the folder's sidecar lists (those its run
    wrote, and nothing else) are removed, so no frame of that run stays beside the new ones."""
    if output.kind != "folder" or not output.path.is_dir():
        return
    meta = output.read_meta() or {}
    names = list(meta.get("files") or [])
    for name in names:
        q = output.path / str(name)
        if str(name) == Path(str(name)).name and not str(name).startswith(".") and q.is_file() and not q.is_symlink():
            q.unlink()


def iter_frames(path: str | os.PathLike[str]):
    """The frames of a folder/glob, (T, H, W, C) Zarr or video file, in order, one at a time."""
    from .tasks import load

    if video_io.is_video(path):
        video_io.probe(path)  # a file without a video stream is refused here, with its name
        yield from video_io.decode(path)
        return
    seq = open_sequence(path, Path(os.devnull))
    for ref in seq.refs:
        yield load(ref)


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The video metadata of a finished output (folder sidecar, ``<video>.json`` or Zarr
    attributes); empty for anything else."""
    p = Path(path)
    if p.suffix.lower() == ".zarr":
        return framestore.zarr_attrs(p) if p.exists() else {}
    side = p / SIDECAR if p.is_dir() else p.with_name(p.name + ".json")
    return framestore.read_json(side) or {} if side.exists() else {}
