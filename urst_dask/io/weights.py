"""Finding, verifying, loading and fetching pretrained weights.

Resolution order for the weights folder: an explicit path (``--weights``), the
``URST_DASK_WEIGHTS`` environment variable, then the per-user cache
(``$XDG_CACHE_HOME/urst-dask/weights``, default ``~/.cache/urst-dask/weights``).
Inside it each network has a subfolder (``wct16x/e1.pth``...), as in ``shared/weights``.
Every file is checked against its recorded sha256 before ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import pickle
import re
import shutil
import tempfile
import threading
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping
from urllib.parse import urlsplit

import torch

from ..errors import WeightsError
from .digest import sha256_file
from .filemode import as_umask_allows

ENV_VAR = "URST_DASK_WEIGHTS"


@dataclass(frozen=True)
class WeightFile:
    """One checkpoint file: where it sits under the weights folder, its hash and origin."""

    relpath: str  # e.g. "wct16x/e1.pth", or an absolute path for a user's own checkpoint
    sha256: str  # "" for a user's own file: it is loaded (weights_only) but cannot be verified
    url: str | None = None  # public upstream download, if there is one
    what: str = ""  # human description for messages


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "urst-dask" / "weights"


def resolve_weights_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The weights folder to use (explicit > ``URST_DASK_WEIGHTS`` > user cache)."""
    if explicit is not None:
        if not str(explicit):
            raise WeightsError("weights='': an empty path; give the weights folder, or leave --weights out")
        p = Path(explicit).expanduser()
        if not p.is_dir():
            raise WeightsError(f"weights={str(explicit)!r}: not a directory")
        return p
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env).expanduser()
        if not p.is_dir():
            raise WeightsError(f"{ENV_VAR}={env!r}: not a directory")
        return p
    return default_cache_dir()


_digests: dict[tuple[str, int, int], str] = {}  # (resolved path, size, mtime_ns) -> sha256
_digests_lock = threading.Lock()


def files_stamp(root: Path, files: Iterable[WeightFile]) -> str:
    """The weight files as they are on disk now: a digest of each one's path, size and
    modification time (``""`` for a network without files).  A checkpoint rewritten in place,
    such as one retrained to the same path, gets a new stamp, so a worker's model cache
    (:class:`urst_dask.engine.models.ModelSpec`) loads it afresh instead of serving the old one."""
    parts = []
    for wf in files:
        try:
            st = (root / wf.relpath).stat()
            parts.append(f"{wf.relpath}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append(f"{wf.relpath}:missing")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16] if parts else ""


def file_digest(path: Path) -> str:
    """The sha256 of the file at ``path`` as it is now, computed once per (resolved path, size,
    modification time) in this process."""
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        with _digests_lock:
            known = _digests.get(key)
        digest = known or sha256_file(path)
    except OSError as exc:  # unreadable (permissions), gone meanwhile: one line naming the file
        raise WeightsError(f"weights file {path}: cannot be read ({exc.strerror or exc})") from None
    with _digests_lock:
        _digests[key] = digest
    return digest


def files_record(root: Path, files: Iterable[WeightFile]) -> dict[str, str]:
    """``{relpath: sha256}`` of the weight files as they are on disk now, for a run's provenance
    and fingerprint: a user's checkpoint (no expected digest), or a retrained one, changes it."""
    return {wf.relpath: file_digest(root / wf.relpath) for wf in files}


def network_digest(record: Mapping[str, str]) -> str:
    """One sha256 for the weight files of a :func:`files_record` (their contents, not their
    names: a checkpoint given by another path is the same network), which marks the statistics
    those weights collect (:attr:`urst_dask.stats.NormStats.network`)."""
    return hashlib.sha256("\n".join(sorted(record.values())).encode()).hexdigest()


def verify_file(path: Path, wf: WeightFile) -> None:
    """Raise :class:`WeightsError` unless ``path`` exists and matches ``wf.sha256``."""
    try:
        there = path.is_file()
    except OSError as exc:  # a folder on the way that cannot be searched
        raise WeightsError(f"weights file {path}: cannot be read ({exc.strerror or exc})") from None
    if not there:
        root = Path(*path.parts[: len(path.parts) - len(Path(wf.relpath).parts)])
        how = (
            f"run `urst-dask weights fetch --dest {root}` to download it"
            if wf.url
            else "it has no public download: copy it there by hand"
        )
        raise WeightsError(
            f"weights file missing: {path} ({wf.what or wf.relpath}); {how}, "
            f"or point --weights / {ENV_VAR} at a folder that has {wf.relpath}"
        )
    digest = file_digest(path)
    from .checkpoints import trained_digest  # a file written by `urst-dask train` carries its own sha256 record

    if digest != wf.sha256 and digest != trained_digest(path):
        raise WeightsError(
            f"weights file {path}: sha256 {digest} does not match the expected {wf.sha256} "
            f"(corrupt or a different file; "
            + ("delete it and fetch again)" if wf.url else "it has no public download: copy the right file there)")
        )


_CHECKPOINT_MAGIC = (b"PK\x03\x04", b"\x80")  # torch.save: a zip archive (since 1.6), or a pickle (older)


def checkpoint_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a PyTorch checkpoint, from its first bytes (a folder, an empty
    file, a text or image file) and, for a zip archive, its directory (a truncated copy, another
    zip), or ``None``; an unreadable file is left to the load."""
    if path.is_dir():
        return "is a folder, not a checkpoint file"
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    if not head:
        return "is empty"
    if not head.startswith(_CHECKPOINT_MAGIC):
        return (f"is not a PyTorch checkpoint (it starts with {head!r}; torch.save writes a zip archive "
                "or a pickle)")
    return _zip_problem(path) if head.startswith(b"PK") else None


def _zip_problem(path: Path) -> str | None:
    """A zip checkpoint's directory, read from its end: a truncated copy (an interrupted
    download) has none, and any other zip archive has no ``data.pkl``."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        return (f"is a damaged zip archive, the format of torch.save ({exc}); a truncated copy or an interrupted "
                "download looks like this: copy or download it again")
    if not any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        return f"is a zip archive without data.pkl ({len(names)} entries): not a torch.save checkpoint"
    return None


