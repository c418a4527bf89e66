import pytest

from urst_dask.errors import ParameterError, ParameterTypeError
from urst_dask.settings import ComputeOptions, NormMode, StyleOptions, TilePlan


@pytest.mark.parametrize(
    "kwargs, exc, fragment",
    [
        ({"stride": 8}, ParameterError, "stride=8"),
        ({"stride": 15}, ParameterError, "stride=15"),
        ({"stride": 100, "margin": 50}, ParameterError, "margin=50"),
        ({"stride": 100, "margin": 70}, ParameterError, "stride/2 = 50"),
        ({"margin": -1}, ParameterError, "margin=-1"),
        ({"stride": 10.5}, ParameterTypeError, "stride=10.5"),
        ({"stride": "1000"}, ParameterTypeError, "stride='1000'"),
        ({"boundary": "wrap"}, ParameterError, "must be one of reflect"),
    ],
)
def test_tileplan_rejects(kwargs, exc, fragment):
    with pytest.raises(exc, match=fragment.replace("(", r"\(").replace(".", r"\.")):
        TilePlan(**kwargs)


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
    from urst_dask.cluster import ClusterOptions

    with pytest.raises(ParameterError, match="memory='small': must be one of fast, compact"):
        ClusterOptions(memory="small")
    assert ClusterOptions(memory="COMPACT").memory.value == "compact"


def test_compute_options_lists_valid_values():
    with pytest.raises(ParameterError, match="device='tpu': must be one of auto, cpu, cuda"):
        ComputeOptions(device="tpu")


def test_defaults_are_the_papers():
    plan = TilePlan()
    assert (plan.stride, plan.margin, plan.window) == (1000, 32, 1064)
    opts = StyleOptions()
    assert (opts.style_size, opts.thumb_size, opts.norm) == (1024, 1024, NormMode.TIN)


@pytest.mark.parametrize(
    "length, expected",
    [
        (1, (1,)),
        (1000, (1000,)),
        (1001, (1001,)),  # a 1-px tail is narrower than the margin: merged
        (1031, (1031,)),
        (1032, (1000, 32)),
        (2500, (1000, 1000, 500)),
        (2010, (1000, 1010)),
    ],
)
def test_axis_chunks(length, expected):
    plan = TilePlan()
    assert plan.axis_chunks(length) == expected
    assert sum(expected) == length
    assert all(c >= plan.margin for c in expected[:-1] + (expected[-1] if len(expected) > 1 else plan.margin,))


def test_frozen():
    plan = TilePlan()
    with pytest.raises(AttributeError):
        plan.stride = 10  # type: ignore[misc]
