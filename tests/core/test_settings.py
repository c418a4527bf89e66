import dataclasses
import re

import pytest

from urst_dask.errors import ParameterError, ParameterTypeError
from urst_dask.settings import ComputeOptions, Intensity, NormMode, StyleOptions
from urst_dask.tiling.plan import TilePlan


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"alpha": -0.1}, "alpha=-0.1"),
        ({"alpha": 1.5}, "alpha=1.5"),
        ({"alpha": float("nan")}, "alpha=nan"),
        ({"style_size": 8}, "style_size=8"),
        ({"thumb_size": 0}, "thumb_size=0"),
        ({"norm": "batch"}, "must be one of tin, in"),
    ],
)
def test_style_options_reject(kwargs, fragment):
    with pytest.raises(ParameterError, match=fragment):
        StyleOptions(**kwargs)


@pytest.mark.parametrize(
    "kwargs, exc, fragment",
    [
        ({"batch": 0}, ParameterError, "batch=0: must be in"),
        ({"batch": 65}, ParameterError, "batch=65"),
        ({"batch": 2.5}, ParameterTypeError, "batch=2.5"),
        ({"batch": True}, ParameterTypeError, "batch=True"),
        ({"precision": "int8"}, ParameterError, "precision='int8': must be one of float32, bfloat16, float16"),
    ],
)
def test_compute_options_reject(kwargs, exc, fragment):
    with pytest.raises(exc, match=fragment):
        ComputeOptions(**kwargs)


def test_cluster_memory_mode_lists_valid_values():
    from urst_dask.settings import ClusterOptions

    with pytest.raises(ParameterError, match="memory='small': must be one of fast, compact"):
        ClusterOptions(memory="small")
    assert ClusterOptions(memory="COMPACT").memory.value == "compact"


@pytest.mark.parametrize("kwargs, exc, fragment", [
    ({"processes": "no"}, ParameterTypeError, "processes='no': must be a bool"),
    ({"processes": False, "scheduler": "tcp://h:8786"}, ParameterError,
     "processes=False (--in-process) with scheduler='tcp://h:8786'"),
    ({"workers": 0}, ParameterError, "workers=0: must be an integer in [1, 1024]"),
    ({"workers": 10**19}, ParameterError, "workers=10000000000000000000: must be an integer in [1, 1024]"),  # hung
    ({"threads_per_worker": 4096}, ParameterError, "threads_per_worker=4096: must be an integer in [1, 1024]"),
    ({"connect_timeout": 0}, ParameterError, "connect_timeout=0 (--scheduler-timeout): must be a number of seconds"),
    # they sized nothing, silently: an existing scheduler's cluster has the workers it has
    ({"workers": 4, "threads_per_worker": 8, "scheduler": "tcp://h:8786"}, ParameterError,
     "workers=4, threads_per_worker=8 with scheduler='tcp://h:8786': these size the local cluster"),
])
def test_cluster_options_reject(kwargs, exc, fragment):
    from urst_dask.settings import ClusterOptions

    with pytest.raises(exc, match=re.escape(fragment)):
        ClusterOptions(**kwargs)


def test_compute_options_lists_valid_values():
    with pytest.raises(ParameterError, match="device='tpu': must be one of auto, cpu, cuda"):
        ComputeOptions(device="tpu")


@pytest.mark.parametrize("make, fragment", [
    # each crashed with a traceback: numpy's offsets overflowed after the store was made; torch
    # was asked for 216 GB for the style
    (lambda: TilePlan(stride=10**19), "stride=10000000000000000000: must be <= 32768; for one window over the whole"),
    (lambda: StyleOptions(style_size=100_000), "style_size=100000: must be <= 8192"),
])
def test_absurd_sizes_are_refused_when_the_settings_are_made(make, fragment):
    with pytest.raises(ParameterError, match=re.escape(fragment)):
        make()
    TilePlan(stride=1 << 15), StyleOptions(style_size=8192, thumb_size=10**6)  # the limits themselves, and a thumb
    # larger than any image (the image itself) are fine


def test_enums_called_directly_take_any_case_and_list_the_valid_values():
    from urst_dask import Blend

    assert Blend("Linear") is Blend.LINEAR and NormMode("TIN") is NormMode.TIN
    with pytest.raises(ParameterError, match=re.escape("Blend('feather'): must be one of crop, linear, gaussian")):
        Blend("feather")
    with pytest.raises(ParameterError, match=re.escape("NormMode(3): must be one of tin, in")):
        NormMode(3)


def test_style_defaults_are_the_papers():
    opts = StyleOptions()
    assert (opts.style_size, opts.thumb_size, opts.norm) == (1024, 1024, NormMode.TIN)


def test_frozen():
    opts = StyleOptions()
    with pytest.raises(AttributeError):
        opts.alpha = 0.5  # type: ignore[misc]


@pytest.mark.parametrize("mode, percentiles, fragment", [
    ("percentile", (90, 10), "intensity=(90, 10): percentiles must be (LO, HI) with 0 <= LO < HI <= 100"),
    ("percentile", None, "intensity=None: percentiles must be"),
    ("percentile", (0, float("nan")), "intensity=(0, nan): percentiles must be"),
    ("bogus", (1, 99), "intensity='bogus': mode must be one of dtype, percentile"),
    ("dtype", (1, 99), "intensity=(1, 99): percentiles are for mode 'percentile' only"),
])
def test_intensity_built_directly_is_validated(mode, percentiles, fragment):
    with pytest.raises(ParameterError, match=re.escape(fragment)):
        Intensity(mode, percentiles)


def test_intensity_text_says_what_it_does():
    """The text is what the provenance records: a percentile mapping built directly recorded
    'dtype', and resumed a dtype run's store as its own."""
    assert str(Intensity("percentile", (5, 95))) == "percentile:5,95"
    assert str(Intensity.parse("percentile:0.50,99.5")) == "percentile:0.50,99.5"  # the user's spelling kept
    moved = dataclasses.replace(Intensity.parse("percentile:1,99"), percentiles=(5, 50))
    assert (str(moved), moved.percentiles) == ("percentile:5,50", (5.0, 50.0))
    assert StyleOptions(intensity=Intensity("percentile", (5, 95))).intensity.text == "percentile:5,95"


@pytest.mark.parametrize("kwargs, fragment", [
    ({"blend": "gaussian"}, "drop blend=<Blend.GAUSSIAN: 'gaussian'>"),
    ({"margin": 100}, "drop margin=100"),
    ({"tiles": TilePlan.paper()}, "drop margin=32"),
])
def test_whole_refuses_tile_settings_it_would_ignore(kwargs, fragment):
    """--whole ran one window and ignored --blend/--margin/--paper, recording them as used."""
    from urst_dask.pipeline.config import RunConfig

    with pytest.raises(ParameterError, match="whole=True runs the image as one window.*" + re.escape(fragment)):
        RunConfig.from_kwargs(whole=True, **kwargs)
    assert RunConfig.from_kwargs(whole=True, stride=500).compute.whole  # the stride still chunks the output
