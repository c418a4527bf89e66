"""The Python API's boundary: arguments of the wrong type or meaning are refused with an
``UrstError`` naming the argument and the value, before any work (they escaped as pathlib's
TypeError, ``int(nan)``'s ValueError or an AttributeError after the input was decoded, or were
silently accepted); NumPy scalars count as the numbers they are."""

from __future__ import annotations

import re

import dask.array as da
import numpy as np
import pytest

import urst_dask
from urst_dask import ClusterOptions, ComputeOptions, RunConfig, StyleOptions, TilePlan
from urst_dask.errors import InputImageError, ParameterError, ParameterTypeError
from urst_dask.settings import Intensity
from urst_dask.stats import NormStats, StyleCode
from urst_dask.testing import random_image

IMAGE = random_image(40, 50, seed=1)
STYLE = random_image(32, 32, seed=2)


def _client():
    """A distributed.Client that never connects (the settings are refused before it is used)."""
    from distributed import Client

    return Client.__new__(Client)


def _unknown_chunks() -> da.Array:
    x = da.from_array(IMAGE, chunks=(16, 16, 3))
    return x[x[:, 0, 0] >= 0]  # a boolean mask: row count unknown until computed


@pytest.mark.parametrize("call, error, fragment", [
    (lambda t: urst_dask.stylize(IMAGE, STYLE, None), ParameterTypeError, "out=None: expected a path"),
    (lambda t: urst_dask.stylize(IMAGE, STYLE, t / "o.zarr", weights=123), ParameterTypeError,
     "weights=123: expected a path"),
    (lambda t: urst_dask.stylize(IMAGE, STYLE, t / "o.zarr", scratch=123), ParameterTypeError,
     "scratch=123: expected a path"),
    (lambda t: urst_dask.stylize(IMAGE, STYLE, t / "o.zarr", axes=123), ParameterTypeError, "axes=123: must be"),
    (lambda t: urst_dask.stylize(IMAGE, STYLE, t / "o.zarr", client="tcp://127.0.0.1:8786"), ParameterTypeError,
     "client='tcp://127.0.0.1:8786': expected a distributed.Client"),
    (lambda t: urst_dask.export(None, t / "o.png"), ParameterTypeError, "store=None: expected a path"),
    (lambda t: urst_dask.export(t / "s.zarr", None), ParameterTypeError, "output=None: expected a path"),
    (lambda t: urst_dask.export(t / "s.zarr", t / "o.png", overwrite="no"), ParameterTypeError,
     "overwrite='no': must be a bool"),
    (lambda t: urst_dask.compare(IMAGE, stride=float("nan")), ParameterError, "stride=nan: must be an integer >= 1"),
    (lambda t: urst_dask.compare(IMAGE, stride=[64]), ParameterError, "stride=[64]: must be an integer >= 1"),
    (lambda t: urst_dask.compare(_unknown_chunks()), InputImageError, "Dask array of unknown chunk sizes"),
    (lambda t: urst_dask.stylize_array(_unknown_chunks(), STYLE, method="passthrough"), InputImageError,
     "call its compute_chunk_sizes() first"),
    (lambda t: urst_dask.stylize_array(IMAGE, STYLE, method="passthrough", workers=64, overwrite=True),
     ParameterError, "stylize_array: workers=64, overwrite=True would have no effect"),
    (lambda t: urst_dask.stylize_array(IMAGE, STYLE, method="passthrough", scheduler="tcp://10.0.0.1:8786"),
     ParameterError, "stylize_array: scheduler='tcp://10.0.0.1:8786' would have no effect"),
    (lambda t: urst_dask.stylize(IMAGE, STYLE, t / "o.zarr", method="passthrough",
                                 stats=StyleCode.build("m", {"a": {"x": np.ones(999)}})),
     ParameterTypeError, "stats=<StyleCode>: expected a NormStats"),
    (lambda t: urst_dask.compare(np.stack([IMAGE] * 2), np.stack([IMAGE] * 2), video=True), ParameterTypeError,
     "image=<ndarray>: video=True compares frame sequences given as paths"),  # was pathlib's TypeError
    (lambda t: urst_dask.compare(t / "frames", video="yes"), ParameterTypeError, "video='yes': must be a bool"),
    (lambda t: NormStats.build("m", {"p": {"f": "abc"}}), ParameterTypeError,
     "NormStats p/f: statistics must be numeric arrays, got dtype <U3"),
    (lambda t: NormStats.build("m", {"p": 5}), ParameterTypeError,  # was an AttributeError
     "NormStats: expected {point: {field: array}}, got a mapping of non-mappings"),
    (lambda t: NormStats.build(5, {}), ParameterTypeError, "NormStats: method=5: must be a method name (str)"),
    (lambda t: NormStats.from_flat("m", {"nofield": np.ones(2)}), ParameterError,
     "NormStats: key 'nofield' is not of the form 'point/field'"),
    (lambda t: urst_dask.export(t / "s.zarr", t / "o.png", storage_options="x"), ParameterError,
     "storage_options='x': expected a JSON object"),  # was accepted, and ignored for a local store
    (lambda t: ClusterOptions(workers=True), ParameterTypeError, "workers=True: must be an integer"),
    (lambda t: ClusterOptions(torch_threads=True), ParameterTypeError, "torch_threads=True: must be an integer"),
    (lambda t: urst_dask.RunConfig(method="nope"), ParameterError,  # was accepted, and refused by stylize only
     "method='nope': must be one of wct16x, johnson, microast, wct, adain, linearwct, msgnet, passthrough"),
    (lambda t: urst_dask.RunConfig.from_kwargs(method="WCT16X"), ParameterError, "method='WCT16X': must be one of"),
    # a code-standards review's findings: each was accepted, or raised numpy's, Python's or a
    # 1,661-character error
    (lambda t: urst_dask.stylize_array(IMAGE, STYLE, method="passthrough", verbose=True), ParameterError,
     "stylize_array: verbose=True would have no effect"),
    (lambda t: urst_dask.compare(t / "frames", video=True, stride="garbage"), ParameterError,
     "stride='garbage': video=True reports flicker, which has no stride; leave it out"),
    (lambda t: urst_dask.stylize_array(IMAGE, np.zeros((512, 512, 3), np.uint8), method="johnson"),
     ParameterTypeError, "style=<ndarray>: johnson bakes its style into the network; give a style name"),
    (lambda t: urst_dask.stylize_array(IMAGE, STYLE, method="passthrough", foo=1), ParameterTypeError,
     "stylize_array() got an unknown setting 'foo'"),
    (lambda t: urst_dask.RunConfig().replace(foo=1), ParameterTypeError, "RunConfig.replace() got an unknown setting"),
    (lambda t: NormStats.build("x", {"p": {"m": [[1.0], [1.0, 2.0]]}}), ParameterTypeError,
     "NormStats p/m: statistics must be numeric arrays (setting an array element with a sequence"),
    (lambda t: NormStats.from_flat("x", 5), ParameterTypeError, "NormStats: expected {'point/field': array}, got int"),
    (lambda t: NormStats(method=1, entries=()), ParameterTypeError, "NormStats: method=1: must be a method name"),
    (lambda t: NormStats(method="x", entries=5), ParameterTypeError, "NormStats: entries must be ((point, ((field"),
    (lambda t: TilePlan().resolve("a"), ParameterTypeError, "size_multiple='a': must be an integer"),
    (lambda t: TilePlan().resolve(0), ParameterError, "size_multiple=0: must be an integer >= 1"),
    (lambda t: urst_dask.stylize(IMAGE, STYLE, t / "o.zarr", method="passthrough", client=_client(), workers=3),
     ParameterError, "client=<Client>: workers=3 would have no effect: the client's cluster runs the work"),
    (lambda t: urst_dask.stylize(IMAGE, STYLE, t / "o.zarr", method="passthrough", client=_client(),
                                 scheduler="tcp://127.0.0.1:8790"),
     ParameterError, "client=<Client>: scheduler='tcp://127.0.0.1:8790' would have no effect"),
])
def test_bad_arguments_are_refused_by_name(tmp_path, call, error, fragment):
    with pytest.raises(error, match=re.escape(fragment)):
        call(tmp_path)
    assert not (tmp_path / "o.zarr").exists() and not (tmp_path / "o.png").exists()


