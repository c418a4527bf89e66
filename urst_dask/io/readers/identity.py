"""A cheap fingerprint of an input, for deciding whether a resumed run reads the same pixels."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from .. import remote, remote_store

HEAD_BYTES = 64 << 10  # bytes of a single-file image hashed into its identity


def input_identity(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A cheap fingerprint of an input on disk or at a URL, for deciding whether a resumed run
    reads the same pixels as the run that started the output.

    * A directory (Zarr, OME-Zarr): the sha256 of the sorted list of every file under it with
      its size and ``st_mtime_ns`` (one ``stat`` per file, no pixel read: fast even for
      thousands of chunks).  Any chunk rewritten, added or removed changes it, as does any
      metadata change.
    * A single file (TIFF, PNG, JPEG...): its size, ``st_mtime_ns`` and the sha256 of its first
      64 KiB (the header, IFDs and the first strips/tiles).

    It cannot see a rewrite that keeps every changed file's size and mtime (a same-size copy
    with ``cp -p``/``rsync -t``, or an mtime set back by hand), nor, for a single file, a change
    beyond the first 64 KiB that keeps size and mtime.  Hashing every byte would see those,
    at the cost of reading the whole image once more per run.

    * A store at a URL: the sorted listing of every key with its size and what the backend
      reports of its version (ETag, generation, modification time), see
      :func:`.remote_store.identity`; it sees every rewrite that changes an ETag (S3, GCS) or
      a modification time, and nothing when the server lists no keys (plain HTTP without
      directory listings: then only the root metadata documents are hashed).
    """
    rp = remote.as_remote(path)
    if rp is not None:
        return remote_store.identity(rp)
    p = Path(path).resolve()
    if p.is_dir():
        digest, count, total = hashlib.sha256(), 0, 0
        for root, dirs, files in os.walk(p):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(root, name)
                st = os.stat(full)
                rel = os.path.relpath(full, p)
                digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
                count, total = count + 1, total + st.st_size
        return {"path": str(p), "files": count, "bytes": total, "listing_sha256": digest.hexdigest()}
    st = p.stat()
    with open(p, "rb") as fh:
        head = hashlib.sha256(fh.read(HEAD_BYTES)).hexdigest()
    return {"path": str(p), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "head_sha256": head}
