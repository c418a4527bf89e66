"""An exclusive lock on an output store for the whole of a run.

The lock is a file next to the store, ``<store>.lock`` (outside it, so ``--overwrite``'s
deletion of the store cannot drop it), created atomically with ``O_CREAT | O_EXCL`` and
holding JSON: the pid, the host name, the start time and a random token.  A second run on the
same output is refused, naming the run that holds it.  A lock left by a run that died (same
host, pid no longer alive) is taken over; one from another host cannot be checked and is
refused with the path to delete.  Only the holder (same token) removes the lock.

An output at a URL (s3://, gs://, memory://) is locked by an object beside the store,
``<url>.lock``, holding the same JSON.  It is created with a conditional write where the
backend has one (``If-None-Match: *`` on S3 and S3-compatible servers, memory://): two runs
cannot both create it.  Elsewhere (gcs through fsspec's generic path, other backends) it is a
check-then-write, read back to see whose token it holds: advisory, as two runs starting
within the same round trip could both believe they hold it.  A dead run's lock (same host,
pid gone) is taken over after reading it once more; taking over is advisory on every
backend (no compare-and-delete).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import secrets
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from ..errors import OutputError
from .remote import RemotePath, as_remote
from .remote_store import failure

SUFFIX = ".lock"
LockPath = Path | RemotePath
START_SLACK_S = 2.0  # a lock's start time is whole seconds, and boot time too: allow that much
_HELD: set[str] = set()  # the tokens of the locks this process holds now


@dataclass(frozen=True)
class LockInfo:
    """What a lock file says about the run that holds it."""

    pid: int
    host: str
    started: str
    token: str

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host!r}, started {self.started}"


def lock_path(output: str | os.PathLike[str]) -> LockPath:
    """``<output>.lock`` beside the resolved output path (a symlinked output locks its target),
    or the object ``<url>.lock`` beside a store at a URL."""
    rp = as_remote(output)
    if rp is not None:
        return rp.sibling(SUFFIX)
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


def process_start(pid: int) -> float | None:
    """When process ``pid`` started, in seconds since the epoch, from Linux's ``/proc``
    (field 22 of ``/proc/<pid>/stat``, clock ticks since boot, plus ``btime`` of ``/proc/stat``);
    ``None`` where that cannot be told (no ``/proc``, no such process, unreadable)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        ticks = int(stat[stat.rindex(")") + 2 :].split()[19])  # fields from 3 on: the name (2) may hold spaces
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration, AttributeError):
        return None


def _lock_time(started: str) -> float | None:
    """A lock's recorded start time in seconds since the epoch (UTC when it names no zone)."""
    try:
        when = _dt.datetime.fromisoformat(started)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=_dt.timezone.utc)).timestamp()


def reused_since(pid: int, when: float | None) -> bool:
    """Whether the live process ``pid`` started after ``when`` (seconds since the epoch, with
    :data:`START_SLACK_S`): the pid now names another process than the one that wrote then (a
    reboot, a restarted container).  ``False`` where that cannot be told (no ``/proc``)."""
    begun = process_start(pid)
    return begun is not None and when is not None and begun > when + START_SLACK_S


def is_stale(held: LockInfo) -> bool:
    """Whether a lock written on this host belongs to a run that is gone: its pid is not alive;
    or it is this process's pid but not a lock this process holds; or the process with that
    pid started after the lock was written (Linux only: elsewhere a live pid keeps the lock)."""
    if held.pid == os.getpid():
        return held.token not in _HELD
    return not pid_alive(held.pid) or reused_since(held.pid, _lock_time(held.started))


