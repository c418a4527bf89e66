"""An exclusive lock on an output store for the whole of a run.

The lock is a file next to the store, ``<store>.lock`` (outside it, so ``--overwrite``'s
deletion of the store cannot drop it), created atomically with ``O_CREAT | O_EXCL`` and
holding JSON: the pid, the host name, the start time and a random token.  A second run on the
same output is refused, naming the run that holds it.  A lock left by a run that died (same
host, pid no longer alive) is taken over; one from another host cannot be checked and is
refused with the path to delete.  Only the holder (same token) removes the lock.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import secrets
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from ..errors import OutputError

SUFFIX = ".lock"


@dataclass(frozen=True)
class LockInfo:
    """What a lock file says about the run that holds it."""

    pid: int
    host: str
    started: str
    token: str

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host!r}, started {self.started}"


def lock_path(output: str | os.PathLike[str]) -> Path:
    """``<output>.lock`` beside the resolved output path (a symlinked output locks its target)."""
    p = Path(output).resolve()
    return p.with_name(p.name + SUFFIX)


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (signal 0 checks without sending)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def read_lock(path: Path) -> LockInfo | None:
    """The lock file's contents, or ``None`` if it is unreadable or not a lock of ours."""
    try:
        data = json.loads(path.read_text())
        return LockInfo(int(data["pid"]), str(data["host"]), str(data["started"]), str(data["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _create(path: Path, info: LockInfo, output: str) -> bool:
    """Create the lock file atomically; ``False`` if it already exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    except FileNotFoundError:
        raise OutputError(f"output={output!r}: folder {str(path.parent)!r} does not exist") from None
    except PermissionError:
        raise OutputError(f"output={output!r}: folder {str(path.parent)!r} is not writable "
                          f"(cannot create the lock {str(path)!r})") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(asdict(info)))
        fh.flush()
        os.fsync(fh.fileno())
    return True


def _take_over(path: Path, stale: LockInfo) -> None:
    """Move a dead run's lock aside, making sure it is still that lock (another run may have
    taken it over first)."""
    aside = path.with_name(f"{path.name}.stale-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return  # someone else removed it: just try again
    moved = read_lock(aside)
    if moved is not None and moved.token != stale.token:  # a live lock was moved: put it back
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
    aside.unlink(missing_ok=True)


def acquire(output: str | os.PathLike[str]) -> tuple[Path, LockInfo]:
    """Take the lock of ``output``; raise :class:`OutputError` naming the run that holds it."""
    path = lock_path(output)
    mine = LockInfo(os.getpid(), socket.gethostname(),
                    _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), secrets.token_hex(8))
    for _ in range(3):
        if _create(path, mine, str(output)):
            return path, mine
        held = read_lock(path)
        if held is None:
            raise OutputError(f"output={str(output)!r}: lock file {str(path)!r} exists but cannot be read; another "
                              "run may be starting. If no run is using this output, delete the lock file")
        if held.host != mine.host:
            raise OutputError(f"output={str(output)!r}: in use by another run ({held.describe()}; lock file "
                              f"{str(path)!r}); wait for it to finish, or delete the lock file if that run is gone")
        if pid_alive(held.pid):
            raise OutputError(f"output={str(output)!r}: in use by another run ({held.describe()}; lock file "
                              f"{str(path)!r}); wait for it to finish")
        _take_over(path, held)
    raise OutputError(f"output={str(output)!r}: could not take the lock {str(path)!r} (other runs keep taking it)")


def release(path: Path, info: LockInfo) -> None:
    """Remove the lock if it is still ours."""
    held = read_lock(path)
    if held is not None and held.token == info.token:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def output_lock(output: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the lock of ``output`` for the body; released on exit, also on error."""
    path, info = acquire(output)
    try:
        yield path
    finally:
        release(path, info)
