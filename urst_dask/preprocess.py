"""Pure array transforms around the network: intensity mapping, style preparation,
area-resampling weights for the out-of-core thumbnail.  No I/O, no Dask.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def dtype_scale(dtype: np.dtype) -> float:
    """Value mapped to 1.0: the integer dtype's maximum, 1.0 for float32."""
    dtype = np.dtype(dtype)
    return float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0


def to_unit(block: np.ndarray) -> np.ndarray:
    """HWC block of a supported dtype -> float32, [0, 1] for integers.

    Float input is passed through unclipped: with the dtype mapping it is refused outside
    [0, 1] when read (:func:`urst_dask.io.readers.require_unit_range`); with the percentile
    mapping its own range is mapped onto [0, 1] afterwards (:func:`apply_intensity_range`),
    so the thumbnail's percentiles must see the real values.
    """
    return block.astype(np.float32, copy=False) / np.float32(dtype_scale(block.dtype))


def apply_intensity_range(x: np.ndarray, rng: tuple[float, float] | None) -> np.ndarray:
    """Map the intensity range ``(lo, hi)`` (in [0, 1] units) onto [0, 1], clipping."""
    if rng is None:
        return x
    lo, hi = rng
    return np.clip((x - np.float32(lo)) / np.float32(hi - lo), 0.0, 1.0).astype(np.float32)


def invert_intensity_range(y: np.ndarray, rng: tuple[float, float] | None) -> np.ndarray:
    """Back from [0, 1] to the intensity range ``(lo, hi)``: the output lives in the input's range."""
    if rng is None:
        return y
    lo, hi = rng
    return (np.float32(lo) + y * np.float32(hi - lo)).astype(np.float32)


