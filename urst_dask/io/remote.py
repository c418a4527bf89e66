"""Zarr and OME-Zarr stores at a URL, through fsspec: ``s3://``, ``gs://`` (``gcs://``),
``http://``/``https://`` (read-only), ``memory://`` and ``file://``.

A URL given as content, style, ``-o``, ``--stats`` or ``export``'s store becomes a
:class:`RemotePath`: a ``str`` (so every function that takes a path takes it) holding the
normalized URL and the storage options given with it.  ``file://`` URLs become plain local
paths (and get every local-path guarantee: the lock file, symlink checks, inode comparison).

Storage options, in order of precedence (merged by fsspec):

* given with the call: ``storage_options={...}`` (API), ``--storage-options JSON`` (CLI).
  Either one dict for every URL, or a dict per scheme, ``{"s3": {...}, "https": {...}}``
  (when every key is a known scheme).  They travel with the path into the task graph, so
  worker processes use them too; prefer the environment for secrets;
* fsspec's own configuration: ``FSSPEC_S3='{"endpoint_url": "http://..."}'``,
  ``FSSPEC_S3_ANON=true``..., or its config files (read by every worker process as well);
* the backend's own credential chain: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/
  ``AWS_ENDPOINT_URL``/``AWS_PROFILE`` (s3fs), ``GOOGLE_APPLICATION_CREDENTIALS`` (gcsfs).

Storage options are never written into the output store's attributes.
"""

from __future__ import annotations

import importlib
import json
import posixpath
import re
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import unquote, urlsplit

from ..errors import OutputError, ParameterError

URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
#: scheme -> (the module fsspec needs for it, what to install)
SCHEMES = {"s3": ("s3fs", "urst-dask[remote]"), "gs": ("gcsfs", "gcsfs"), "gcs": ("gcsfs", "gcsfs"),
           "http": ("aiohttp", "urst-dask[remote]"), "https": ("aiohttp", "urst-dask[remote]"),
           "memory": (None, None), "file": (None, None)}
READ_ONLY = ("http", "https")
IN_PROCESS = ("memory",)


def is_url(value: Any) -> bool:
    """Whether ``value`` is a string written as a URL (``scheme://...``)."""
    return isinstance(value, str) and bool(URL.match(value))


class RemotePath(str):
    """A normalized store URL that carries its storage options (JSON text, ``""`` for none).

    It is a ``str`` equal to the URL: messages show the URL, and functions that take a path
    take it.  ``str()`` returns the object itself, so the options survive the ``str(path)``
    calls along the way; pickling keeps them (the task graph sends them to the workers)."""

    options_json: str

    def __new__(cls, url: str, options_json: str = "") -> RemotePath:
        obj = super().__new__(cls, url)
        obj.options_json = options_json
        return obj

    def __str__(self) -> RemotePath:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (RemotePath, (str.__str__(self), self.options_json))

    @property
    def scheme(self) -> str:
        return self.split("://", 1)[0]

    @property
    def storage_options(self) -> dict[str, Any]:
        return json.loads(self.options_json) if self.options_json else {}

    @property
    def read_only(self) -> bool:
        return self.scheme in READ_ONLY

    def child(self, key: str) -> RemotePath:
        """The URL of ``key`` under this one (same options)."""
        return RemotePath(f"{self.rstrip('/')}/{key.lstrip('/')}", self.options_json)

    def sibling(self, suffix: str) -> RemotePath:
        """``<url><suffix>``, beside this store (``.lock``)."""
        return RemotePath(f"{self}{suffix}", self.options_json)

    def fs(self) -> Any:
        """The (synchronous) fsspec filesystem of this URL."""
        import fsspec

        return fsspec.filesystem(self.scheme, **self.storage_options)

    def fs_path(self) -> str:
        """This URL as the filesystem's own path (``bucket/key`` for s3, the URL for http)."""
        import fsspec

        return fsspec.get_filesystem_class(self.scheme)._strip_protocol(str.__str__(self))


def normalize(url: str) -> str:
    """The canonical form of a store URL: lower-case scheme (and host for http/https),
    ``.``/``..`` segments and repeated or trailing slashes removed; ``memory:///x`` and
    ``memory://x`` are the same store."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "memory":
        body = url.split("://", 1)[1]
        return "memory://" + posixpath.normpath(re.sub("/+", "/", "/" + body)).lstrip("/")
    host = parts.netloc.lower() if scheme in ("http", "https") else parts.netloc
    path = posixpath.normpath(re.sub("/+", "/", parts.path)) if parts.path not in ("", "/") else ""
    path = "" if path in (".", "/") else path
    return f"{scheme}://{host}{path}"


def _options_for(scheme: str, options: Mapping[str, Any] | None, arg: str) -> dict[str, Any]:
    """The storage options for ``scheme``: the dict given, or its entry for the scheme when
    every key of it names a scheme."""
    if options is None:
        return {}
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise ParameterError(f"storage_options={options!r}: expected a JSON object (a dict with string keys)")
    if options and all(k in SCHEMES for k in options):
        entry = options.get(scheme) or {}
        if not isinstance(entry, Mapping):
            raise ParameterError(f"storage_options[{scheme!r}]={entry!r}: expected a JSON object")
        return dict(entry)
    return dict(options)


def parse_options(text: str | None) -> dict[str, Any] | None:
    """``--storage-options JSON`` as a dict (``None`` when not given)."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParameterError(f"storage-options={text!r}: not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ParameterError(f"storage-options={text!r}: expected a JSON object, e.g. "
                             "'{\"endpoint_url\": \"http://127.0.0.1:9000\"}'")
    return value


