"""Settings that change the picture, checked on a real network and a photograph, each against a
property computed here, independently of the pipeline's own helpers.

The toy networks (``identity``, ``passthrough``) cannot show these: their output does not
depend on the statistics, the blend or the channel order.  A review broke each behaviour in a
copy of the code (given statistics dropped and recomputed; alpha forced to 1 and colour
preservation off; gray output from the red channel; the network fed BGR) and the suite still
passed; every test here fails on that copy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

import urst_dask
from urst_dask.models import Network, register_method
from urst_dask.models.base import ModelInfo
from urst_dask.testing import REPO
from urst_dask.testing.toys import Identity

PHOTOS = REPO.parent / "shared" / "images"
# YIQ, written out here (not the project's preserve_colour matrix)
RGB2YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def photo(name: str, w: int, h: int, folder: str = "content") -> np.ndarray:
    from PIL import Image

    path = PHOTOS / folder / name
    if not path.exists():
        pytest.skip(f"{path} not here (CI: ../shared/images)")
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((w, h), Image.BICUBIC))


def picture(store: Path) -> np.ndarray:
    """The stored image, (H, W, C) as read straight from Zarr (not through the project)."""
    return np.moveaxis(np.asarray(zarr.open_array(str(store), path="0", mode="r")[...]), 0, 2)


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


@pytest.fixture
def go(tmp_path, client, weights):
    def _go(content, style, name: str, **kw) -> np.ndarray:
        kw.setdefault("stride", 96)
        out = tmp_path / f"{name}.zarr"
        urst_dask.stylize(content, style, out, weights=weights, client=client, **kw)
        return picture(out)
    return _go


def test_given_statistics_are_the_ones_used(go, tmp_path):
    """A run given another image's statistics (``--stats``) stylizes with them: its picture is
    not the one its own thumbnail gives, and it stores the given statistics."""
    a = photo("cornell.jpg", 200, 140)
    b = photo("sailboat.jpg", 200, 140)[:, ::-1]
    go(b, "candy", "b", method="johnson")
    own = go(a, "candy", "a", method="johnson")
    given = go(a, "candy", "ab", method="johnson", stats=tmp_path / "b.zarr")
    assert mean_abs(given, own) > 5.0, mean_abs(given, own)  # 117 grey levels when measured
    stored = {name: zarr.open_group(str(tmp_path / f"{name}.zarr"), mode="r").attrs["urst_dask"]["stats"]["sha256"]
              for name in ("a", "b", "ab")}
    assert stored["ab"] == stored["b"] != stored["a"]


def test_alpha_blends_towards_the_content(go):
    """``alpha`` < 1 keeps more of the content (the WCT blend of content and coloured features):
    the picture moves towards the photograph as alpha falls, and alpha = 0.3 is another picture."""
    a = photo("cornell.jpg", 200, 140)
    style = photo("wave.jpg", 128, 128, "style")
    far = {alpha: mean_abs(go(a, style, f"a{alpha}", method="wct16x", alpha=alpha), a) for alpha in (1.0, 0.6, 0.2)}
    assert far[0.2] < far[0.6] < far[1.0], far
    assert far[1.0] - far[0.2] > 5.0, far


def test_preserve_color_keeps_the_contents_chroma(go):
    """``preserve_color``: the picture's chroma (YIQ's I and Q, computed here) is the photograph's;
    without it, the painting's colours are there."""
    a = photo("cornell.jpg", 200, 140)
    style = photo("wave.jpg", 128, 128, "style")

    def chroma(rgb: np.ndarray) -> np.ndarray:
        return (rgb.astype(np.float64) / 255.0 @ RGB2YIQ.T)[..., 1:]

    kept = go(a, style, "kept", method="wct16x", preserve_color=True)
    plain = go(a, style, "plain", method="wct16x")
    assert mean_abs(chroma(kept), chroma(a)) < 0.01, mean_abs(chroma(kept), chroma(a))
    assert mean_abs(chroma(plain), chroma(a)) > 0.03, mean_abs(chroma(plain), chroma(a))
    luma = np.array([0.299, 0.587, 0.114])
    assert mean_abs(kept @ luma, plain @ luma) < 3.0  # the stylized luminance is kept


def test_a_gray_picture_is_the_luminance_of_its_colour_stylization(go):
    """A gray input is stylized as RGB and given back as its Rec. 601 luminance: the same
    picture given as three equal channels gives the colour result whose luminance it is."""
    gray = photo("cornell.jpg", 200, 140) @ np.array([0.299, 0.587, 0.114])
    gray = np.round(gray).astype(np.uint8)
    as_gray = go(gray, "candy", "gray", method="johnson")
    as_rgb = go(np.repeat(gray[..., None], 3, axis=2), "candy", "rgb", method="johnson")
    assert as_gray.shape == (140, 200, 1) and as_rgb.shape == (140, 200, 3)
    luma = as_rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(as_gray[..., 0] - luma).max() <= 1.0
    assert mean_abs(as_rgb[..., 0], luma) > 5.0  # the red channel alone would be another picture


class FirstChannel(Identity):
    """Gives every channel its input's first channel: the network's idea of red."""

    def __init__(self) -> None:
        super().__init__(multiple=1)
        self.info = ModelInfo("first-channel", 1, 1, True, True)

    def run(self, x, style, source, alpha):
        return x[:, :1].expand(-1, 3, -1, -1).clone()


def test_the_network_sees_red_as_its_first_channel(tmp_path, client):
    """Networks take RGB (the pretrained weights expect it): a picture whose channels differ
    comes back, through a network that copies its first channel, as its red channel."""
    register_method(Network(FirstChannel().info, "test: copies its first channel", lambda sd, v=None: FirstChannel()))
    rng = np.random.default_rng(4)
    image = np.stack([np.full((60, 70), 200), np.full((60, 70), 90), rng.integers(0, 40, (60, 70))], axis=2)
    out = tmp_path / "o.zarr"
    urst_dask.stylize(image.astype(np.uint8), image[:16, :16].astype(np.uint8), out, method="first-channel",
                      weights=tmp_path, client=client, stride=32, margin=4)
    got = picture(out)
    for c in range(3):
        np.testing.assert_array_equal(got[..., c], image[..., 0])
