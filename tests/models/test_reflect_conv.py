"""``reflect_conv``: the eager CPU route (a zero-padded convolution with its border recomputed
from reflection-padded strips) gives the reflection-padded convolution, and captured graphs
keep the plain pad."""

from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from urst_dask.models import layers
from urst_dask.models.layers import reflect_conv


def _reference(conv: torch.nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    pad = conv.kernel_size[0] // 2
    return conv(F.pad(x, (pad,) * 4, mode="reflect") if pad else x)


@settings(max_examples=40, deadline=None)
@given(
    k=st.sampled_from([1, 3, 5, 9]),
    groups=st.sampled_from([1, 2]),
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    batch=st.integers(1, 2),
    channels_last=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_matches_the_padded_convolution(k, groups, h, w, batch, channels_last, seed):
    pad = k // 2
    h, w = h + pad, w + pad  # a reflection pad needs more pixels than the pad
    torch.manual_seed(seed)
    conv = torch.nn.Conv2d(4, 6, k, groups=groups)
    x = torch.randn(batch, 4, h, w)
    if channels_last:
        x, conv = x.contiguous(memory_format=torch.channels_last), conv.to(memory_format=torch.channels_last)
    with torch.inference_mode(), mock.patch.object(layers, "BORDER_ROUTE_MIN_PIXELS", 0):  # every size
        got, want = reflect_conv(conv, x), _reference(conv, x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("h, w", [(192, 192), (17, 2200), (2200, 17)])
def test_the_border_route_is_taken_and_changes_every_border_pixel(h, w, monkeypatch):
    """The strips set the border: without them the zero-padded border would differ."""
    conv = torch.nn.Conv2d(3, 5, 3)
    x = torch.rand(1, 3, h, w) + 1.0  # reflection and zeros differ at every border pixel
    calls = []
    original = layers._border_fixed_conv

    def spy(*args):
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(layers, "_border_fixed_conv", spy)
    with torch.inference_mode():
        got = reflect_conv(conv, x)
        zeros = F.conv2d(x, conv.weight, conv.bias, padding=1)
    assert len(calls) == 1
    torch.testing.assert_close(got, _reference(conv, x), rtol=1e-6, atol=1e-6)
    border = torch.ones(h, w, dtype=torch.bool)
    border[1:-1, 1:-1] = False
    assert ((got - zeros).abs().amax(dim=1)[0][border] > 1e-4).all()


class _Wrapped(torch.nn.Module):
    def __init__(self, conv: torch.nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return reflect_conv(self.conv, x)


@pytest.mark.parametrize("case", ["traced", "grad", "weight grad", "stride", "small", "few pixels"])
def test_the_plain_pad_where_the_border_route_does_not_apply(case, monkeypatch):
    monkeypatch.setattr(layers, "_border_fixed_conv", lambda *a: pytest.fail("border route taken"))
    conv = torch.nn.Conv2d(3, 4, 3, stride=2 if case == "stride" else 1)
    h, w = {"small": (4, 40000), "few pixels": (191, 192)}.get(case, (256, 256))  # 4 rows: too few to reflect
    x = torch.rand(1, 3, h, w, requires_grad=case == "grad")
    if case == "traced":
        with torch.no_grad():
            traced = torch.jit.trace(_Wrapped(conv), x, check_trace=False)
        assert "reflection_pad2d" in str(traced.graph) or "aten::pad" in str(traced.graph)
        with torch.no_grad():
            torch.testing.assert_close(traced(x), _reference(conv, x))
    elif case == "weight grad":  # training a network: its weights want gradients, its input does not
        assert conv.weight.requires_grad and not x.requires_grad
        torch.testing.assert_close(reflect_conv(conv, x), _reference(conv, x))
    else:
        conv.requires_grad_(case == "grad")
        torch.testing.assert_close(reflect_conv(conv, x), _reference(conv, x))


def test_gradients_flow_through_the_plain_route():
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.rand(1, 3, 24, 24, requires_grad=True)
    reflect_conv(conv, x).sum().backward()
    assert x.grad is not None and conv.weight.grad is not None