def test_numpy_scalars_are_the_numbers_they_are():
    """``thumb_size=np.min(img.shape[:2])`` is an integer (it was refused as "not an integer")."""
    assert TilePlan(stride=np.int64(500), margin=np.int32(16)) == TilePlan(stride=500, margin=16)
    assert StyleOptions(thumb_size=np.int64(512), style_size=np.uint16(256)).thumb_size == 512
    assert StyleOptions(alpha=np.float32(0.5)).alpha == 0.5
    assert ComputeOptions(batch=np.int32(2)).batch == 2
    cluster = ClusterOptions(workers=np.int64(2), threads_per_worker=np.int8(1), connect_timeout=np.float32(5))
    assert (cluster.workers, cluster.threads_per_worker, cluster.connect_timeout) == (2, 1, 5.0)
    assert all(type(v) is int for v in (cluster.workers, TilePlan(stride=np.int64(500)).stride))
    with pytest.raises(ParameterTypeError, match=re.escape("stride=np.float64(500.5): must be an integer")):
        TilePlan(stride=np.float64(500.5))


def test_the_settings_list_of_built_in_networks_is_the_registrys():
    """RunConfig checks a built-in method's name without importing the networks (torch), from
    settings.BUILTIN_METHODS: that list must be the registry's own."""
    from urst_dask.models import REGISTRY
    from urst_dask.settings import BUILTIN_METHODS

    assert BUILTIN_METHODS == tuple(REGISTRY._networks)[:len(BUILTIN_METHODS)]
    assert frozenset(BUILTIN_METHODS) == REGISTRY._builtin