def attach(value: Any, storage_options: Mapping[str, Any] | None = None, arg: str = "path") -> Any:
    """``value`` as the pipeline takes it: a URL string becomes a :class:`RemotePath` with
    the options for its scheme (a ``file://`` URL a local :class:`~pathlib.Path`); anything
    else (a path, an array, a style name) is returned unchanged.

    Raises :class:`ParameterError` for an unknown scheme, a query string, or a scheme whose
    fsspec backend is not installed (naming what to install), and for ``storage_options``
    that are not a mapping (``export(..., storage_options="x")`` went on without them)."""
    if storage_options is not None and not isinstance(storage_options, Mapping):
        raise ParameterError(f"storage_options={storage_options!r}: expected a JSON object (a dict with string keys)")
    if isinstance(value, RemotePath) and storage_options is None:
        return value
    if not is_url(value):
        return value
    text = str.__str__(value)
    scheme = URL.match(text).group(1).lower()  # type: ignore[union-attr]
    if scheme not in SCHEMES:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise ParameterError(f"{arg}={text!r}: unknown URL scheme {scheme!r}; supported: {known} "
                             "(or a local path)")
    parts = urlsplit(text)
    if parts.query or parts.fragment:
        raise ParameterError(f"{arg}={text!r}: a store URL cannot have a query string or fragment (a store is many "
                             "objects under one prefix; signed per-object URLs do not work)")
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ParameterError(f"{arg}={text!r}: file:// URLs name this machine's files (file:///path)")
        return Path(unquote(parts.path))
    module, extra = SCHEMES[scheme]
    if module is not None and extra is not None:
        try:
            importlib.import_module(module)
        except ImportError:
            how = f"pip install '{extra}'" if extra.startswith("urst-dask") else f"pip install {extra}"
            raise ParameterError(f"{arg}={text!r}: {scheme}:// needs the {module} package, not installed: {how}"
                                 + (" (the remote extra)" if extra.startswith("urst-dask") else "")) from None
    opts = _options_for(scheme, storage_options, arg)
    try:
        options_json = json.dumps(opts, sort_keys=True) if opts else ""
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"storage_options: not JSON-serializable ({exc})") from None
    if not normalize(text).split("://", 1)[1]:
        raise ParameterError(f"{arg}={text!r}: no bucket or path after {scheme}://")
    return RemotePath(normalize(text), options_json)


def as_remote(path: Any) -> RemotePath | None:
    """``path`` as a :class:`RemotePath` if it is a (non-``file://``) URL, else ``None``."""
    if isinstance(path, RemotePath):
        return path
    if is_url(path):
        got = attach(path)
        return got if isinstance(got, RemotePath) else None
    return None


def local_or_remote(path: Any, arg: str = "path") -> Path | RemotePath:
    """A local :class:`Path` or a :class:`RemotePath` (``file://`` URLs become local paths)."""
    if isinstance(path, RemotePath):
        return path
    got = attach(path, None, arg) if is_url(path) else Path(path)
    return got


def zarr_target(path: Any, *, read_only: bool = False) -> Any:
    """What to hand to ``zarr.open*``: the path string for a local store, an
    :class:`~zarr.storage.FsspecStore` for a URL (with its storage options).  http(s) stores
    are always opened read-only."""
    rp = as_remote(path)
    if rp is None:
        return str(local_or_remote(path))
    from zarr.storage import FsspecStore

    return FsspecStore.from_url(str.__str__(rp), storage_options=rp.storage_options or None,
                                read_only=read_only or rp.read_only)


def require_writable(rp: RemotePath, arg: str = "output") -> None:
    """Refuse writing to a read-only scheme (http/https) with one line saying what works."""
    if rp.read_only:
        raise OutputError(f"{arg}={str.__str__(rp)!r}: {rp.scheme}:// stores are read-only; write the output to "
                          "s3://, gs://, memory:// or a local path (and serve that over HTTP if you need to)")


def contains(outer: str, inner: str) -> bool:
    """Whether the normalized URL ``inner`` lies under ``outer`` (or is it)."""
    return inner == outer or inner.startswith(outer.rstrip("/") + "/")


def check_in_process(client: Any, **paths: Any) -> None:
    """Refuse a ``memory://`` store when the client's workers are separate processes (they
    each have their own, empty memory filesystem).  ``paths``: ``arg=path`` pairs."""
    for arg, path in paths.items():
        rp = as_remote(path)
        if rp is None or rp.scheme not in IN_PROCESS:
            continue
        workers = sorted(client.scheduler_info().get("workers", {}))
        outside = [w for w in workers if not w.startswith("inproc://")]
        if outside:
            cls = OutputError if arg == "output" else ParameterError
            raise cls(f"{arg}={str.__str__(rp)!r}: memory:// stores live in this process, but the workers are "
                      f"separate processes ({outside[0]}): use an in-process cluster (--in-process, processes=False, or a "
                      "Client(LocalCluster(processes=False))), or a local path or s3://")
