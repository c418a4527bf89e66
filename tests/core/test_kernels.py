import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from urst_dask import kernels


def _feat(seed=0, c=8, h=20, w=24):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, c, h, w, generator=g) * torch.rand(1, c, 1, 1, generator=g) * 3 + 1


def test_tin_with_own_stats_is_instance_norm():
    x = _feat()
    weight, bias = torch.rand(8), torch.randn(8)
    mean, std = kernels.calc_mean_std(x)
    ours = kernels.tin(x, mean, std, weight, bias)
    ref = F.instance_norm(x, weight=weight, bias=bias, eps=kernels.IN_EPS)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_tin_uses_given_stats_not_the_inputs():
    x, t = _feat(0), _feat(1)
    mean, std = kernels.calc_mean_std(t)
    y = kernels.tin(x, mean, std)
    assert not torch.allclose(y, F.instance_norm(x, eps=kernels.IN_EPS), atol=1e-3)


def test_adain_moves_statistics_to_the_style():
    x, s = _feat(0), _feat(2)
    cm, cs = kernels.calc_mean_std(x)
    sm, ss = kernels.calc_mean_std(s)
    y = kernels.adain(x, cm, cs, sm, ss)
    ym, ys = kernels.calc_mean_std(y)
    torch.testing.assert_close(ym, sm, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ys, ss, atol=1e-3, rtol=1e-3)


def test_whitening_matrix_inverts_the_square_root():
    _, cov = kernels.feature_covariance(_feat())
    w = kernels.whitening_matrix(cov, ridge=1.0)
    eye = torch.eye(8, dtype=torch.float64)
    torch.testing.assert_close(w @ (cov + eye) @ w, eye, atol=1e-8, rtol=1e-8)


def test_whiten_colour_gives_the_style_covariance():
    x, s = _feat(0, h=40, w=40), _feat(3, h=40, w=40)
    cm, ccov = kernels.feature_covariance(x)
    sm, scov = kernels.feature_covariance(s)
    y = kernels.whiten_colour(x, cm, kernels.whitening_matrix(ccov, ridge=0.0), sm, kernels.colouring_matrix(scov))
    ym, ycov = kernels.feature_covariance(y)
    torch.testing.assert_close(ym, sm, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ycov, scov, atol=1e-3, rtol=1e-3)


def test_alpha_zero_is_identity():
    x, s = _feat(0), _feat(3)
    cm, ccov = kernels.feature_covariance(x)
    sm, scov = kernels.feature_covariance(s)
    y = kernels.whiten_colour(x, cm, kernels.whitening_matrix(ccov), sm, kernels.colouring_matrix(scov), alpha=0.0)
    torch.testing.assert_close(y, x, atol=1e-5, rtol=1e-5)


def test_small_eigenvalues_dropped():
    cov = torch.diag(torch.tensor([4.0, 1e-9], dtype=torch.float64))
    c = kernels.colouring_matrix(cov)
    torch.testing.assert_close(c, torch.diag(torch.tensor([2.0, 0.0], dtype=torch.float64)))


@settings(max_examples=40, deadline=None)
@given(c=st.integers(1, 20), h=st.integers(1, 300), w=st.integers(1, 300), offset=st.floats(-100, 100),
       seed=st.integers(0, 2**16))
def test_feature_covariance_equals_the_two_pass_float64_formula(c, h, w, offset, seed):
    """Block-wise moments (up to 90 000 pixels, so several float64 blocks) against the plain
    centred formula, with means far from zero (the cancellation case)."""
    feat = _feat(seed, c=c, h=h, w=w) + offset
    mean, cov = kernels.feature_covariance(feat)
    f = feat[0].flatten(1).double()
    ref_mean = f.mean(dim=1)
    fc = f - ref_mean[:, None]
    ref_cov = fc @ fc.T / max(f.shape[1] - 1, 1)
    torch.testing.assert_close(mean, ref_mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(cov, ref_cov, rtol=1e-9, atol=1e-9 * (1 + offset**2))


def test_moments_of_parts_add_up_to_the_whole():
    feat = _feat(4, c=6, h=70, w=50)
    n, s1, s2 = kernels.feature_moments(feat)
    top, bottom = kernels.feature_moments(feat[..., :31, :]), kernels.feature_moments(feat[..., 31:, :])
    assert n == top[0] + bottom[0] == 3500
    torch.testing.assert_close(s1, top[1] + bottom[1], rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(s2, top[2] + bottom[2], rtol=1e-12, atol=1e-9)


def test_feature_moments_refuses_a_batch():
    with pytest.raises(ValueError, match=r"expected \(1, C, H, W\), got shape \(2, 3, 4, 4\)"):
        kernels.feature_moments(torch.zeros(2, 3, 4, 4))


@pytest.mark.parametrize(("h", "w", "size"), [(20, 300, 64), (300, 20, 64), (17, 1000, 128), (33, 500, 100),
                                              (5, 77, 64), (1, 9, 32)])
def test_a_thin_style_enlarged_crop_only_gives_the_whole_resize_crop(h, w, size, monkeypatch):
    """An enlarged thin style has only its crop computed; the pixels are those of resizing the
    whole and cropping (to float rounding), which the test forces with an unreachable threshold."""
    import urst_dask.preprocess as pp

    img = np.random.default_rng(h * w).random((h, w, 3), dtype=np.float32)
    crop_only = pp.resize_center_crop(img, size)
    monkeypatch.setattr(pp, "THIN_STYLE_CROPS", 10**9)
    whole = pp.resize_center_crop(img, size)
    assert crop_only.shape == whole.shape == (1, 3, size, size)
    assert float((crop_only - whole).abs().max()) <= 2e-7


def test_a_thin_style_is_not_resized_whole(monkeypatch):
    """16 x 4000 at 512: F.interpolate would build a 512 x 128000 whole (0.8 GB); it is not called."""
    import urst_dask.preprocess as pp

    def refuse(*args, **kwargs):
        raise AssertionError(f"resized whole: {kwargs.get('size')}")

    monkeypatch.setattr(pp.F, "interpolate", refuse)
    out = pp.resize_center_crop(np.random.default_rng(0).random((16, 4000, 3), dtype=np.float32), 512)
    assert out.shape == (1, 3, 512, 512) and 0.0 <= float(out.min()) and float(out.max()) <= 1.0