def read_lock(path: LockPath) -> LockInfo | None:
    """The lock file's contents, or ``None`` if it is unreadable or not a lock of ours."""
    try:
        text = path.fs().cat_file(path.fs_path()) if isinstance(path, RemotePath) else path.read_text()
        data = json.loads(text)
        return LockInfo(int(data["pid"]), str(data["host"]), str(data["started"]), str(data["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _create_remote(path: RemotePath, info: LockInfo, output: str) -> bool:
    """Create the lock object (conditionally where the backend can), then read it back: a
    backend without conditional writes may have let another run write it too."""
    fs, data = path.fs(), json.dumps(asdict(info)).encode()
    try:
        try:
            fs.pipe_file(path.fs_path(), data, mode="create")
        except TypeError:  # a backend whose pipe_file has no mode: check, then write
            if fs.exists(path.fs_path()):
                return False
            fs.pipe_file(path.fs_path(), data)
    except FileExistsError:
        return False
    except Exception as exc:  # noqa: BLE001 - permissions, network: one line naming the lock
        raise failure("output", as_remote(output) or path, exc, f"create the lock {str.__str__(path)!r}") from exc
    held = read_lock(path)
    return held is not None and held.token == info.token


def _create(path: LockPath, info: LockInfo, output: str) -> bool:
    """Create the lock file atomically; ``False`` if it already exists."""
    if isinstance(path, RemotePath):
        return _create_remote(path, info, output)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    except FileNotFoundError:
        raise OutputError(f"output={output!r}: folder {str(path.parent)!r} does not exist") from None
    except PermissionError:
        raise OutputError(f"output={output!r}: folder {str(path.parent)!r} is not writable "
                          f"(cannot create the lock {str(path)!r})") from None
    except OSError as exc:  # a read-only file system, a full disk...
        raise OutputError(f"output={output!r}: cannot create the lock {str(path)!r} ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(asdict(info)))
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:  # a full disk: the empty lock would block every later run
        path.unlink(missing_ok=True)
        raise OutputError(f"output={output!r}: cannot write the lock {str(path)!r} ({exc.strerror or exc}); "
                          "nothing was written") from None
    return True


def _take_over(path: LockPath, stale: LockInfo) -> None:
    """Move a dead run's lock aside, making sure it is still that lock (another run may have
    taken it over first).  A lock object at a URL is deleted if it still holds the dead run's
    token when read again."""
    if isinstance(path, RemotePath):
        held = read_lock(path)
        if held is not None and held.token == stale.token:
            path.fs().rm(path.fs_path())
        return
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


def _take(path: LockPath, mine: LockInfo, output: str) -> None:
    """Create the lock as ``mine``, taking over a stale one; raise naming a live holder."""
    for _ in range(3):
        if _create(path, mine, output):
            return
        held = read_lock(path)
        if held is None:
            raise OutputError(f"output={output!r}: lock file {str(path)!r} exists but cannot be read; another "
                              "run may be starting. If no run is using this output, delete the lock file")
        if held.host != mine.host:
            raise OutputError(f"output={output!r}: in use by another run ({held.describe()}; lock file "
                              f"{str(path)!r}); wait for it to finish, or delete the lock file if that run is gone")
        if not is_stale(held):
            raise OutputError(f"output={output!r}: in use by another run ({held.describe()}; lock file "
                              f"{str(path)!r}); wait for it to finish, or if you are sure no run is using this "
                              f"output, delete the lock file {str(path)!r}")
        _take_over(path, held)
    raise OutputError(f"output={output!r}: could not take the lock {str(path)!r} (other runs keep taking it)")


def acquire(output: str | os.PathLike[str]) -> tuple[LockPath, LockInfo]:
    """Take the lock of ``output``; raise :class:`OutputError` naming the run that holds it."""
    path = lock_path(output)
    mine = LockInfo(os.getpid(), socket.gethostname(),
                    _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), secrets.token_hex(8))
    _HELD.add(mine.token)  # before the file exists: another thread of this process must not take it over
    try:
        _take(path, mine, str(output))
    except BaseException:
        _HELD.discard(mine.token)
        raise
    return path, mine


def release(path: LockPath, info: LockInfo) -> None:
    """Remove the lock if it is still ours."""
    _HELD.discard(info.token)
    held = read_lock(path)
    if held is not None and held.token == info.token:
        if isinstance(path, RemotePath):
            with contextlib.suppress(FileNotFoundError):
                path.fs().rm(path.fs_path())
        else:
            path.unlink(missing_ok=True)


@contextlib.contextmanager
def output_lock(output: str | os.PathLike[str]) -> Iterator[LockPath]:
    """Hold the lock of ``output`` for the body; released on exit, also on error."""
    path, info = acquire(output)
    try:
        yield path
    finally:
        try:
            release(path, info)
        except Exception as exc:  # noqa: BLE001 - storage gone too (a network outage): the run's own error, or
            # its success, is what the user must see; the lock is stale, and the next run takes it over
            logging.getLogger("urst_dask").warning("%s: could not remove the lock (%s: %s); the next run takes it "
                                                   "over", path, type(exc).__name__, " ".join(str(exc).split())[:200])