def percentile_range(thumb: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """The ``lo``/``hi`` percentiles of a [0, 1] thumbnail (all colour channels together)."""
    rgb = thumb[..., :3] if thumb.shape[-1] >= 3 else thumb
    a, b = (float(v) for v in np.percentile(rgb, [lo, hi]))
    return (a, b) if b > a else (0.0, 1.0)  # a flat image: keep the dtype range


def from_unit(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float32 in [0, 1] -> ``dtype`` (clipped and rounded to nearest for integers).

    Floats are not clipped: mapped back from a percentile range they live in the input's own
    range, which may extend beyond [0, 1]."""
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        return np.rint(np.clip(x, 0.0, 1.0) * dtype_scale(dtype)).astype(dtype)
    return x.astype(dtype)


def hwc_to_nchw(x: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """(H, W, 3) float32 array -> (1, 3, H, W) tensor on ``device`` (channels_last memory)."""
    t = torch.from_numpy(np.ascontiguousarray(x))[None].permute(0, 3, 1, 2)  # a view: NHWC memory
    return t.to(device).contiguous(memory_format=torch.channels_last)


def nchw_to_hwc(x: Tensor) -> np.ndarray:
    """(1, 3, H, W) tensor -> (H, W, 3) float32 array on the CPU."""
    return x[0].permute(1, 2, 0).float().cpu().numpy()


def thumb_shape(height: int, width: int, thumb_size: int) -> tuple[int, int]:
    """Thumbnail size: shorter side ``thumb_size``, aspect kept; the image's own if smaller."""
    short = min(height, width)
    if short <= thumb_size:
        return height, width
    s = thumb_size / short
    th = thumb_size if height == short else max(1, round(height * s))
    tw = thumb_size if width == short and height != short else max(1, round(width * s))
    return th, tw


def area_band(n_in: int, n_out: int, lo: int, hi: int) -> tuple[int, np.ndarray, np.ndarray]:
    """The ``n_out x n_in`` area-averaging matrix restricted to inputs ``[lo, hi)``, as bands.

    Output pixel ``o`` averages the input interval ``[o r, (o+1) r)`` with ``r = n_in/n_out``,
    weighting each input pixel by its overlap (exact box filter, antialiased), so it overlaps
    at most ``ceil(r) + 1`` consecutive inputs.  Returns ``(o_lo, index, weight)``: the first
    output index touched, and for each touched output ``i`` the block-relative inputs
    ``index[i, j]`` with float64 weights ``weight[i, j]`` (zero past its interval or the
    block).  Memory is (outputs x band), never (outputs x inputs): a 40000-px-wide strip kept
    at its own size is a (40000, 2) band, not a 40000² matrix.
    """
    r = n_in / n_out
    o_lo = min(int(math.floor(lo / r)), n_out - 1)
    o_hi = min(int(math.ceil(hi / r)), n_out)
    o = np.arange(o_lo, o_hi, dtype=np.float64)[:, None]
    first = np.maximum(np.floor(o * r), lo)  # the first input of this block each output overlaps
    p = first + np.arange(int(math.ceil(r)) + 1, dtype=np.float64)[None, :]
    overlap = np.minimum(p + 1, (o + 1) * r) - np.maximum(p, o * r)
    weight = np.where(p < hi, np.clip(overlap, 0.0, None) / r, 0.0)
    index = np.minimum(p, hi - 1).astype(np.int64) - lo
    return o_lo, index, weight


def area_reduce_block(block: np.ndarray, shape_in: tuple[int, int], shape_out: tuple[int, int],
                      y0: int, x0: int) -> tuple[int, int, np.ndarray]:
    """Contribution of one HWC float block at ``(y0, x0)`` to the area-reduced image.

    Returns ``(oy, ox, partial)``: ``partial`` (float64) is to be added into the output at
    rows ``oy...`` and columns ``ox...``.  Summing every block's contribution gives the
    exact area average of the whole image.
    """
    h, w = block.shape[:2]
    oy, iy, wy = area_band(shape_in[0], shape_out[0], y0, y0 + h)
    ox, ix, wx = area_band(shape_in[1], shape_out[1], x0, x0 + w)
    rows = _banded_sum(iy, wy, block, axis=0)  # (oh, w, C)
    return oy, ox, _banded_sum(ix, wx, rows, axis=1)  # (oh, ow, C)


def _banded_sum(index: np.ndarray, weight: np.ndarray, x: np.ndarray, axis: int) -> np.ndarray:
    """The area-averaging product along ``axis`` (float64), one band column at a time (the
    dense product, mostly zeros, was 3.5x slower on 1000² chunks of an 8-MP image)."""
    shape = list(x.shape)
    shape[axis] = weight.shape[0]
    out = np.zeros(shape, dtype=np.float64)
    for j in range(weight.shape[1]):
        w = weight[:, j].reshape([-1 if d == axis else 1 for d in range(x.ndim)])
        out += w * np.take(x, index[:, j], axis=axis)
    return out


# an upscaled style whose resized whole would hold more than this many crops is resized crop only
THIN_STYLE_CROPS = 4


def resize_center_crop(style: np.ndarray, size: int) -> Tensor:
    """Style image (H, W, 3) float32 [0, 1] -> (1, 3, size, size) tensor.

    Shorter side resized to ``size`` (antialiased bilinear), then centre-cropped to a
    square, as the URST reference prepares its style.  A thin style that is enlarged (16 x 4000
    at 512: a 512 x 128000 whole, 0.8 GB) has only its crop computed (:func:`_upscaled_centre`:
    the same pixels to float rounding).
    """
    x = hwc_to_nchw(style)
    h, w = x.shape[-2:]
    s = size / min(h, w)
    nh, nw = max(size, round(h * s)), max(size, round(w * s))
    top, left = (nh - size) // 2, (nw - size) // 2
    if s > 1 and nh * nw > THIN_STYLE_CROPS * size * size:
        return _upscaled_centre(x, (nh, nw), (top, left), size).clamp(0.0, 1.0).contiguous()
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    return x[..., top : top + size, left : left + size].clamp(0.0, 1.0).contiguous()


def _linear_rows(x: Tensor, axis: int, out_size: int, start: int, count: int) -> Tensor:
    """Outputs ``start .. start + count`` of a bilinear (align_corners=False) enlargement of
    ``x`` along ``axis`` to ``out_size``: each output samples the input at
    ``(j + 0.5) * in / out - 0.5`` (clamped at 0) between its two neighbours, as
    ``F.interpolate`` does when it enlarges (where antialiasing changes nothing).  The positions
    are computed in float32, as torch computes them: in float64 they moved the samples of a
    17 x 1000 style at 128 enough to change pixels by 4e-5; in float32 they agree to 1.2e-7."""
    n = x.shape[axis]
    scale = torch.tensor(n / out_size, dtype=torch.float32)
    j = torch.arange(start, start + count, dtype=torch.float32)
    src = (scale * (j + 0.5) - 0.5).clamp(min=0.0)
    i0 = src.floor().long().clamp(max=n - 1)
    i1 = (i0 + 1).clamp(max=n - 1)
    lam = (src - i0).to(x.dtype)
    shape = [1] * x.dim()
    shape[axis] = count
    lam = lam.reshape(shape)
    return x.index_select(axis, i0) * (1 - lam) + x.index_select(axis, i1) * lam


def _upscaled_centre(x: Tensor, out_hw: tuple[int, int], corner: tuple[int, int], size: int) -> Tensor:
    """The ``size`` x ``size`` crop at ``corner`` of ``x`` (NCHW) enlarged to ``out_hw``,
    computing only the crop: columns first (the long side is cut to ``size`` at once), then rows."""
    x = _linear_rows(x, 3, out_hw[1], corner[1], size)
    return _linear_rows(x, 2, out_hw[0], corner[0], size)


def preserve_colour(content: Tensor, stylized: Tensor) -> Tensor:
    """Keep the content's colour: the stylized luminance with the content's chroma (YIQ).

    Both NCHW RGB in [0, 1]; the common luminance-only option of Gatys et al. (2017).
    """
    rgb2yiq = torch.tensor(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
        dtype=torch.float32, device=content.device,
    )
    yiq2rgb = torch.linalg.inv(rgb2yiq)
    c = torch.einsum("ij,njhw->nihw", rgb2yiq, content.float())
    s = torch.einsum("ij,njhw->nihw", rgb2yiq, stylized.float())
    mixed = torch.cat([s[:, :1], c[:, 1:]], dim=1)
    return torch.einsum("ij,njhw->nihw", yiq2rgb, mixed).clamp(0.0, 1.0).to(stylized.dtype)
