"""Bad URLs for stores: each refused with one error naming the argument and the URL, before
any work is done.  One table, with the error class and a fragment of the message."""

from __future__ import annotations

import functools
import http.server
import sys
import threading

import numpy as np
import pytest

import urst_dask
from urst_dask.cli import main
from urst_dask.errors import InputImageError, OutputError, ParameterError
from urst_dask.testing import random_image


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # noqa: ARG002
        pass


@pytest.fixture(scope="module")
def http_base(tmp_path_factory):
    """An HTTP server on 127.0.0.1 serving an empty folder (every store URL under it is missing)."""
    folder = tmp_path_factory.mktemp("empty")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def no_s3fs(monkeypatch):
    monkeypatch.setitem(sys.modules, "s3fs", None)  # import s3fs now raises ImportError


def _gcsfs_missing() -> bool:
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        return True
    return False


# (id, content, out, extra keywords, error class, message fragment); "{http}" is the server's base URL
CASES = [
    ("unknown scheme", "ftp://host/in.zarr", "o.zarr", {}, ParameterError,
     "content='ftp://host/in.zarr': unknown URL scheme 'ftp'; supported: s3://, gs://"),
    ("unknown scheme as output", "<array>", "hdfs://nn/out.zarr", {}, ParameterError,
     "output='hdfs://nn/out.zarr': unknown URL scheme 'hdfs'"),
    ("https as output", "<array>", "https://example.invalid/out.zarr", {}, OutputError,
     "output='https://example.invalid/out.zarr': https:// stores are read-only; write the output to s3://"),
    ("http as output", "<array>", "{http}/out.zarr", {}, OutputError, "http:// stores are read-only"),
    ("missing store over http", "{http}/missing.zarr", "o.zarr", {}, InputImageError,
     "content='{http}/missing.zarr': no Zarr store at this URL"),
    ("missing memory store", "memory://nowhere/in.zarr", "o.zarr", {}, InputImageError,
     "content='memory://nowhere/in.zarr': no Zarr store at this URL"),
    ("a PNG at a URL", "{http}/photo.png", "o.zarr", {}, InputImageError,
     "only Zarr and OME-Zarr stores are read from URLs; download the file"),
    ("no s3fs", "s3://bucket/in.zarr", "o.zarr", {"fixture": "no_s3fs"}, ParameterError,
     "s3:// needs the s3fs package, not installed: pip install 'urst-dask[remote]' (the remote extra)"),
    ("no s3fs for the output", "<array>", "s3://bucket/o.zarr", {"fixture": "no_s3fs"}, ParameterError,
     "output='s3://bucket/o.zarr': s3:// needs the s3fs package"),
    pytest.param("no gcsfs", "gs://bucket/in.zarr", "o.zarr", {}, ParameterError,
                 "gs:// needs the gcsfs package, not installed: pip install gcsfs",
                 marks=pytest.mark.skipif(not _gcsfs_missing(), reason="gcsfs is installed")),
    ("query string", "s3://bucket/in.zarr?versionId=3", "o.zarr", {}, ParameterError,
     "cannot have a query string"),
    ("no bucket", "s3://", "o.zarr", {}, ParameterError, "content='s3://': no bucket or path after s3://"),
    ("file URL to another host", "file://server/in.zarr", "o.zarr", {}, ParameterError,
     "file:// URLs name this machine's files"),
    ("storage options not a dict", "memory://x/in.zarr", "o.zarr", {"storage_options": [1, 2]}, ParameterError,
     "storage_options=[1, 2]: expected a JSON object"),
    ("missing stats store", "<array>", "o.zarr", {"stats": "memory://nowhere/stats.zarr"}, OutputError,
     "stats='memory://nowhere/stats.zarr': no statistics stored there"),
]


@pytest.mark.parametrize("name, content, out, extra, cls, fragment", CASES, ids=[
    c.values[0] if hasattr(c, "marks") else c[0] for c in CASES])
def test_bad_url(request, tmp_path, style_image, http_base, name, content, out, extra, cls, fragment):
    extra = dict(extra)
    if "fixture" in extra:
        request.getfixturevalue(extra.pop("fixture"))
    content = content.replace("{http}", http_base)
    out = out.replace("{http}", http_base)
    image = random_image(40, 50, seed=1)
    with pytest.raises(cls) as info:
        urst_dask.stylize(image if content == "<array>" else content, style_image,
                          out if "://" in out else tmp_path / out, method="identity", weights=tmp_path,
                          processes=False, stride=32, margin=4, **extra)
    message = str(info.value)
    assert "\n" not in message
    assert fragment.replace("{http}", http_base) in message
    assert not (tmp_path / "o.zarr").exists()


def test_export_to_a_url_is_refused(tmp_path):
    with pytest.raises(OutputError, match="output='s3://b/x.png': exports are written to local files"):
        urst_dask.export(tmp_path / "o.zarr", "s3://b/x.png")


def test_export_from_a_missing_url_store(tmp_path):
    with pytest.raises(OutputError, match="store='memory://nowhere/o.zarr': not a urst-dask output store"):
        urst_dask.export("memory://nowhere/o.zarr", tmp_path / "x.png")


@pytest.mark.parametrize("argv, fragment", [
    (["--storage-options", "{not json"], "urst-dask: error: storage-options='{not json': not valid JSON"),
    (["--storage-options", "[1]"], "storage-options='[1]': expected a JSON object"),
    (["-o", "https://example.invalid/o.zarr"], "output='https://example.invalid/o.zarr': https:// stores are "
                                               "read-only"),
])
def test_cli_bad_url_options_are_one_line(tmp_path, capsys, argv, fragment):
    from PIL import Image

    Image.fromarray(random_image(40, 50, seed=2)).save(tmp_path / "c.png")
    Image.fromarray(random_image(32, 32, seed=3)).save(tmp_path / "s.png")
    base = ["stylize", str(tmp_path / "c.png"), str(tmp_path / "s.png"), "--method", "identity", "--weights",
            str(tmp_path), "--no-progress"]
    rc = main([*base, *(argv if "-o" in argv else ["-o", str(tmp_path / "o.zarr"), *argv])])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and fragment in err
    assert not (tmp_path / "o.zarr").exists()


def test_normalized_urls():
    from urst_dask.io.remote import attach

    assert attach("S3://bkt//a/./b/../c.zarr/") == "s3://bkt/a/c.zarr"
    assert attach("memory:///x/y.zarr") == attach("memory://x/y.zarr") == "memory://x/y.zarr"
    assert attach("HTTPS://Example.ORG/A.zarr") == "https://example.org/A.zarr"
    assert str(attach("file:///tmp/a.zarr")) == "/tmp/a.zarr"
    arr = np.zeros(1)
    assert attach("/local/a.zarr") == "/local/a.zarr" and attach(arr) is arr and attach("mosaic") == "mosaic"
