"""Store operations on a Zarr store at a URL (:class:`~.remote.RemotePath`), through its
fsspec filesystem: what is there, deleting it, which chunks are written, the input
fingerprint, and one-line errors for what the network or the credentials refuse.

Chunks are single objects (one PUT on S3/GCS, one assignment in ``memory://``), so a chunk
key that is listed is a finished chunk, as a renamed file is on a local disk: the resume scan
(:func:`present_chunks`) lists the keys under ``0/c/0/`` and reads nothing else.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import InputImageError, OutputError, UrstError
from .remote import RemotePath, contains, require_writable

INPUT_ARGS = ("content", "style")


def failure(arg: str, rp: RemotePath, exc: BaseException, what: str, *, resumes: bool = False) -> UrstError:
    """One line for an exception raised by a remote filesystem (network, permissions,
    credentials): the argument, the URL, what was attempted and the cause."""
    if isinstance(exc, UrstError):
        return exc
    text = " ".join(str(exc).split())
    text = text if len(text) <= 200 else text[:197] + "..."
    name = type(exc).__name__
    hint = ""
    if isinstance(exc, PermissionError) or "Credentials" in name or "AccessDenied" in text:
        hint = "; check the credentials (AWS_*/GOOGLE_* variables, FSSPEC_<SCHEME> settings or --storage-options)"
    if resumes:
        hint += "; rerun the same command once fixed: it resumes, the store stays marked running until then"
    cls = InputImageError if arg in INPUT_ARGS else OutputError
    return cls(f"{arg}={str.__str__(rp)!r}: cannot {what} ({name}: {text}){hint}")


def node_type(rp: RemotePath, arg: str = "store") -> str | None:
    """``"array"``/``"group"`` for a Zarr v2/v3 node at the URL (its metadata document read
    through fsspec), ``None`` when there is none."""
    fs, base = rp.fs(), rp.fs_path()
    for name, kind in (("zarr.json", ""), (".zarray", "array"), (".zgroup", "group")):
        try:
            data = fs.cat_file(f"{base}/{name}")
        except FileNotFoundError:
            continue
        except Exception as exc:  # noqa: BLE001 - permissions, network, credentials: one line
            raise failure(arg, rp, exc, f"read {name}") from exc
        if kind:
            return kind
        try:
            meta = json.loads(data)
        except ValueError:
            meta = {}
        return "array" if isinstance(meta, dict) and meta.get("node_type") == "array" else "group"
    return None


def exists(rp: RemotePath, arg: str = "output") -> bool:
    """Whether anything is at the URL (an object, or any key under it as a prefix)."""
    try:
        fs = rp.fs()
        fs.invalidate_cache(rp.fs_path())
        return bool(fs.exists(rp.fs_path()))
    except Exception as exc:  # noqa: BLE001
        raise failure(arg, rp, exc, "look it up") from exc


REMOVING = ".urst-dask-removing"  # written first and deleted last by remove(): what a killed removal leaves


def remove(rp: RemotePath, missing_ok: bool = False) -> None:
    """Delete every key under the store's prefix (``--overwrite``, a failed creation): first a
    :data:`REMOVING` marker, then the root ``zarr.json`` (which holds the completion marker), so
    that a store interrupted while it is deleted never reads as complete with chunks missing,
    then the rest, and the marker last: a removal killed half-way leaves a prefix that says
    whose it is, and that the next ``--overwrite`` finishes (:func:`interrupted_removal`)."""
    try:
        fs = rp.fs()
        base = rp.fs_path().rstrip("/")
        marker = f"{base}/{REMOVING}"
        if fs.exists(f"{base}/zarr.json"):
            fs.pipe_file(marker, b"urst-dask: this store's removal did not finish; --overwrite finishes it\n")
            fs.rm(f"{base}/zarr.json")
        rest = [k for k in fs.find(base) if k.rstrip("/") != marker]
        if rest:
            fs.rm(rest)
        fs.rm(base, recursive=True)
    except FileNotFoundError:
        pass
    except Exception as exc:  # noqa: BLE001
        if not missing_ok:
            raise failure("output", rp, exc, "delete the old store") from exc


def interrupted_removal(rp: RemotePath) -> bool:
    """Whether the prefix holds what a killed :func:`remove` left (its marker, no ``zarr.json``)."""
    try:
        return bool(rp.fs().exists(f"{rp.fs_path().rstrip('/')}/{REMOVING}"))
    except Exception as exc:  # noqa: BLE001
        raise failure("output", rp, exc, "look it up") from exc


LEFTOVER_HINT = ("holds what is left of a urst-dask store whose removal was interrupted; pass --overwrite to finish "
                 "removing it")


def check_bucket(rp: RemotePath) -> None:
    """For s3/gs, the bucket of the output must exist (nothing is created but the store)."""
    if rp.scheme not in ("s3", "gs", "gcs"):
        return
    bucket = rp.fs_path().split("/", 1)[0]
    try:
        fs = rp.fs()
        fs.invalidate_cache(bucket)
        fs.info(bucket)  # not exists(): s3fs answers False for a bucket it could not reach or ask about
        found = True
    except FileNotFoundError:
        found = False
    except Exception as exc:  # noqa: BLE001 - an unreachable endpoint, a misspelt storage option...
        raise failure("output", rp, exc, f"look up the bucket {bucket!r}") from exc
    if not found:
        raise OutputError(f"output={str.__str__(rp)!r}: bucket {bucket!r} does not exist (or is not visible with these "
                          "credentials); create it first")


def check_output(rp: RemotePath, overwrite: bool, not_a_store_hint: str) -> RemotePath:
    """The remote side of ``store.check_output_path``: writable scheme, an existing store only
    with ``overwrite``, never something that is not a Zarr store, an existing bucket."""
    require_writable(rp)
    if exists(rp):
        if node_type(rp, "output") is None:
            if interrupted_removal(rp):
                if overwrite:
                    return rp
                raise OutputError(f"output={str.__str__(rp)!r}: {LEFTOVER_HINT}")
            raise OutputError(f"output={str.__str__(rp)!r}: already exists and is not a Zarr store; "
                              f"{not_a_store_hint}")
        if not overwrite:
            raise OutputError(f"output={str.__str__(rp)!r}: already exists; pass --overwrite to replace it")
    check_bucket(rp)
    return rp


def check_not_input(output: Any, content: Any, out_r: RemotePath | None, in_r: RemotePath | None) -> None:
    """Refuse an output URL that is the content URL, contains it or lies inside it (normalized
    URLs compared as strings and prefixes; a local path and a URL never name one store)."""
    if out_r is None or in_r is None or out_r.scheme != in_r.scheme:
        return
    if out_r == in_r:
        how = "is the content image"
    elif contains(out_r, in_r):
        how = "contains the content image"
    elif contains(in_r, out_r):
        how = "is inside the content image"
    else:
        return
    raise OutputError(f"output={str(output)!r}: {how} {str(content)!r} (normalized: {str.__str__(in_r)!r}); writing "
                      "there would destroy the input before it is read: choose an output path outside the input")


def present_chunks(rp: RemotePath, image: str) -> set[tuple[int, int]]:
    """(row, col) of the image chunks whose keys ``<image>/c/0/<row>/<col>`` are listed."""
    fs = rp.fs()
    base = f"{rp.fs_path()}/{image}/c/0"
    fs.invalidate_cache(base)  # written by other processes (workers, a killed run): no stale listing
    try:
        keys = fs.find(base)
    except FileNotFoundError:
        keys = []
    except Exception as exc:  # noqa: BLE001
        raise failure("output", rp, exc, "list its chunks") from exc
    done = set()
    for key in keys:
        parts = key[len(base):].strip("/").split("/")
        if len(parts) == 2 and all(part.isdigit() for part in parts):
            done.add((int(parts[0]), int(parts[1])))
    return done


STAMP_FIELDS = ("ETag", "etag", "md5Hash", "generation", "LastModified", "Last-Modified", "mtime", "updated",
                "created")


def _stamp(info: dict[str, Any]) -> str:
    """What a listing says about an object's version: its ETag / generation / modification
    time, as the backend reports them (s3: ETag and LastModified; gcs: md5Hash, generation;
    http: ETag or Last-Modified from a HEAD request; memory: created)."""
    return "|".join(f"{k}={info[k]}" for k in STAMP_FIELDS if info.get(k) is not None)


def identity(rp: RemotePath, arg: str = "content") -> dict[str, Any]:
    """The fingerprint of a store at a URL, for deciding whether a resumed run reads the same
    pixels: the sha256 of the sorted listing of every key with its size and version stamp
    (:func:`_stamp`).  Listings without sizes (http) are completed by a HEAD request per key.
    A server that lists nothing (http without directory listings) leaves only the root
    metadata documents' bytes to hash: chunk rewrites are then not seen (``"listing": false``)."""
    fs, base = rp.fs(), rp.fs_path()
    try:
        fs.invalidate_cache(base)
        found = fs.find(base, detail=True)
        missing = [k for k, v in found.items() if v.get("size") is None or not _stamp(v)]
        if missing:
            with ThreadPoolExecutor(8) as pool:
                for key, info in zip(missing, pool.map(fs.info, missing)):
                    found[key] = {**found[key], **info}
    except FileNotFoundError:
        found = {}
    except Exception as exc:  # noqa: BLE001
        raise failure(arg, rp, exc, "list its keys for the input fingerprint") from exc
    digest, total = hashlib.sha256(), 0
    for key in sorted(found):
        info = found[key]
        rel = key[len(base):].lstrip("/")
        digest.update(f"{rel}\0{info.get('size')}\0{_stamp(info)}\n".encode())
        total += int(info.get("size") or 0)
    listed = bool(found)
    if not listed:
        for name in ("zarr.json", ".zgroup", ".zarray", ".zattrs"):
            try:
                digest.update(name.encode() + b"\0" + fs.cat_file(f"{base}/{name}") + b"\n")
            except FileNotFoundError:
                continue
            except Exception as exc:  # noqa: BLE001
                raise failure(arg, rp, exc, f"read {name}") from exc
    return {"url": str.__str__(rp), "files": len(found), "bytes": total, "listing": listed,
            "listing_sha256": digest.hexdigest()}


__all__ = ["LEFTOVER_HINT", "REMOVING", "check_bucket", "check_not_input", "check_output", "exists", "failure",
           "identity", "interrupted_removal", "node_type",
           "present_chunks", "remove", "require_writable"]