def test_the_settings_list_of_variants_is_the_networks():
    """RunConfig checks a built-in network's variant from settings.BUILTIN_VARIANTS: each listed
    variant loads its own files, a network not listed takes none, and the networks' own check
    refuses what the list refuses."""
    from urst_dask.models import method_entry
    from urst_dask.settings import BAKED_STYLE_METHODS, BUILTIN_METHODS, BUILTIN_VARIANTS

    for name in BUILTIN_METHODS:
        entry = method_entry(name)
        assert (not entry.takes_style_image) == (name in BAKED_STYLE_METHODS), name
        if entry.takes_style_image:
            assert (entry.files_for is not None) == (name in BUILTIN_VARIANTS), name
    for name, valid in BUILTIN_VARIANTS.items():
        entry = method_entry(name)
        assert len({entry.weights(v) for v in valid}) == len(valid)
        with pytest.raises(ParameterError):
            entry.weights(str(len(valid) + 1))


@pytest.mark.parametrize("method, variant, message", [
    ("wct", "9", "variant='9': wct's variants are 1, 2, 3, 4, 5"),
    ("wct", "three", "variant='three': wct's variants are 1, 2, 3, 4, 5"),
    ("wct16x", "2", "variant='2': wct16x has no variants; leave it out"),
    ("johnson", "candy", "variant='candy': johnson takes its variant from the style argument"),
    ("microast", "1", "variant='1': microast has no variants; leave it out"),
])
def test_a_bad_variant_is_refused_when_the_config_is_made(method: str, variant: str, message: str) -> None:
    with pytest.raises(ParameterError, match=re.escape(message)):
        RunConfig(method=method, variant=variant)


def test_a_good_variant_is_kept() -> None:
    assert RunConfig(method="wct", variant=4).variant == "4"
    assert RunConfig(method="wct", variant=" 2 ").variant == " 2 "
    assert RunConfig(method="wct16x").variant is None


@pytest.mark.parametrize("make, error, message", [
    (lambda: ClusterOptions(verbose="no"), ParameterTypeError, "verbose='no': must be a bool"),
    (lambda: ClusterOptions(scheduler=123), ParameterTypeError, "scheduler=123: must be an address"),
    (lambda: ClusterOptions(scheduler="not an address"), ParameterError,
     "scheduler='not an address': expected tcp://host:port"),
    (lambda: ClusterOptions(scheduler="tcp://host"), ParameterError, "scheduler='tcp://host': expected tcp://host:port"),
    (lambda: ClusterOptions(scheduler="udp://host:1"), ParameterError,
     "scheduler='udp://host:1': unknown address scheme 'udp'; expected one of tcp, tls, inproc"),
    (lambda: Intensity("percentile", "19"), ParameterError, "intensity='19': percentiles must be (LO, HI)"),
    (lambda: Intensity("percentile", b"19"), ParameterError, "intensity=b'19': percentiles must be (LO, HI)"),
    (lambda: Intensity("percentile", {5: "a", 95: "b"}), ParameterError, "percentiles must be (LO, HI)"),
    (lambda: Intensity("percentile", (True, 50)), ParameterError, "percentiles must be (LO, HI)"),
    (lambda: Intensity("median"), ParameterError, "intensity='median': mode must be one of dtype, percentile"),
], ids=["verbose-str", "scheduler-int", "scheduler-words", "scheduler-no-port", "scheduler-scheme", "pct-str",
        "pct-bytes", "pct-dict", "pct-bool", "mode"])
def test_settings_refused_when_made(make, error, message) -> None:
    """Each was accepted when made: verbose='no' printed the timing report, a string of digits
    was read as a percentile pair ('19' as 1, 9), an address failed only at the run's start."""
    with pytest.raises(error, match=re.escape(message)):
        make()


def test_good_scheduler_addresses_and_intensities_are_kept() -> None:
    for address in ("tcp://localhost:8786", "localhost:8786", "tls://[::1]:8786", "inproc://192.168.1.2/1/2"):
        assert ClusterOptions(scheduler=address).scheduler == address
    assert Intensity("percentile", (np.float32(0.5), 99)).percentiles == (0.5, 99.0)
    assert Intensity.parse("percentile:1,99") == Intensity("percentile", [1, 99])


def test_statistics_made_directly_are_frozen_copies() -> None:
    """NormStats(...) made without build kept the caller's writable array: changing it changed
    the statistics (and their token) after a graph was keyed on them."""
    a = np.zeros((1, 3), np.float32)
    stats = NormStats(method="passthrough", entries=(("p", (("mean", a),)),))
    token = stats.token()
    a[0, 0] = 5
    assert stats.token() == token
    assert not stats["p"]["mean"].flags.writeable
    assert stats.with_network("abc")["p"]["mean"] is stats["p"]["mean"]  # frozen once, not copied again

