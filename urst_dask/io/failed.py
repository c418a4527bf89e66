"""The one-line error for a write into an output that failed (a full disk, a read-only or
vanished folder): it names the output, what was being written and the file, and says what a
rerun does."""

from __future__ import annotations

import errno
import os

from ..errors import OutputError


def write_failed(path: str | os.PathLike[str], exc: OSError, what: str = "it", *, resumes: bool = True) -> OutputError:
    """The error for a failed write of ``what`` into the output ``path``; ``resumes=False``
    while the output is created (it is removed, and the rerun starts afresh)."""
    why = exc.strerror or str(exc) or type(exc).__name__
    hint = " (disk full: free some space" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else " (fix the cause"
    where = f" at {exc.filename!r}" if exc.filename else ""
    after = ("it resumes; the output stays marked running until then)" if resumes
             else "nothing is left under that name)")
    verb = "write" if resumes else "create"
    return OutputError(f"output={str(path)!r}: cannot {verb} {what}: {why}{where}{hint}, then rerun the same "
                       f"command: {after}")