def load_state_dict(root: Path, wf: WeightFile, *, verify: bool = True) -> dict[str, torch.Tensor]:
    """Verify and load one checkpoint as a flat state dict on the CPU.

    Files wrapped as ``{"epoch": ..., "model": state_dict}`` are unwrapped.
    """
    path = Path(root) / wf.relpath
    if verify and wf.sha256:
        verify_file(path, wf)
    elif not path.is_file() and not path.is_dir():
        raise WeightsError(f"weights file missing: {path} ({wf.what or wf.relpath})")
    problem = checkpoint_problem(path)
    if problem is not None:
        raise WeightsError(f"weights file {path} {problem}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # a pickle of objects other than tensors: never run
        raise WeightsError(f"weights file {path}: torch.load(weights_only=True) refused it ({_unpickling_why(exc)}): "
                           "it is not a plain tensor checkpoint, and loading it fully could run code; use a state "
                           "dict saved with torch.save(model.state_dict())") from exc
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad files
        why = " ".join(str(exc).split())
        why = why if len(why) <= 300 else why[:297] + "..."
        raise WeightsError(f"weights file {path}: cannot be loaded ({type(exc).__name__}: {why})") from exc
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise WeightsError(f"weights file {path}: expected a state dict, got {type(obj).__name__}")
    return obj


def _unpickling_why(exc: BaseException) -> str:
    """The useful part of torch's multi-paragraph weights-only refusal, on one line: the
    ``Unsupported global: GLOBAL posix.system ...`` sentence when there is one."""
    paragraphs = [" ".join(p.split()) for p in str(exc).split("\n\n") if p.strip()]
    named = [p for p in paragraphs if re.search(r"GLOBAL|[Uu]nsupported", p)]
    why = (named or paragraphs or [type(exc).__name__])[0]
    return why if len(why) <= 200 else why[:197] + "..."


def file_status(root: Path, wf: WeightFile) -> str:
    """'ok', 'missing', 'unverified', 'unreadable' or 'bad-hash' for a catalogue entry (used by
    ``urst-dask methods``)."""
    path = Path(root) / wf.relpath
    try:
        if not path.is_file():
            return "missing"
        if not wf.sha256:
            return "unverified"
        with open(path, "rb"):
            pass
    except OSError:
        return "unreadable"
    try:
        verify_file(path, wf)
    except WeightsError:
        return "bad-hash"
    return "ok"


def fetch(
    files: Iterable[WeightFile],
    dest: Path,
    *,
    mirror: str | None = None,
    timeout: float = 60.0,
    log: Callable[[str], None] = lambda s: None,
) -> list[Path]:
    """Download each file with a URL into ``dest``, verifying sha256; skip files already good.

    ``mirror`` (``http://host:port``) replaces the scheme and host of every upstream URL,
    keeping its path (for mirrors and for tests against a local server).  A download is
    written to a temporary file and renamed into place only after its hash matches.
    """
    done: list[Path] = []
    for wf in files:
        target = Path(dest) / wf.relpath
        if target.is_file() and file_status(Path(dest), wf) == "ok":
            log(f"ok       {wf.relpath}")
            done.append(target)
            continue
        if not wf.url:
            raise WeightsError(f"{wf.relpath} has no public download; copy it into {target.parent} by hand")
        url = wf.url if mirror is None else mirror.rstrip("/") + urlsplit(wf.url).path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-", suffix=target.suffix)
        except OSError as exc:  # a read-only folder, a file where the folder should be
            raise WeightsError(f"dest={str(dest)!r}: cannot write {str(target.parent)!r} "
                               f"({exc.strerror or exc})") from None
        log(f"fetch    {wf.relpath} <- {url}")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                shutil.copyfileobj(resp, out)
            digest = sha256_file(Path(tmp))
            if digest != wf.sha256:
                raise WeightsError(f"download of {wf.relpath} from {url}: sha256 {digest} != expected {wf.sha256}")
            as_umask_allows(tmp)
            os.replace(tmp, target)
        except WeightsError:
            raise
        except (OSError, http.client.HTTPException, ValueError) as exc:  # network, truncated body, bad URL
            raise WeightsError(f"download of {wf.relpath} from {url} failed: {exc}") from exc
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        done.append(target)
    return done


_KEYS = {"missing": re.compile(r"Missing key\(s\) in state_dict: (.*?)\.\s*(?:\n|$)"),
         "unexpected": re.compile(r"Unexpected key\(s\) in state_dict: (.*?)\.\s*(?:\n|$)")}
_SHAPE = r"(torch\.Size\(\[[^\]]*\]\)|\S+?)"
_SIZE = re.compile(rf"size mismatch for ([^:]+): copying a param with shape {_SHAPE} from checkpoint, the shape in "
                   rf"current model is {_SHAPE}\.?\s*(?:\n|$)")


def _listed(keys: list[str], shown: int = 3) -> str:
    head = ", ".join(repr(k) for k in keys[:shown])
    return head + (f" and {len(keys) - shown} more" if len(keys) > shown else "")


def state_dict_mismatch(exc: BaseException, paths: Iterable[Path | str], method: str,
                        arg: str | None = None) -> WeightsError | None:
    """The one-line :class:`WeightsError` for torch's multi-line strict-loading error (``Error(s)
    in loading state_dict``): the file(s), a few missing and unexpected keys with their counts,
    and the first size mismatches; ``None`` when ``exc`` is another error.  ``arg`` (such as
    ``"style='x.pth'"``) names the argument the file came from."""
    text = str(exc)
    if not isinstance(exc, RuntimeError) or "Error(s) in loading state_dict" not in text:
        return None
    parts = []
    for what, rx in _KEYS.items():
        m = rx.search(text)
        if m:
            keys = [k.strip().strip('"') for k in m.group(1).split(",") if k.strip()]
            parts.append(f"{len(keys)} {what} keys ({_listed(keys)})")
    sizes = _SIZE.findall(text)
    if sizes:
        shown = "; ".join(f"{k} {a} in the file, {b} in the network" for k, a, b in sizes[:2])
        parts.append(f"{len(sizes)} shape mismatches ({shown}{'; ...' if len(sizes) > 2 else ''})")
    files = ", ".join(repr(str(p)) for p in paths)
    lead = f"{arg}: " if arg else ""
    return WeightsError(f"{lead}weights file {files} does not fit the {method} network ("
                        + ("; ".join(parts) or text.splitlines()[0]) + f"): is it a {method} checkpoint?")
