"""Measures of stylized images, pure numpy, no I/O: one module per idea.

* :mod:`.quality` - seams, fidelity (PSNR/SSIM) and statistics distance.
* :mod:`.flicker` - temporal flicker of a stylized sequence against its content.
* :mod:`.stroke` - stroke size: the dominant texture wavelength in pixels.
"""

from .flicker import Flicker, flicker, global_shift
from .quality import (
    SEAM_OFFSETS,
    data_range,
    psnr,
    seam_lines,
    seam_ratio,
    seam_score,
    ssim,
    ssim_sum,
    stats_distance,
)
from .stroke import stroke_size

__all__ = [
    "Flicker", "flicker", "global_shift",
    "SEAM_OFFSETS", "data_range", "psnr", "seam_lines", "seam_ratio", "seam_score", "ssim", "ssim_sum",
    "stats_distance", "stroke_size",
]
